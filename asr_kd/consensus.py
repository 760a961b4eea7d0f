"""Consensus decoding: N-best list -> confusion network ("word mesh") -> best word per slot.

The method of Mangu, Brill & Stolcke (2000, "Finding consensus in speech
recognition") applied to N-best lists, as SRILM's ``nbest-lattice -use-mesh``
and ``nbest-rover`` do it (Stolcke, Konig & Weintraub, "Explicit word error
minimization in N-best list rescoring", Eurospeech 1997).  Per utterance:

1. Total score.  Each hypothesis gets the weighted total of
   :func:`asr_kd.scoring.total_score` (stored scores, ``rank``, ``KEY*words``,
   ``KEY/words``, ``wip`` x words): the same number 1-best selection ranks by.
2. Order.  Hypotheses are sorted by decreasing total, as ``nbest-lattice`` does
   unless ``-no-reorder``; equal totals keep their list order (SRILM sorts with
   ``qsort``, whose order for ties is unspecified: our choice).
3. Posteriors.  ``p_h = exp(total_h / S) / sum_k exp(total_k / S)`` with the
   posterior scale ``S`` (``-posterior-scale``: "divide the total weighted log
   score by S when computing normalized posterior probabilities").  Scores here
   are natural logs and SRILM's are log10, but ``10^(t10 / S) = exp(t10 * ln 10 / S)``
   and ``t10 * ln 10`` is the natural-log total, so the same ``S`` with the same
   weights gives the same posteriors in both.  ``S = 0`` is the limit S -> 0:
   posterior 1 on the first hypothesis with the highest total, 0 elsewhere, so
   the consensus output is exactly the 1-best hypothesis (our addition; SRILM
   treats 0 as "use the LM weight").
   Repeated hypotheses (the same word sequence more than once, e.g. two
   segmentations of one string, or HyPoradise's filled slots) are one word
   string: they are merged into one entry whose posterior is the sum of theirs
   (its total the log-sum-exp ``S * log sum exp(total / S)``; the maximum at
   ``S = 0``), aligned once at that total's place in the order; every copy shares
   its path.  (Dropping the repeats instead, as ``--dedup`` does, loses their mass.)
4. Alignment.  The hypotheses are aligned one by one, in that order, into a
   mesh: an ordered list of columns, each a map word -> posterior mass, where
   the empty word ``""`` (SRILM's ``*DELETE*``) holds the mass of hypotheses
   that have no word there.  Each new hypothesis is aligned to the mesh by the
   edit-distance dynamic programme of SRILM's ``WordMesh::alignWords`` with
   posterior-weighted costs (T = total posterior aligned so far): putting word w
   in column c costs ``T - P_c(w)`` (``T`` if w is not in c); skipping column c
   costs ``T - P_c("")``; a word in a new column costs ``T``.  On equal costs the
   diagonal move (match/substitution) wins, then skipping a column, then a new
   column (SRILM's strict ``<`` tests, same floating-point operations in the
   same order).  The hypothesis' posterior is then added to every column on its
   path (to ``""`` where it skips one); a new column gets ``""`` with mass T
   (all hypotheses before it) and the word with the hypothesis' posterior.
5. Decision.  In every column the word with the highest posterior wins (the
   empty word's mass multiplied by ``deletion_bias``, SRILM's
   ``-deletion-bias``); the output is the sequence of winning non-empty words.
   Ties: the winner is the first word, in the order words entered the column,
   whose posterior is within ``TIE_TOL`` of the column's maximum (so sums of
   equal posteriors that differ in the last bit still tie), i.e. the word of the
   highest-ranked hypothesis among the tied ones (SRILM breaks ties by hash
   order, undocumented: our choice).  So
   with one hypothesis, or one hypothesis of posterior ~1, the output is that
   hypothesis.

Pause and noise tokens: SRILM's ``nbest-lattice`` removes ``-pau-`` (and
``-noise`` tags) before aligning; here the hypotheses' words are taken as given,
so any filtering happens before this module sees them.

The mesh keeps, for every aligned hypothesis, the word it put in each column
(``Mesh.paths``): ``asr_kd.tune_consensus`` reweights a fixed alignment with
other weights and scales without aligning again.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from .errors import InputError
from .nbest.model import NBest
from .scoring import WIP, check_totals, pack_features

EMPTY = ""  # the empty word (SRILM's *DELETE*): a hypothesis has no word in this column
TIE_TOL = 1e-9  # column posteriors closer than this count as tied

_DIAG, _DEL, _INS = 0, 1, 2
# Cells of one alignment table, (columns + 1) x (words + 1), at most: the dynamic
# programme is pure Python (about 1 s and 150 MB per 4M cells), so a hypothesis of
# 10^5 or 10^6 words (a whole document, not an utterance) is refused, not run for hours.
MAX_ALIGN_CELLS = 4_000_000


class AlignmentTooLarge(ValueError):
    """Aligning a hypothesis of ``words`` words to a mesh of ``columns`` columns needs
    more than :data:`MAX_ALIGN_CELLS` cells."""

    def __init__(self, columns: int, words: int):
        super().__init__(f"aligning a hypothesis of {words} words to {columns} columns needs "
                         f"{(columns + 1) * (words + 1)} cells (at most {MAX_ALIGN_CELLS})")
        self.columns, self.words = columns, words


@dataclass
class Mesh:
    """A confusion network.

    ``columns[c]``: word -> posterior mass in column c, words in order of first
    appearance (``EMPTY`` for "no word"); ``total``: posterior mass aligned so
    far (1 after a whole list); ``paths[k][c]``: the word the k-th aligned
    hypothesis has in column c (``EMPTY`` if none).
    """

    columns: list[dict[str, float]] = field(default_factory=list)
    total: float = 0.0
    paths: list[list[str]] = field(default_factory=list)

    def align(self, words: Sequence[str], score: float) -> None:
        """Align one hypothesis (its words, its posterior ``score``) into the mesh."""
        cols, T = self.columns, self.total
        R, L = len(cols), len(words)
        if (R + 1) * (L + 1) > MAX_ALIGN_CELLS:
            raise AlignmentTooLarge(R, L)
        cost = [[0.0] * (L + 1) for _ in range(R + 1)]
        move = [[_DIAG] * (L + 1) for _ in range(R + 1)]
        row0, mrow0 = cost[0], move[0]
        for j in range(1, L + 1):
            row0[j] = row0[j - 1] + T
            mrow0[j] = _INS
        for i in range(1, R + 1):
            col = cols[i - 1]
            dp = col.get(EMPTY)
            del_pen = T - (dp if dp is not None else 0.0)
            prev, row, mrow = cost[i - 1], cost[i], move[i]
            row[0] = prev[0] + del_pen
            mrow[0] = _DEL
            for j in range(1, L + 1):
                wp = col.get(words[j - 1])
                # (cost + T) - P, evaluated as SRILM does, so equal costs compare equal
                best = prev[j - 1] + T - wp if wp is not None else prev[j - 1] + T
                m = _DIAG
                d = prev[j] + del_pen
                if d < best:
                    best, m = d, _DEL
                n = row[j - 1] + T
                if n < best:
                    best, m = n, _INS
                row[j] = best
                mrow[j] = m
        path = [EMPTY] * R
        i, j = R, L
        while i > 0 or j > 0:
            m = move[i][j]
            if m == _DIAG:
                col = cols[i - 1]
                col[words[j - 1]] = col.get(words[j - 1], 0.0) + score
                path[i - 1] = words[j - 1]
                i -= 1
                j -= 1
            elif m == _DEL:
                col = cols[i - 1]
                col[EMPTY] = col.get(EMPTY, 0.0) + score
                i -= 1
            else:  # a new column after column i-1
                new = {EMPTY: T} if T != 0.0 else {}  # as SRILM: no mass, no entry
                new[words[j - 1]] = score
                cols.insert(i, new)
                for p in self.paths:
                    p.insert(i, EMPTY)
                path.insert(i, words[j - 1])
                j -= 1
        self.paths.append(path)
        self.total = T + score

    def best_words(self, deletion_bias: float = 1.0) -> list[str]:
        """The winning word of every column, ``EMPTY`` where "no word" wins (rule 5)."""
        out = []
        for col in self.columns:
            eff = [(w, p * deletion_bias if w == EMPTY else p) for w, p in col.items()]
            top = max(p for _, p in eff)
            # the first word (in order of appearance) within TIE_TOL of the maximum
            out.append(next(w for w, p in eff if p >= top - TIE_TOL))
        return out

    def consensus(self, deletion_bias: float = 1.0) -> list[str]:
        """The consensus hypothesis: the winning non-empty words in column order."""
        return [w for w in self.best_words(deletion_bias) if w != EMPTY]


def posteriors(totals: np.ndarray, scale: float) -> np.ndarray:
    """Hypothesis posteriors ``softmax(totals / scale)``, shape (N,) -> (N,).

    ``scale == 0``: 1 on the first maximum, 0 elsewhere (the 1-best limit).
    """
    totals = np.asarray(totals, dtype=np.float64)
    if not len(totals):
        return totals.copy()
    if scale < 0 or not math.isfinite(scale):
        raise ValueError(f"posterior scale must be finite and >= 0, got {scale}")
    if scale == 0:
        p = np.zeros(len(totals))
        p[int(np.argmax(totals))] = 1.0
        return p
    x = totals / scale
    x = np.exp(x - x.max())  # SRILM subtracts the best hypothesis' score too
    return x / x.sum()


def alignment_order(totals: np.ndarray) -> np.ndarray:
    """Hypothesis indices by decreasing total; equal totals keep list order."""
    return np.argsort(-np.asarray(totals, dtype=np.float64), kind="stable")


def merged_totals(groups: list[list[int]], totals: np.ndarray, scale: float) -> np.ndarray:
    """The total of each group of repeated hypotheses (G,): ``scale * logsumexp(totals /
    scale)`` over its members, their maximum at ``scale == 0``; a lone member's own."""
    out = np.empty(len(groups))
    for g, members in enumerate(groups):
        t = totals[members]
        if len(members) == 1 or scale == 0:
            out[g] = t.max()
        else:
            m = t.max()
            out[g] = m + scale * math.log(float(np.exp((t - m) / scale).sum()))
    return out


