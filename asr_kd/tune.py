"""Search score weights that minimise corpus WER on a dev N-best set.

Edit counts of every hypothesis are computed once (jiwer); each candidate
weight vector then costs one matrix product and one argmax over a padded
(U, Nmax) array, and many candidates are evaluated in one batch.

Search, all deterministic:

1. The first score key is fixed at 1.0 (only weight ratios matter).  The other
   score weights are >= 0; the optional word insertion penalty ``wip`` (times
   the word count) and keys named in ``signed`` (an OOV count) may have either sign.
2. Grid: every free weight takes values in {0} U {2^-4, ..., 2^5} (wip also the
   negatives).  The full product is evaluated when it has at most ``max_grid``
   points; otherwise one coordinate sweep over those values, from lm weights
   1.0 and wip 0.
3. Refinement: coordinate descent.  Each weight in turn is line-searched over
   41 points ``current + span * linspace(-1, 1)`` (span starts at max(|w|, 1));
   when a sweep changes nothing, every span is halved, ``levels`` times.
Ties between equal-WER candidates keep the current value, then prefer the
smallest change, then the first candidate (grid order puts small weights first).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .errors import InputError
from .nbest.model import NBest
from .scoring import ERR, WIP, hyp_error_matrix, pack_features, ref_word_counts, select

POWERS = [2.0 ** p for p in range(-4, 6)]  # 0.0625 .. 32: spans ESPnet (~0.5) and Kaldi (~10) LM scales


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
        """Corpus errors for each weight vector in ``w`` (G, F); returns (G,) int64."""
        out = np.full(len(w), self.empty_errs, dtype=np.int64)
        if not self.mask.shape[1]:
            return out  # no hypotheses anywhere
        for s in range(0, len(w), batch):
            best = np.maximum(select(self.feats, self.mask, w[s:s + batch]), 0)  # (g, U)
            e = np.take_along_axis(self.errs[None], best[..., None], axis=2)[..., 0]
            out[s:s + batch] += e.sum(axis=1)  # index -1 became 0: a padding slot, 0 errors
        return out

    def wer(self, errors: int | np.ndarray):
        return 100.0 * np.asarray(errors) / max(self.words, 1)


@dataclass
class TuneResult:
    """Best weights (first key 1.0; ``wip`` if searched), their WER (%), and the
    WER curve along ``curve_key`` with the other weights at their best."""

    weights: dict[str, float]
    wer: float
    errors: int
    words: int
    curve_key: str
    curve: list[tuple[float, float]]


def _axis_values(is_wip: bool) -> list[float]:
    return [0.0] + POWERS + ([-p for p in POWERS] if is_wip else [])


def _pick(errs: np.ndarray, cands: np.ndarray, current: float) -> int:
    """Index of the best candidate: fewest errors, then closest to ``current``, then first."""
    best = np.flatnonzero(errs == errs.min())
    return int(best[np.argmin(np.abs(cands[best] - current))])  # argmin keeps the first


def _line_search(p: Packed, w: np.ndarray, f: int, cands: np.ndarray, lower: float
                 ) -> tuple[np.ndarray, int]:
    cands = np.round(cands, 9)  # 1.025, not 1.0250000000000001, in the weights file
    cands = cands[cands >= lower]
    trial = np.repeat(w[None], len(cands), axis=0)
    trial[:, f] = cands
    errs = p.errors(trial)
    k = _pick(errs, cands, w[f])
    return trial[k], int(errs[k])


def tune_weights(nbest: NBest, keys: Sequence[str], wip: bool = False,
                 lm_key: str | None = None, levels: int = 6, max_grid: int = 4096,
                 curve_points: int = 41, errors: list[np.ndarray] | None = None,
                 signed: Sequence[str] = ()) -> TuneResult:
    """Search weights for ``keys`` (first fixed at 1.0) and optionally ``wip``.

    ``lm_key`` names the weight whose WER curve is returned (default: the second
    key, else wip).  Every utterance needs a reference.  ``errors``:
    :func:`hyp_error_matrix` output, when the caller has it already.
    ``signed``: score keys whose weight may be negative, like ``wip`` (e.g. an
    ``oov:NAME`` count used as an OOV penalty); they start at 0.
    """
    keys = list(keys)
    if not keys:
        raise InputError("no score keys to tune")
    if len(set(keys)) != len(keys) or WIP in keys:
        raise InputError(f"score keys must be distinct and not {WIP!r}: {','.join(keys)}")
    names = keys + ([WIP] if wip else [])
    lm_key = lm_key or (names[1] if len(names) > 1 else keys[0])
    if lm_key not in names:
        raise InputError(f"--lm-key {lm_key!r} is not one of {','.join(names)}")
    unknown = [k for k in signed if k not in keys[1:]]
    if unknown:
        raise InputError(f"signed keys {','.join(unknown)} are not free --scores keys")
    is_signed = [n == WIP or n in signed for n in names]
    p = Packed.build(nbest, keys, wip, errors)
    lower = np.array([-np.inf if sg else 0.0 for sg in is_signed])

    free = list(range(1, len(names)))
    axes = [_axis_values(is_signed[f]) for f in free]
    w = np.array([1.0] + [0.0 if is_signed[f] else 1.0 for f in free])
    best_err = int(p.errors(w[None])[0])
    if free and np.prod([len(a) for a in axes]) <= max_grid:
        grid = np.array(list(itertools.product(*axes)))
        trial = np.concatenate([np.ones((len(grid), 1)), grid], axis=1)
        errs = p.errors(trial)
        k = int(np.argmin(errs))  # first minimum; axes list small weights first
        w, best_err = trial[k], int(errs[k])
    else:
        for f, a in zip(free, axes):
            w, best_err = _line_search(p, w, f, np.array(a), lower[f])

    # Coordinate descent with shrinking spans.  The first span, max(|w|, 1) sampled
    # every span/20, is dense enough to find a narrow valley between two
    # power-of-two grid points even from a plateau at 0.
    span = np.maximum(np.abs(w), 1.0)
    offsets = np.linspace(-1.0, 1.0, 41)
    for _ in range(levels if free else 0):
        while True:
            changed = False
            for f in free:
                nw, e = _line_search(p, w, f, w[f] + span[f] * offsets, lower[f])
                if e < best_err:
                    w, best_err, changed = nw, e, True
            if not changed:
                break
        span /= 2

    f = names.index(lm_key)
    top = max(2 * abs(w[f]), 1.0)
    xs = np.unique(np.concatenate([np.linspace(0.0, top, curve_points).round(6), [w[f]]]))
    if is_signed[f]:
        xs = np.unique(np.concatenate([-xs, xs]))
    trial = np.repeat(w[None], len(xs), axis=0)
    trial[:, f] = xs
    curve = list(zip(xs.tolist(), p.wer(p.errors(trial)).tolist()))
    weights = {n: float(v) for n, v in zip(names, w)}
    return TuneResult(weights, float(p.wer(best_err)), best_err, p.words, lm_key, curve)
