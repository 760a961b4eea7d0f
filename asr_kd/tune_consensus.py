"""Tune score weights and the posterior scale for consensus decoding on a dev set.

Consensus decoding (:mod:`asr_kd.consensus`) aligns each utterance's hypotheses
into a mesh with posteriors from the weighted totals, so every candidate weight
vector would need a new alignment: far too slow for a search.  As SRILM's
``nbest-optimize`` does ("hypotheses are aligned using the initial weights"),
the search keeps one alignment fixed and only re-weights it; the alignment is
then rebuilt with the result and the search repeated from there:

0. Start: the 1-best weights (``asr_kd.tune.tune_weights``; or given) with
   posterior scale 0, whose consensus output is exactly the 1-best choice.  The
   scale's unit is the median within-utterance range of the start's totals
   (the spread of ``asr_kd.tune``), so scale 1 unit lets a typical score gap
   count e^1 in posterior odds.
1. Align every utterance with the current weights and scale (initially the
   start weights and 1 unit).  Its exact consensus WER is computed on that
   alignment (a fixed alignment is exact for the parameters it was built with).
2. On the fixed alignment, a candidate (weights, scale) costs: hypothesis
   posteriors, column posteriors (sums over the hypotheses that put each word
   there), the winner per column (same tie rule as decoding), and the exact edit
   errors of the resulting word string against the reference (jiwer), cached
   per utterance and choice of words, so only new strings are ever aligned to
   the reference.
3. Search on the fixed alignment.  First round: the scale alone over {0} and
   unit x 2^(j/4), |j| <= 32 (0 is the 1-best limit).  Then the refinement of
   ``asr_kd.tune`` (line searches along each free weight and the scale and
   along every pair, 41 points, spans halved ``levels`` times; first score
   weight fixed at 1.0, other weights >= 0 except ``wip`` and ``signed``).
4. Re-align with the result (step 1).  The round's result is kept only if its
   exact WER beats the best so far; up to ``rounds`` rounds, stopping early when
   a round finds nothing new or no improvement.

The result never has more dev errors than the start weights' 1-best (scale 0 is
always a candidate and its errors are exact).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from .consensus import EMPTY, TIE_TOL, Mesh, build_mesh
from .errors import InputError
from .nbest.model import NBest
from .scoring import ERR, WIP, batch_errors, hyp_error_matrix, pack_features, ref_word_counts
from .tune import _Search, feature_spreads, tune_weights

SCALE = "posterior_scale"  # name of the scale in results and weights files
SCALE_GRID = [2.0 ** (j / 4) for j in range(-32, 33)]  # in units of the totals' spread
_RADIX_LIMIT = 1 << 62  # a choice key chunk stays below this (exact int64)


class FixedMeshes:
    """A dev set aligned once, reduced to arrays that re-weighting needs.

    ``errors(W)`` gives the corpus errors of consensus decoding with each row of
    ``W`` (G, F + 1): F feature weights (as ``pack_features`` orders them), then
    the posterior scale, all on this alignment.
    """

    def __init__(self, nbest: NBest, feats: np.ndarray, mask: np.ndarray,
                 meshes: Sequence[tuple[Mesh, np.ndarray]]):
        self.feats, self.mask = feats, mask
        self.refs = [u.ref for u in nbest]
        self.words = int(ref_word_counts(nbest).sum())
        nmax = mask.shape[1]
        entry_h, slot_starts, slot_col, slot_local, col_starts = [], [], [], [], []
        radix, chunk_starts = [], []
        self.layout = []  # per utterance: list of fixed words (str) or contested column (int)
        self.slot_words = []  # per contested column: its words, slot order
        self.const = 0  # errors of utterances whose output cannot change
        uc, chunks_of = [], []  # utterances with contested columns, their chunk ids
        fixed_texts, fixed_refs = [], []
        for u, (mesh, order) in enumerate(meshes):
            lay, chunks, prod = [], [], _RADIX_LIMIT
            for c in range(len(mesh.columns)):
                slots: dict[str, int] = {}
                members: list[list[int]] = []
                for k, h in enumerate(order):  # alignment order: first appearance first
                    s = slots.setdefault(mesh.paths[k][c], len(slots))
                    if s == len(members):
                        members.append([])
                    members[s].append(u * nmax + int(h))
                if len(slots) == 1:
                    lay.append(next(iter(slots)))
                    continue
                ci = len(col_starts)
                lay.append(ci)
                self.slot_words.append(list(slots))
                col_starts.append(len(slot_col))
                for s, m in enumerate(members):
                    slot_starts.append(len(entry_h))
                    entry_h.extend(m)
                    slot_col.append(ci)
                    slot_local.append(s)
                if prod * len(slots) >= _RADIX_LIMIT:  # start a new key chunk
                    chunks.append(len(chunk_starts))
                    chunk_starts.append(ci)
                    prod = 1
                radix.append(prod)
                prod *= len(slots)
            self.layout.append(lay)
            if chunks:
                uc.append(u)
                chunks_of.append(chunks)
            else:
                fixed_texts.append(" ".join(w for w in lay if w != EMPTY))
                fixed_refs.append(self.refs[u])
        if fixed_refs:
            self.const = int(batch_errors(fixed_refs, fixed_texts)[:, ERR].sum())
        self.entry_h = np.asarray(entry_h, dtype=np.int64)
        self.slot_starts = np.asarray(slot_starts, dtype=np.int64)
        self.slot_col = np.asarray(slot_col, dtype=np.int64)
        self.slot_local = np.asarray(slot_local, dtype=np.int64)
        self.col_starts = np.asarray(col_starts, dtype=np.int64)
        self.radix = np.asarray(radix, dtype=np.int64)
        self.chunk_starts = np.asarray(chunk_starts, dtype=np.int64)
        self.uc = np.asarray(uc, dtype=np.int64)
        width = max((len(c) for c in chunks_of), default=0)
        # chunk ids per contested utterance, padded with the id of an all -1 column
        self.chunk_idx = np.full((len(uc), width), len(chunk_starts), dtype=np.int64)
        for i, c in enumerate(chunks_of):
            self.chunk_idx[i, :len(c)] = c
        self.cache: dict[tuple[int, ...], int] = {}

    def posteriors(self, w: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """Hypothesis posteriors (G, U, Nmax) for weights (G, F) and scales (G,)."""
        tot = np.einsum("unf,gf->gun", self.feats, w)
        tot = np.where(self.mask[None], tot, -np.inf)
        p = np.zeros_like(tot)
        hot = scale == 0
        if hot.any():  # the 1-best limit: all mass on the first maximum
            one = np.zeros_like(tot[hot])
            np.put_along_axis(one, tot[hot].argmax(axis=2)[..., None], 1.0, axis=2)
            p[hot] = np.where(self.mask[None], one, 0.0)
        if (~hot).any():
            x = tot[~hot] / scale[~hot][:, None, None]
            mx = x.max(axis=2, keepdims=True)
            e = np.exp(x - np.where(np.isfinite(mx), mx, 0.0))
            s = e.sum(axis=2, keepdims=True)
            p[~hot] = e / np.where(s > 0, s, 1.0)
        return p

    def choices(self, W: np.ndarray) -> np.ndarray:
        """Winning slot (local index) per contested column, (G, C)."""
        G = len(W)
        p = self.posteriors(W[:, :-1], W[:, -1]).reshape(G, -1)
        post = np.add.reduceat(p[:, self.entry_h], self.slot_starts, axis=1)
        top = np.maximum.reduceat(post, self.col_starts, axis=1)
        big = np.iinfo(np.int64).max
        cand = np.where(post >= top[:, self.slot_col] - TIE_TOL, self.slot_local, big)
        return np.minimum.reduceat(cand, self.col_starts, axis=1)

    def _text(self, u: int, key: Sequence[int]) -> str:
        digits = dict(zip(self.chunk_idx[np.searchsorted(self.uc, u)].tolist(), key))
        words = []
        for c in self.layout[u]:
            if isinstance(c, str):
                if c != EMPTY:
                    words.append(c)
                continue
            k = int(np.searchsorted(self.chunk_starts, c, side="right")) - 1
            choice = (digits[k] // int(self.radix[c])) % len(self.slot_words[c])
            w = self.slot_words[c][choice]
            if w != EMPTY:
                words.append(w)
        return " ".join(words)

    def errors(self, W: np.ndarray, batch: int = 32) -> np.ndarray:
        """Corpus errors (G,) of consensus decoding with each row of ``W`` (G, F + 1)."""
        W = np.atleast_2d(np.asarray(W, dtype=np.float64))
        out = np.full(len(W), self.const, dtype=np.int64)
        if not len(self.uc):
            return out
        for s in range(0, len(W), batch):
            Wb = W[s:s + batch]
            g = len(Wb)
            digits = np.add.reduceat(self.choices(Wb) * self.radix, self.chunk_starts, axis=1)
            digits = np.concatenate([digits, np.full((g, 1), -1, np.int64)], axis=1)
            keys = digits[:, self.chunk_idx]  # (g, Uc, width)
            rows = np.concatenate([np.broadcast_to(self.uc[None, :, None], (g, len(self.uc), 1)),
                                   keys], axis=2).reshape(g * len(self.uc), -1)
            uniq, inv = np.unique(rows, axis=0, return_inverse=True)
            vals = np.empty(len(uniq), dtype=np.int64)
            new = []
            for i, row in enumerate(map(tuple, uniq.tolist())):
                e = self.cache.get(row)
                if e is None:
                    new.append(i)
                else:
                    vals[i] = e
            if new:
                texts = [self._text(int(uniq[i, 0]), [k for k in uniq[i, 1:].tolist() if k >= 0])
                         for i in new]
                errs = batch_errors([self.refs[int(uniq[i, 0])] for i in new], texts)[:, ERR]
                for i, e in zip(new, errs.tolist()):
                    vals[i] = e
                    self.cache[tuple(uniq[i].tolist())] = e
            out[s:s + g] += vals[inv.reshape(-1)].reshape(g, len(self.uc)).sum(axis=1)
        return out


@dataclass
class ConsensusTuneResult:
    """Best weights and posterior scale, their exact dev WER (%) and errors, the 1-best
    errors of the start weights, the dev WER along the scale (other weights at their
    best, on the best result's alignment), and one line per round."""

    weights: dict[str, float]
    scale: float
    wer: float
    errors: int
    words: int
    onebest_errors: int
    curve: list[tuple[float, float]]
    rounds: list[str] = field(default_factory=list)


def align_all(nbest: NBest, feats: np.ndarray, mask: np.ndarray, w: np.ndarray,
              scale: float) -> list[tuple[Mesh, np.ndarray]]:
    """Mesh and alignment order of every utterance for weight vector ``w`` (F,)."""
    tot = feats @ w if feats.size else np.zeros(mask.shape)
    return [build_mesh([h.words for h in u.hyps], tot[i, :len(u.hyps)], scale)
            for i, u in enumerate(nbest)]


def tune_consensus(nbest: NBest, keys: Sequence[str], wip: bool = False,
                   signed: Sequence[str] = (), start: dict[str, float] | None = None,
                   errors: list[np.ndarray] | None = None, levels: int = 3, rounds: int = 2,
                   curve_points: int = 41,
                   log: Callable[[str], None] | None = None) -> ConsensusTuneResult:
    """The search of the module docstring: weights for ``keys`` (first fixed at 1.0),
    ``wip`` if asked, and the posterior scale.  ``start``: 1-best weights to start
    from (default: tuned here); ``errors``: ``hyp_error_matrix`` output if known."""
    keys = list(keys)
    names = keys + ([WIP] if wip else [])
    if errors is None:
        errors = hyp_error_matrix(nbest)
    if start is None:
        start = tune_weights(nbest, keys, wip=wip, errors=errors, signed=signed).weights
    missing = [n for n in names if n not in start]
    if missing:
        raise InputError(f"start weights lack {', '.join(missing)}")
    feats, mask = pack_features(nbest, keys, wip)
    F = len(names)
    w0 = np.array([float(start[n]) for n in names])
    spread = feature_spreads(feats, mask)
    tot0 = feats @ w0 if feats.size else np.zeros(mask.shape)
    unit_s = float(feature_spreads(tot0[..., None], mask)[0])
    unit = np.concatenate([spread[0] / spread, [unit_s]])
    is_signed = [n == WIP or n in signed for n in names] + [False]
    nref = ref_word_counts(nbest)
    chosen = np.where(mask.any(axis=1), np.where(mask, tot0, -np.inf).argmax(axis=1), -1)
    onebest = int(sum(int(e[c, ERR]) if c >= 0 else int(n)
                      for e, c, n in zip(errors, chosen, nref)))
    words = int(nref.sum())
    say = log or (lambda s: None)

    best_vec, best_err, best_fm = np.concatenate([w0, [0.0]]), onebest, None
    first_fm = None
    cur = np.concatenate([w0, [unit_s]])
    lines = [f"start: 1-best weights, scale 0 (1-best): {onebest} errors"]
    say(lines[-1])
    for r in range(rounds + 1):
        fm = FixedMeshes(nbest, feats, mask, align_all(nbest, feats, mask, cur[:F], cur[F]))
        exact = int(fm.errors(cur[None])[0])
        lines.append(f"round {r}: aligned with scale {cur[F]:g}: exact {exact} errors")
        say(lines[-1])
        if first_fm is None:
            first_fm = fm
        if exact < best_err:
            best_vec, best_err, best_fm = cur.copy(), exact, fm
        elif r > 0:
            break
        if r == rounds:
            break
        search = _Search(fm, is_signed, unit, levels, 0)
        vec, err = cur.copy(), exact
        if r == 0:  # the scale alone first, from its grid
            grid = np.array([0.0] + [g * unit_s for g in SCALE_GRID])
            vec, err = search.line_search(vec, search.axis(F), grid - vec[F])
        vec, err = search.refine(vec, err, tuple(range(1, F + 1)))
        lines.append(f"round {r}: search on this alignment: {err} errors at scale {vec[F]:g}")
        say(lines[-1])
        if np.array_equal(vec, cur):
            break
        cur = vec
    if best_fm is None:  # nothing beat 1-best: the start weights at scale 0
        best_fm = first_fm
    bw = best_vec
    xs = np.unique(np.concatenate([[0.0], np.linspace(0.0, max(2 * bw[F], unit_s),
                                                      curve_points)[1:], [bw[F]]]))
    trial = np.repeat(bw[None], len(xs), axis=0)
    trial[:, F] = xs
    curve = list(zip(xs.tolist(), (100.0 * best_fm.errors(trial) / max(words, 1)).tolist()))
    weights = {n: float(v) for n, v in zip(names, bw[:F])}
    return ConsensusTuneResult(weights, float(bw[F]), 100.0 * best_err / max(words, 1),
                               best_err, words, onebest, curve, lines)