def build_mesh(hyps: Sequence[Sequence[str]], totals: np.ndarray, scale: float,
               utt: str = "?") -> tuple[Mesh, np.ndarray]:
    """Mesh of one utterance's hypotheses (word lists) with weighted ``totals`` (N,).

    Returns the mesh and the alignment order (N,): ``mesh.paths[k]`` belongs to
    hypothesis ``order[k]``.  Repeats of a word sequence are aligned once, with the
    sum of their posteriors, and share that path (rule 3).  An alignment larger than
    :data:`MAX_ALIGN_CELLS` is an InputError naming the utterance ``utt``.
    """
    totals = np.asarray(totals, dtype=np.float64)
    post = posteriors(totals, scale)
    first: dict[tuple, int] = {}
    groups: list[list[int]] = []
    for k, h in enumerate(hyps):
        g = first.setdefault(tuple(h), len(groups))
        if g == len(groups):
            groups.append([])
        groups[g].append(k)
    mesh, order = Mesh(), []
    try:
        for g in alignment_order(merged_totals(groups, totals, scale)):
            members = groups[g]
            mesh.align(hyps[members[0]], float(post[members].sum()))
            for _ in members[1:]:
                mesh.paths.append(list(mesh.paths[-1]))  # later column inserts reach copies too
            order += members
    except AlignmentTooLarge as e:
        raise InputError(f"utterance {utt!r}: consensus decoding: {e}; hypotheses this long "
                         "are documents, not utterances: segment them, or use --decode "
                         "1best") from None
    return mesh, np.array(order, dtype=np.int64)


