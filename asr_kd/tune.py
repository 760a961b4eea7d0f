"""Search score weights that minimise corpus WER on a dev N-best set.

Edit counts of every hypothesis are computed once (jiwer); each candidate
weight vector then costs one matrix product and one argmax over a padded
(U, Nmax) array, and many candidates are evaluated in one batch.  Features are
resolved by :func:`asr_kd.scoring.feature_value`, so derived keys (``rank``,
``KEY*words``, ``KEY/words``) tune like stored scores.

Search, all deterministic:

1. Weights.  The first score key is fixed at 1.0: it is the reference, only
   ratios matter.  The other score weights are >= 0; the word insertion
   penalty ``wip`` (times the word count) and keys named in ``signed`` (an OOV
   count) may have either sign.
2. Scale.  Each feature's spread is the median, over utterances whose
   hypotheses do not all share one value, of (max - min) of that feature within
   the utterance (1 when no utterance varies).  The search runs in normalised
   units: weight w of feature f is v = w * spread[f] / spread[first key], so
   v = 1 lets a typical within-utterance difference of f count as much as one of
   the first key, whatever the features' units (a per-token average log-prob
   around -0.2 and a summed LM log-prob around -100 tune alike).  Results are
   written back in original units, the first key exactly 1.0; multiplying a
   feature by c divides its weight by c and leaves the WER as it is.
3. Grid.  Every free weight takes v in {0} U {2^(j/r) : |j| <= 8r} (1/256 ..
   256, r values per octave; signed weights also the negatives), with r the
   largest of 1..8 whose full product has at most ``max_grid`` points (1 free
   weight: r = 8; lm + wip: r = 2).  If even r = 1 is too large: one
   coordinate sweep over the r = 1 values, from v = 1 (signed weights: 0).
4. Nested starts.  The search is first run, recursively and memoised, for every
   subset of the free weights with the others at 0 (2^k searches for k free
   weights; k is 1-4 in practice).  The solutions for the k subsets with one
   weight fewer are further start points, next to the grid's best.
5. Refinement from each start.  Line searches along each free weight, then
   along each pair moved together both ways (valleys where two weights must
   change together), each over 41 points ``current + span * linspace(-1, 1)``
   (span starts at max(|v|, 1) per weight, in normalised units); a point is
   taken only if it has fewer errors.  When a sweep over all directions
   changes nothing, every span is halved, ``levels`` times.  The best refined
   start wins (fewest errors; on ties the grid start, then the start without
   the last weight, and so on).
Ties between equal-WER candidates of one line search keep the current point,
then prefer the smallest move, then the first candidate (grid order puts small
weights first).  Candidate weights are rounded to 10 significant digits of a
normalised unit (so 0 stays 0 and 1.025 is not 1.0250000000000001).

Start weights and fixed keys (``start``, ``fixed``; SRILM nbest-optimize's
``-init-lambdas``, whose ``=w`` fixes a weight): the start weights, divided by the
first key's, are one more start point of the full search, so the result is never
worse on dev than they are; a fixed key keeps its start value throughout (it is
in no grid and no line search) and the subsets searched are those of the other
keys.

Guarantee: since refinement never accepts a worse point and every subset's
solution is a start, adding a score key (anywhere after the first) or ``wip``
never gives more dev errors than tuning without it.  Measured on random 8-utterance
lists with scores unrelated to the errors (tests/test_tune_search.py): one free
weight reached the exact optimum on 200 of 200; lm + wip matched or beat a
0.125-step grid of normalised weights over [0, 64] x [-64, 64] on 99 of 100.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError
from .nbest.model import NBest
from .scoring import ERR, WIP, hyp_error_matrix, pack_features, ref_word_counts, select

OCTAVES = 8  # the grid spans normalised weights 2^-8 .. 2^8
SELECT_BYTES = 64 << 20  # working memory of one batch of weight vectors in Packed.errors
MAX_DENSITY = 8  # grid values per octave at most


def _powers(r: int) -> list[float]:
    """Normalised grid values 2^(j/r), |j| <= 8r: 1/256 .. 256, r per octave."""
    return [2.0 ** (j / r) for j in range(-OCTAVES * r, OCTAVES * r + 1)]


@dataclass
class Packed:
    """A dev set reduced to what the search needs.

    feats (U, Nmax, F): score features (keys, then word count if wip);
    mask (U, Nmax): real hypotheses; errs (U, Nmax): edit errors per hypothesis
    (0 on padding); empty_errs: errors of utterances without hypotheses (all
    deletions, a constant); words: reference words.
    """

    feats: np.ndarray
    mask: np.ndarray
    errs: np.ndarray
    empty_errs: int
    words: int

    @classmethod
    def build(cls, nbest: NBest, keys: Sequence[str], with_wip: bool,
              errors: list[np.ndarray] | None = None) -> "Packed":
        """``errors``: :func:`hyp_error_matrix` output if already computed."""
        feats, mask = pack_features(nbest, keys, with_wip)
        errs = np.zeros(mask.shape, dtype=np.int64)
        nref = ref_word_counts(nbest)
        empty = 0
        for i, e in enumerate(hyp_error_matrix(nbest) if errors is None else errors):
            errs[i, :len(e)] = e[:, ERR]
            if not len(e):
                empty += int(nref[i])
        return cls(feats, mask, errs, empty, int(nref.sum()))

    def errors(self, w: np.ndarray, batch: int = 64) -> np.ndarray:
        """Corpus errors for each weight vector in ``w`` (G, F); returns (G,) int64.

        At most ``batch`` vectors are scored at once, fewer on large sets: each
        needs 16 bytes per padded hypothesis (totals and their masked copy), and
        the batch is kept within :data:`SELECT_BYTES`."""
        out = np.full(len(w), self.empty_errs, dtype=np.int64)
        if not self.mask.shape[1]:
            return out  # no hypotheses anywhere
        batch = max(1, min(batch, SELECT_BYTES // (16 * self.mask.size)))
        for s in range(0, len(w), batch):
            best = np.maximum(select(self.feats, self.mask, w[s:s + batch]), 0)  # (g, U)
            e = np.take_along_axis(self.errs[None], best[..., None], axis=2)[..., 0]
            out[s:s + batch] += e.sum(axis=1)  # index -1 became 0: a padding slot, 0 errors
        return out

    def wer(self, errors: int | np.ndarray):
        return 100.0 * np.asarray(errors) / max(self.words, 1)


@dataclass
class TuneResult:
    """Best weights (first key 1.0; ``wip`` if searched), their WER (%), the
    WER curve along ``curve_key`` with the other weights at their best, and each
    feature's spread (the median within-utterance range used to normalise)."""

    weights: dict[str, float]
    wer: float
    errors: int
    words: int
    curve_key: str
    curve: list[tuple[float, float]]
    spreads: dict[str, float] = field(default_factory=dict)


