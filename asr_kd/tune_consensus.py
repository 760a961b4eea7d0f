"""Tune score weights and the posterior scale for consensus decoding on a dev set.

Consensus decoding (:mod:`asr_kd.consensus`) aligns each utterance's hypotheses
into a mesh with posteriors from the weighted totals, so every candidate weight
vector would need a new alignment: far too slow for a search.  As SRILM's
``nbest-optimize`` does ("hypotheses are aligned using the initial weights"),
the search keeps one alignment fixed and only re-weights it; the alignment is
then rebuilt with the result and the search repeated from there:

0. Start: the 1-best weights (``asr_kd.tune.tune_weights``; or given) with
   posterior scale 0, whose consensus output is exactly the 1-best choice.  The
   scale's unit (:func:`scale_unit`) is the median gap between the best and the
   second-best total under the start weights: at 1 unit a typical runner-up has
   posterior odds e^-1 against the best.
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
   unit x 2^(j/4), |j| <= 32 (0 is the 1-best limit); if 0 wins, the best
   non-zero scale is a second start.  Then, from each start, the refinement of
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
        nb_slots, big_slot, col_utt = [], [], []
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
                col_utt.append(u)
                # The largest slot's posterior is the utterance's mass minus the others':
                # its (many) members need not be summed.
                big = max(range(len(members)), key=lambda s: len(members[s]))
                for s, m in enumerate(members):
                    if s == big:
                        big_slot.append(len(slot_col))
                    else:
                        nb_slots.append(len(slot_col))
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
        self.nb_slots = np.asarray(nb_slots, dtype=np.int64)
        big_slot = np.asarray(big_slot, dtype=np.int64)
        col_utt = np.asarray(col_utt, dtype=np.int64)
        # Columns grouped by their number of slots: each group is one dense
        # (columns, slots, G) array, so maxima and ties need no per-column loop.
        self.buckets = []
        nslots = np.diff(np.append(self.col_starts, len(slot_col)))
        for width in np.unique(nslots):
            cols = np.flatnonzero(nslots == width)
            idx = self.col_starts[cols][:, None] + np.arange(width)[None]
            bigpos = big_slot[cols] - self.col_starts[cols]
            self.buckets.append((cols, idx, bigpos, col_utt[cols]))
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
        tot[:, ~self.mask] = -np.inf
        hot = scale == 0
        x = tot / np.where(hot, 1.0, scale)[:, None, None]
        mx = x.max(axis=2, keepdims=True)
        mx[~np.isfinite(mx)] = 0.0  # utterances without hypotheses
        p = np.exp(x - mx)
        p /= np.maximum(p.sum(axis=2, keepdims=True), 1e-300)
        if hot.any():  # the 1-best limit: all mass on the first maximum
            one = np.zeros_like(tot[hot])
            np.put_along_axis(one, tot[hot].argmax(axis=2)[..., None], 1.0, axis=2)
            p[hot] = np.where(self.mask[None], one, 0.0)
        return p

    def choices(self, W: np.ndarray) -> np.ndarray:
        """Winning slot (local index) per contested column, (G, C)."""
        G = len(W)
        p = self.posteriors(W[:, :-1], W[:, -1])  # (G, U, Nmax)
        mass = p.sum(axis=2).T  # (U, G): 1, or 0 without hypotheses
        # (rows, G) layout: reduceat then runs over contiguous rows
        p = np.ascontiguousarray(p.reshape(G, -1).T)
        post = np.zeros((len(self.slot_local), G))
        post[self.nb_slots] = np.add.reduceat(p[self.entry_h], self.slot_starts, axis=0)
        out = np.empty((len(self.col_starts), G), dtype=np.int64)
        for cols, idx, bigpos, utt in self.buckets:
            v = post[idx]  # (c, width, G); the largest slot is 0 here
            rows = np.arange(len(cols))
            v[rows, bigpos] = mass[utt] - v.sum(axis=1)
            top = v.max(axis=1)
            # the first slot within TIE_TOL of the maximum
            out[cols] = np.argmax(v >= top[:, None] - TIE_TOL, axis=1)
        return out.T

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


def scale_unit(totals: np.ndarray, mask: np.ndarray) -> float:
    """Unit of the posterior scale: the median, over utterances with two or more
    hypotheses, of the gap between the best and second-best total (> 0), so at
    scale 1 unit a typical runner-up has posterior odds e^-1 against the best;
    the median within-utterance range of the totals if no gap is positive, else 1."""
    t = np.where(mask, totals, -np.inf)
    if t.shape[1] >= 2:
        top2 = -np.sort(-t, axis=1)[:, :2]
        gap = top2[:, 0] - top2[:, 1]
        gap = gap[np.isfinite(gap) & (gap > 0)]
        if len(gap):
            return float(np.median(gap))
    return float(feature_spreads(totals[..., None], mask)[0])


def align_all(nbest: NBest, feats: np.ndarray, mask: np.ndarray, w: np.ndarray,
              scale: float) -> list[tuple[Mesh, np.ndarray]]:
    """Mesh and alignment order of every utterance for weight vector ``w`` (F,)."""
    tot = feats @ w if feats.size else np.zeros(mask.shape)
    return [build_mesh([h.words for h in u.hyps], tot[i, :len(u.hyps)], scale, u.utt)
            for i, u in enumerate(nbest)]


def tune_consensus(nbest: NBest, keys: Sequence[str], wip: bool = False,
                   signed: Sequence[str] = (), start: dict[str, float] | None = None,
                   errors: list[np.ndarray] | None = None, levels: int = 3, rounds: int = 2,
                   curve_points: int = 41,
                   log: Callable[[str], None] | None = None,
                   fixed: Sequence[str] = ()) -> ConsensusTuneResult:
    """The search of the module docstring: weights for ``keys`` (first fixed at 1.0),
    ``wip`` if asked, and the posterior scale.  ``start``: 1-best weights to start
    from (default: tuned here); ``errors``: ``hyp_error_matrix`` output if known;
    ``fixed``: keys whose weight stays at its ``start`` value."""
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
    unit_s = scale_unit(tot0, mask)
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
        starts = [(vec, err)]
        if r == 0:  # the scale alone first, from its grid
            grid = np.array([0.0] + [g * unit_s for g in SCALE_GRID])
            starts = [search.line_search(vec, search.axis(F), grid - vec[F])]
            if starts[0][0][F] == 0:  # also refine from the best consensus point
                starts.append(search.line_search(vec, search.axis(F), grid[1:] - vec[F]))
        vec, err = None, None
        for v, e in starts:  # the first refined start with the fewest errors wins
            v, e = search.refine(v.copy(), e, tuple(i for i in range(1, F + 1)
                                                    if i == F or names[i] not in fixed))
            if err is None or e < err:
                vec, err = v, e
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