def weighted_totals(nbest: NBest, weights: Mapping[str, float]) -> list[np.ndarray]:
    """Per utterance, the weighted total of each hypothesis (N_u,), as 1-best ranks them."""
    keys = [k for k in weights if k != WIP]
    with_wip = WIP in weights
    feats, mask = pack_features(nbest, keys, with_wip)
    w = np.array([weights[k] for k in keys] + ([weights[WIP]] if with_wip else []), float)
    if feats.size:
        check_totals(feats, mask, w, nbest, weights)
    tot = feats @ w if feats.size else np.zeros(mask.shape)
    return [tot[i, :len(u.hyps)] for i, u in enumerate(nbest)]


def consensus_meshes(nbest: NBest, weights: Mapping[str, float], scale: float) -> list[Mesh]:
    """The mesh of every utterance (an empty mesh for one without hypotheses)."""
    if scale < 0 or not math.isfinite(scale):
        raise ValueError(f"posterior scale must be finite and >= 0, got {scale}")
    return [build_mesh([h.words for h in u.hyps], tot, scale, u.utt)[0]
            for u, tot in zip(nbest, weighted_totals(nbest, weights))]


def consensus_decode(nbest: NBest, weights: Mapping[str, float], scale: float,
                     deletion_bias: float = 1.0) -> list[str]:
    """Consensus hypothesis text per utterance (``""`` for an utterance without hypotheses)."""
    return [" ".join(m.consensus(deletion_bias))
            for m in consensus_meshes(nbest, weights, scale)]


SRILM_DELETE = "*DELETE*"   # SRILM's name of the empty word in a mesh file


def mesh_text(mesh: Mesh, name: str) -> str:
    """``mesh`` in SRILM's word-mesh format (wlat-format(5), as ``nbest-lattice -write``
    writes it): ``name``, ``numaligns``, ``posterior`` (the total mass), then one
    ``align POS WORD POSTERIOR ...`` line per column, words in order of appearance and
    the empty word as ``*DELETE*``.  Posteriors are those of the alignment, before
    any deletion bias."""
    lines = [f"name {name}", f"numaligns {len(mesh.columns)}", f"posterior {mesh.total:.10g}"]
    for i, col in enumerate(mesh.columns):
        lines.append(f"align {i} " + " ".join(
            f"{SRILM_DELETE if w == EMPTY else w} {p:.10g}" for w, p in col.items()))
    return "\n".join(lines) + "\n"


def write_meshes(out_dir: str, nbest: NBest, meshes: Sequence[Mesh]) -> None:
    """``score --out-mesh DIR``: every utterance's mesh (:func:`mesh_text`) as
    ``DIR/<utterance id>`` (SRILM's ``nbest-lattice -write-dir`` layout), all files
    put in place together."""
    from .fileio import FileSet
    from .nbest.srilm import safe_name

    os.makedirs(out_dir, exist_ok=True)
    with FileSet() as files:
        for u, mesh in zip(nbest, meshes):
            name = safe_name(u.utt, "utterance id", out_dir)
            with files.open(os.path.join(out_dir, name)) as f:
                f.write(mesh_text(mesh, u.utt))