def feature_spreads(feats: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per feature: median over utterances with >= 2 distinct values of (max - min); else 1."""
    if not feats.shape[1]:
        return np.ones(feats.shape[2])
    hi = np.where(mask[..., None], feats, -np.inf).max(axis=1)  # (U, F)
    lo = np.where(mask[..., None], feats, np.inf).min(axis=1)
    out = np.ones(feats.shape[2])
    for f in range(feats.shape[2]):
        rng = (hi[:, f] - lo[:, f])[mask.any(axis=1)]
        rng = rng[rng > 0]
        m = float(np.median(rng)) if len(rng) else 0.0
        if m > 0 and np.isfinite(m):
            out[f] = m
    return out


def _axis_values(is_signed: bool, r: int = 1) -> list[float]:
    pw = _powers(r)
    return [0.0] + pw + ([-p for p in pw] if is_signed else [])


def _pick(errs: np.ndarray, cands: np.ndarray, current: float) -> int:
    """Index of the best candidate: fewest errors, then closest to ``current``, then first."""
    best = np.flatnonzero(errs == errs.min())
    return int(best[np.argmin(np.abs(cands[best] - current))])  # argmin keeps the first


class _Search:
    """The search of the module docstring over one packed dev set."""

    def __init__(self, p: Packed, is_signed: list[bool], unit: np.ndarray, levels: int,
                 max_grid: int):
        self.p, self.is_signed, self.unit = p, is_signed, unit
        self.levels, self.max_grid = levels, max_grid
        self.lower = np.array([-np.inf if sg else 0.0 for sg in is_signed])
        # Rounding to 10 significant digits of a normalised unit: 1.025, not
        # 1.0250000000000001, in the weights file, and 0 stays exactly 0.
        self.decimals = [int(9 - np.floor(np.log10(u))) for u in unit]
        self.memo: dict[tuple[int, ...], tuple[np.ndarray, int]] = {}
        # every search starts from base: the first key at 1, fixed keys at their values
        self.base = np.zeros(len(unit))
        self.base[0] = 1.0
        self.extra_starts: dict[tuple[int, ...], list] = {}  # free set -> [(w, errors)]
        self.bar = None  # progress over the 2^k subset searches (tune_weights sets it)

    def rnd(self, f: int, x: np.ndarray) -> np.ndarray:
        return np.round(x, self.decimals[f])

    def line_search(self, w: np.ndarray, d: np.ndarray, ts: np.ndarray
                    ) -> tuple[np.ndarray, int]:
        """Best of ``w + t * d`` for t in ``ts`` (rounded, within the sign limits):
        fewest errors, then smallest |t|, then first."""
        trial = w[None] + ts[:, None] * d[None]
        for f in np.flatnonzero(d):
            trial[:, f] = self.rnd(f, trial[:, f])
        ok = (trial >= self.lower).all(axis=1)
        trial, ts = trial[ok], ts[ok]
        errs = self.p.errors(trial)
        k = _pick(errs, ts, 0.0)
        return trial[k], int(errs[k])

    def axis(self, f: int) -> np.ndarray:
        d = np.zeros(len(self.unit))
        d[f] = 1.0
        return d

    def grid(self, free: tuple[int, ...]) -> tuple[np.ndarray, int]:
        w = self.base.copy()
        size = 0
        for r in range(1, MAX_DENSITY + 1):  # the densest grid within max_grid
            n = np.prod([len(_axis_values(self.is_signed[f], r)) for f in free])
            if r > 1 and n > self.max_grid:
                break
            size, dense = n, r
        axes = [self.rnd(f, np.array(_axis_values(self.is_signed[f], dense)) * self.unit[f])
                for f in free]
        if size <= self.max_grid:
            trial = np.repeat(w[None], int(size), axis=0)
            trial[:, list(free)] = np.array(list(itertools.product(*axes)))
            errs = self.p.errors(trial)
            k = int(np.argmin(errs))  # first minimum; axes list small weights first
            return trial[k], int(errs[k])
        for f in free:
            w[f] = 0.0 if self.is_signed[f] else self.rnd(f, self.unit[f])
        err = 0
        for f, a in zip(free, axes):
            w, err = self.line_search(w, self.axis(f), a - w[f])
        return w, err

    def refine(self, w: np.ndarray, err: int, free: tuple[int, ...]) -> tuple[np.ndarray, int]:
        # Directions: each free weight, then each pair moved together (both ways),
        # which follows valleys where two weights must change together.  The first
        # span, max(|v|, 1) sampled every span/20, is dense enough to find a narrow
        # valley between two power-of-two grid points even from a plateau at 0.
        dirs = [(f,) for f in free] + [(f, g, s) for f, g in itertools.combinations(free, 2)
                                        for s in (1.0, -1.0)]
        span = np.maximum(np.abs(w), self.unit)
        offsets = np.linspace(-1.0, 1.0, 41)
        for _ in range(self.levels):
            while True:
                changed = False
                for dr in dirs:
                    d = self.axis(dr[0]) * span[dr[0]]
                    if len(dr) == 3:
                        d[dr[1]] = dr[2] * span[dr[1]]
                    nw, e = self.line_search(w, d, offsets)
                    if e < err:
                        w, err, changed = nw, e, True
                if not changed:
                    break
            span = span / 2
        return w, err

    def run(self, free: tuple[int, ...]) -> tuple[np.ndarray, int]:
        """Best weights with only ``free`` (besides the first key) non-zero."""
        if free in self.memo:
            return self.memo[free]
        if not free:
            w = self.base.copy()
            res = (w, int(self.p.errors(w[None])[0]))
        else:
            starts = [self.grid(free)] + self.extra_starts.get(free, [])
            for i in reversed(range(len(free))):  # without the last weight first
                sub = self.run(free[:i] + free[i + 1:])
                if not any(np.array_equal(sub[0], s[0]) for s in starts):
                    starts.append(sub)
            res = None
            for w, err in starts:  # the first refined start with the fewest errors wins
                w, err = self.refine(w.copy(), err, free)
                if res is None or err < res[1]:
                    res = (w, err)
        self.memo[free] = res
        if self.bar is not None:
            self.bar.update(1)
        return res


def default_curve_key(names: Sequence[str]) -> str:
    """The weight whose WER curve ``tune`` shows when none is named: the LM's.

    Among the free weights (all but the first, which is fixed at 1): the first
    ``lm:NAME`` (a rescoring LM), else ``lm`` (ESPnet), ``lm0`` (the first pass's LM),
    else the first key starting with ``lm``; else the second weight (``wip`` when it is
    the only free one), else the first.  The order of ``--scores`` is the recogniser's
    (ESPnet's is ``decoder,ctc,lm``), so "the second key" would often be no LM at all.
    """
    free = list(names[1:])
    for pick in ([n for n in free if n.startswith("lm:")], [n for n in free if n == "lm"],
                 [n for n in free if n == "lm0"], [n for n in free if n.startswith("lm")],
                 free, list(names)):
        if pick:
            return pick[0]
    raise InputError("no score keys to tune")


def start_vector(names: Sequence[str], is_signed: Sequence[bool],
                 start: Mapping[str, float] | None, fixed: Sequence[str]) -> np.ndarray | None:
    """``start`` as a weight vector over ``names`` (F,), divided by the first key's weight
    (1 when it is left out); None without ``start``.  InputError for keys not tuned, a
    first weight <= 0, a negative weight that may not be, or a fixed key without a value."""
    fixed = list(fixed)
    bad = [k for k in fixed if k not in names[1:]]
    if bad:
        raise InputError(f"fixed keys {', '.join(bad)} are not tuned keys after the first "
                         f"({', '.join(names[1:]) or 'none'}); the first is always 1")
    if start is None:
        if fixed:
            raise InputError("fixed keys need start weights to be fixed at (--start)")
        return None
    start = dict(start)
    unknown = [k for k in start if k not in names]
    if unknown:
        raise InputError(f"start weights for {', '.join(unknown)}, which are not tuned "
                         f"(tuned: {', '.join(names)})")
    missing = [k for k in fixed if k not in start]
    if missing:
        raise InputError(f"fixed keys {', '.join(missing)} have no start weight")
    first = float(start.get(names[0], 1.0))
    if not first > 0:
        raise InputError(f"the start weight of the first key {names[0]!r} must be > 0 (it is "
                         f"the unit of the others), got {first:g}")
    w = np.array([float(start.get(n, 0.0)) / first for n in names])
    neg = [n for n, v, sg in zip(names, w, is_signed) if v < 0 and not sg]
    if neg:
        raise InputError(f"negative start weight for {', '.join(neg)}: only wip and --signed "
                         "keys may be negative")
    return w


def tune_weights(nbest: NBest, keys: Sequence[str], wip: bool = False,
                 lm_key: str | None = None, levels: int = 6, max_grid: int = 4096,
                 curve_points: int = 41, errors: list[np.ndarray] | None = None,
                 signed: Sequence[str] = (), quiet: bool = False,
                 start: Mapping[str, float] | None = None,
                 fixed: Sequence[str] = ()) -> TuneResult:
    """Search weights for ``keys`` (first fixed at 1.0) and optionally ``wip``.

    ``lm_key`` names the weight whose WER curve is returned (default:
    :func:`default_curve_key`, the LM's weight).  Every utterance needs a reference.  ``errors``:
    :func:`hyp_error_matrix` output, when the caller has it already.
    ``signed``: score keys whose weight may be negative, like ``wip`` (e.g. an
    ``oov:NAME`` count used as an OOV penalty); they start at 0.  ``quiet``: no
    progress (:mod:`asr_kd.progress`) over the 2^k subset searches.  ``start``:
    weights (any scale; keys left out are 0) that are one more start point;
    ``fixed``: keys kept at their ``start`` value (module docstring).
    """
    keys = list(keys)
    if not keys:
        raise InputError("no score keys to tune")
    if len(set(keys)) != len(keys) or WIP in keys:
        raise InputError(f"score keys must be distinct and not {WIP!r}: {','.join(keys)}")
    names = keys + ([WIP] if wip else [])
    lm_key = lm_key or default_curve_key(names)
    if lm_key not in names:
        raise InputError(f"--lm-key {lm_key!r} is not one of {','.join(names)}")
    unknown = [k for k in signed if k not in keys[1:]]
    if unknown:
        raise InputError(f"signed keys {','.join(unknown)} are not free --scores keys")
    is_signed = [n == WIP or n in signed for n in names]
    p = Packed.build(nbest, keys, wip, errors)
    spread = feature_spreads(p.feats, p.mask)
    unit = spread[0] / spread  # normalised value 1 of each weight, in original units
    search = _Search(p, is_signed, unit, levels, max_grid)
    w0 = start_vector(names, is_signed, start, fixed)
    free = tuple(i for i in range(1, len(names)) if names[i] not in fixed)
    if w0 is not None:
        search.base[[names.index(k) for k in fixed]] = w0[[names.index(k) for k in fixed]]
        search.extra_starts[free] = [(w0, int(p.errors(w0[None])[0]))]
    from .progress import progress
    with progress(total=2 ** len(free), desc="tune", unit="subset search",
                  quiet=quiet) as search.bar:
        w, best_err = search.run(free)

    f = names.index(lm_key)
    top = max(2 * abs(w[f]), unit[f])
    xs = np.unique(np.concatenate([search.rnd(f, np.linspace(0.0, top, curve_points)), [w[f]]]))
    if is_signed[f]:
        xs = np.unique(np.concatenate([-xs, xs]))
    trial = np.repeat(w[None], len(xs), axis=0)
    trial[:, f] = xs
    curve = list(zip(xs.tolist(), p.wer(p.errors(trial)).tolist()))
    weights = {n: float(v) for n, v in zip(names, w)}
    return TuneResult(weights, float(p.wer(best_err)), best_err, p.words, lm_key, curve,
                      {n: float(v) for n, v in zip(names, spread)})


@dataclass
class GuardResult:
    """Outcome of :func:`guard_weights`: the weights to use, whether the fallback was taken,
    and how the tuning did out of fold: errors of the cross-validated tuned choice and of
    the fallback on the same utterances, and the bootstrap P(cross-validated tuned better)."""

    weights: dict[str, float]
    fell_back: bool
    cv_errors: int
    fallback_errors: int
    p_tuned_better: float


def guard_weights(nbest: NBest, keys: Sequence[str], tuned: dict[str, float],
                  fallback: dict[str, float], wip: bool = False, signed: Sequence[str] = (),
                  folds: int = 5, confidence: float = 0.5,
                  errors: list[np.ndarray] | None = None, seed: int = 0,
                  start: Mapping[str, float] | None = None,
                  fixed: Sequence[str] = ()) -> GuardResult:
    """Keep ``tuned`` only if tuning generalises on this dev set; else use ``fallback``.

    Why: on a small dev set the minimum-WER weights of a weak feature (an LM that
    barely knows the domain) win a few errors by chance and lose them on eval, and an
    in-sample test cannot see that (the search picked the weights on those very
    utterances).  So the dev set is cut into ``folds`` folds (utterance i in fold
    i % folds); for each fold the same search (``keys``, ``wip``, ``signed``) runs on
    the other folds and its weights choose the hypotheses of the held-out fold.  The
    tuned weights are kept when these out-of-fold choices beat ``fallback`` on the
    same utterances with bootstrap probability >= ``confidence`` (0.5: fewer errors
    in expectation); otherwise ``fallback`` is returned, with the keys of ``tuned``
    it lacks at weight 0 so the file still names every feature.  Deterministic.
    """
    from .scoring import pick_best
    from .significance import bootstrap_wer_diff

    if not 0.0 <= confidence <= 1.0:
        raise InputError(f"confidence must lie in [0, 1], got {confidence}")
    if folds < 2 or len(nbest) < folds:
        raise InputError(f"cross-validation needs at least {max(folds, 2)} utterances and "
                         f"2 folds, got {len(nbest)} utterances, {folds} folds")
    if errors is None:
        errors = hyp_error_matrix(nbest)
    nref = ref_word_counts(nbest)

    def errs_of(chosen, idx):
        return np.array([int(errors[i][c, ERR]) if c >= 0 else int(nref[i])
                         for i, c in zip(idx, chosen)], dtype=np.int64)

    cv = np.zeros(len(nbest), dtype=np.int64)
    for f in range(folds):
        train = [i for i in range(len(nbest)) if i % folds != f]
        test = [i for i in range(len(nbest)) if i % folds == f]
        part = NBest([nbest.utts[i] for i in train])
        w = tune_weights(part, keys, wip=wip, signed=signed, quiet=True,
                         errors=[errors[i] for i in train], start=start, fixed=fixed).weights
        held = NBest([nbest.utts[i] for i in test])
        cv[test] = errs_of(pick_best(held, w), test)
    fb = errs_of(pick_best(nbest, fallback), range(len(nbest)))
    boot = bootstrap_wer_diff(fb, cv, nref, seed=seed)
    if boot.p_b_better >= confidence and cv.sum() < fb.sum():
        return GuardResult(dict(tuned), False, int(cv.sum()), int(fb.sum()), boot.p_b_better)
    out = {k: float(fallback.get(k, 0.0)) for k in tuned}
    out.update({k: float(v) for k, v in fallback.items() if k not in out})
    return GuardResult(out, True, int(cv.sum()), int(fb.sum()), boot.p_b_better)
