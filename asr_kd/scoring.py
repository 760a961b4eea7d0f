"""Word error rates of N-best selections: edit counts, best-hypothesis choice, Kaldi lines.

Edit counts come from jiwer (``jiwer.process_words``), never from a hand-written
edit distance.  Words are whitespace-separated tokens compared exactly (case
matters, no normalisation).  jiwer < 4 refuses empty strings, so empty
references and hypotheses are counted here directly: an empty reference makes
every hypothesis word an insertion, an empty hypothesis makes every reference
word a deletion.

Selection uses the total score ``sum_k weight[k] * score[k]
+ weight["wip"] * number_of_words``; the highest total wins and ties go to the
earliest hypothesis.  An utterance with no hypotheses gets the empty hypothesis
(chosen index ``-1``): all its reference words count as deletions, and its oracle
is the same.

Features.  Wherever a score key is accepted (weights, ``tune --scores``,
:func:`pick_best`, :func:`total_score`, :func:`pack_features`) it names one
feature of a hypothesis, resolved by :func:`feature_value` alone:

- ``wip``: the word count (the word insertion penalty's feature);
- a score the hypothesis carries under that exact name (a stored score always
  wins, so a stored ``rank`` or ``x*words`` is used as it is);
- ``rank``: minus the 0-based position in its list (0, -1, -2, ...): the
  first-pass order, for lists that come without scores;
- ``KEY*words`` / ``KEY/words``: feature KEY times / divided by the word count
  (divided by max(words, 1)), e.g. ``score*words`` turns a per-token average
  log-prob (Whisper) into a length-aware total, ``lm:teacher/words`` is a
  per-word LM score.  KEY is resolved by the same rules (``rank/words`` works).

A missing key is an InputError naming the utterance, the hypothesis, the key and
the scores that hypothesis does carry.

All rates (WER, SER, oracle WER) are percentages, as in Kaldi's ``compute-wer``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Mapping, Sequence

import jiwer
import numpy as np

from .errors import InputError
from .fileio import atomic_write
from .nbest.model import Hyp, NBest

WIP = "wip"  # weight key that multiplies the hypothesis word count, not a score

_SPLIT = jiwer.Compose([jiwer.ReduceToListOfListOfWords()])

# Columns of the per-hypothesis error arrays returned by hyp_error_matrix.
ERR, SUB, DEL, INS = 0, 1, 2, 3


@dataclass(frozen=True)
class ErrorCounts:
    """Edit counts of one hypothesis against one reference."""

    sub: int
    del_: int
    ins: int
    ref_words: int
    hits: int

    @property
    def errors(self) -> int:
        return self.sub + self.del_ + self.ins


def _norm(text: str) -> str:
    # jiwer splits on single spaces; collapse tabs/newlines/runs so words match str.split().
    return " ".join(text.split())


def batch_errors(refs: Sequence[str], hyps: Sequence[str]) -> np.ndarray:
    """Edit counts of ``hyps[i]`` against ``refs[i]`` for every i, with one jiwer call.

    Returns an int64 array of shape (N, 4): columns (errors, sub, del, ins).
    """
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    out = np.zeros((len(refs), 4), dtype=np.int64)
    pairs = []  # indices where both sides are non-empty: those go to jiwer
    rs, hs = [], []
    for i, (r, h) in enumerate(zip(refs, hyps)):
        r, h = _norm(r), _norm(h)
        if not r:
            out[i, INS] = len(h.split())
        elif not h:
            out[i, DEL] = len(r.split())
        else:
            pairs.append(i)
            rs.append(r)
            hs.append(h)
    if pairs:
        # Texts are normalised already: only the final split transform (saves ~15 %).
        res = jiwer.process_words(rs, hs, _SPLIT, _SPLIT)
        for i, chunks in zip(pairs, res.alignments):
            s = d = n = 0  # plain ints: numpy scalar updates would dominate the run time
            for c in chunks:
                if c.type == "substitute":
                    s += c.ref_end_idx - c.ref_start_idx
                elif c.type == "delete":
                    d += c.ref_end_idx - c.ref_start_idx
                elif c.type == "insert":
                    n += c.hyp_end_idx - c.hyp_start_idx
            out[i, SUB:] = s, d, n
    out[:, ERR] = out[:, SUB] + out[:, DEL] + out[:, INS]
    return out


def utt_errors(ref: str, hyp: str) -> ErrorCounts:
    """Edit counts of one hypothesis; either string may be empty."""
    _, s, d, i = (int(x) for x in batch_errors([ref], [hyp])[0])
    n = len(ref.split())
    return ErrorCounts(sub=s, del_=d, ins=i, ref_words=n, hits=n - s - d)


def hyp_error_matrix(nbest: NBest) -> list[np.ndarray]:
    """Per-hypothesis edit counts for every utterance, computed once.

    Returns one int64 array per utterance, shape (num_hyps, 4), columns
    (errors, sub, del, ins); (0, 4) for an utterance without hypotheses.
    Identical hypothesis texts within an utterance are aligned once, and the
    whole set goes through a single jiwer call.  Every utterance needs a
    reference (InputError otherwise).
    """
    refs, hyps = [], []
    slots = []  # per utterance: index of each hypothesis into the unique pair list
    for u in nbest:
        if u.ref is None:
            raise InputError(f"utterance {u.utt!r} has no reference")
        seen: dict[str, int] = {}
        idx = []
        for h in u.hyps:
            key = _norm(h.text)
            if key not in seen:
                seen[key] = len(refs)
                refs.append(u.ref)
                hyps.append(key)
            idx.append(seen[key])
        slots.append(np.asarray(idx, dtype=np.int64))
    # In blocks, only to show progress: a real 30-best set takes 10-20 s of alignment.
    from .progress import progress
    block, parts = 20000, [np.zeros((0, 4), np.int64)]
    with progress(total=len(refs), desc="WER alignment", unit="hyp") as bar:
        for a in range(0, len(refs), block):
            parts.append(batch_errors(refs[a:a + block], hyps[a:a + block]))
            bar.update(len(parts[-1]))
    flat = np.concatenate(parts)
    return [flat[i] if len(i) else np.zeros((0, 4), np.int64) for i in slots]


def ref_word_counts(nbest: NBest) -> np.ndarray:
    """Number of reference words per utterance, shape (U,); InputError if a ref is missing."""
    out = np.zeros(len(nbest), dtype=np.int64)
    for i, u in enumerate(nbest):
        if u.ref is None:
            raise InputError(f"utterance {u.utt!r} has no reference")
        out[i] = len(u.ref.split())
    return out


RANK = "rank"  # built-in feature: minus the hypothesis' 0-based position in its list
_TIMES, _PER = "*words", "/words"


def feature_value(hyp: Hyp, key: str, pos: int | None, utt: str = "?") -> float:
    """Value of feature ``key`` for ``hyp``, the ``pos``-th (0-based) hypothesis of ``utt``.

    The one place features are resolved (see the module docstring): ``wip`` is
    the word count; a stored score of that name wins; then ``rank`` (-pos),
    ``KEY*words`` and ``KEY/words``.  ``pos`` is only needed for ``rank``.
    InputError naming utterance, hypothesis, key and the scores present otherwise.
    """
    if key == WIP:
        return float(len(hyp.words))
    v = hyp.scores.get(key)
    if v is not None:
        return v
    if key == RANK and pos is not None:
        return -float(pos)
    for suffix in (_TIMES, _PER):
        if key.endswith(suffix) and len(key) > len(suffix):
            base = feature_value(hyp, key[:-len(suffix)], pos, utt)  # raises for the base key
            n = len(hyp.words)
            return base * n if suffix == _TIMES else base / max(n, 1)
    which = "a hypothesis" if pos is None else f"hypothesis {pos + 1}"
    have = ", ".join(map(repr, hyp.scores)) if hyp.scores else "none"
    extra = " (its position is unknown)" if key == RANK else ""
    raise InputError(f"utterance {utt!r}: {which} has no score {key!r}{extra}; "
                     f"its scores: {have}")


def total_score(hyp: Hyp, weights: Mapping[str, float], utt: str = "?",
                pos: int | None = None) -> float:
    """Weighted total of one hypothesis: sum of weight x feature (:func:`feature_value`).

    ``pos``: the hypothesis' 0-based position in its list, needed for ``rank``.
    """
    return sum(w * feature_value(hyp, k, pos, utt) for k, w in weights.items())


def pack_features(nbest: NBest, keys: Sequence[str], with_wip: bool
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Features padded to the longest list, for vectorised selection.

    Returns ``feats`` (U, Nmax, F) float64 with F = len(keys) (+1 word-count
    column when ``with_wip``), each value from :func:`feature_value`, and
    ``mask`` (U, Nmax) bool, True on real hypotheses.  A missing score key is an
    InputError naming utterance and key.
    """
    names = list(keys) + ([WIP] if with_wip else [])
    nmax = max((len(u.hyps) for u in nbest), default=0)
    check_padding(nbest, nmax, len(names))
    feats = np.zeros((len(nbest), nmax, len(names)), dtype=np.float64)
    mask = np.zeros((len(nbest), nmax), dtype=bool)
    for i, u in enumerate(nbest):
        for j, h in enumerate(u.hyps):
            feats[i, j] = [feature_value(h, k, j, u.utt) for k in names]
        mask[i, :len(u.hyps)] = True
    return feats, mask


# The padded feature array may exceed this many bytes only while padding wastes less
# than PAD_WASTE times what the hypotheses themselves need.
PAD_BYTES = 256 << 20
PAD_WASTE = 8


def check_padding(nbest: NBest, nmax: int, nfeats: int) -> None:
    """InputError when padding every list to the longest (``nmax`` hypotheses, ``nfeats``
    features of 8 bytes) would need more than :data:`PAD_BYTES` and more than
    :data:`PAD_WASTE` times the unpadded size: one list of 10^5 hypotheses in a set of
    10^4 utterances would otherwise ask for tens of GiB.  Names the longest list."""
    padded = len(nbest) * nmax * (8 * max(nfeats, 1) + 1)
    real = nbest.num_hyps() * (8 * max(nfeats, 1) + 1)
    if padded <= PAD_BYTES or padded <= PAD_WASTE * real:
        return
    longest = max(nbest, key=lambda u: len(u.hyps))
    lengths = sorted(len(u.hyps) for u in nbest)
    raise InputError(f"utterance {longest.utt!r} has {nmax} hypotheses (median list "
                     f"{lengths[len(lengths) // 2]}): scoring pads every list to the longest, "
                     f"{len(nbest)} x {nmax} x {nfeats} features = {padded / (1 << 30):.1f} "
                     "GiB; cut the longest lists (keep their first hypotheses) or score "
                     "such utterances separately")


def select(feats: np.ndarray, mask: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Best hypothesis per utterance for weight vector(s) ``w``.

    ``feats`` (U, Nmax, F), ``mask`` (U, Nmax), ``w`` (F,) or (G, F).
    Returns indices (U,) or (G, U); -1 where an utterance has no hypotheses.
    Ties go to the earliest hypothesis (np.argmax returns the first maximum;
    padding is -inf and sits after the real hypotheses).
    """
    total = feats @ w.T  # (U, Nmax) or (U, Nmax, G)
    if total.ndim == 3:
        total = np.moveaxis(total, 2, 0)  # (G, U, Nmax)
    total = np.where(mask, total, -np.inf)
    best = total.argmax(axis=-1) if total.shape[-1] else np.zeros(total.shape[:-1], np.int64)
    return np.where(mask.any(axis=1), best, -1)


def pick_best(nbest: NBest, weights: Mapping[str, float]) -> list[int]:
    """Index of the highest-total hypothesis per utterance (-1 when it has none)."""
    keys = [k for k in weights if k != WIP]
    with_wip = WIP in weights
    feats, mask = pack_features(nbest, keys, with_wip)
    w = np.array([weights[k] for k in keys] + ([weights[WIP]] if with_wip else []), float)
    check_totals(feats, mask, w, nbest, weights)
    return select(feats, mask, w).tolist()


def check_totals(feats: np.ndarray, mask: np.ndarray, w: np.ndarray, nbest: NBest,
                 weights: Mapping[str, float]) -> None:
    """InputError when a weighted total (``feats`` (U, Nmax, F) times ``w`` (F,)) is not
    a finite number: weights so large (1e308) that the sum overflows would otherwise
    pick hypotheses by an infinite or NaN total and report a plausible WER."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = feats @ w
    bad = mask & ~np.isfinite(total)
    if bad.any():
        i = int(np.argmax(bad.any(axis=1)))
        shown = ", ".join(f"{k}={v:g}" for k, v in weights.items())
        raise InputError(f"utterance {nbest.utts[i].utt!r}: the weighted total score is not a "
                         f"finite number (weights {shown}): weights this large overflow; "
                         "use weights of a sensible size")


@dataclass(frozen=True)
class WerResult:
    """Corpus scores of one selection.  Rates are percentages."""

    wer: float
    ser: float
    oracle_wer: float
    words: int
    ins: int
    del_: int
    sub: int
    utts: int
    errors: int
    sent_errors: int
    oracle_errors: int

    def to_dict(self) -> dict:
        """The JSON form: keys wer, ser, oracle_wer, words, ins, del, sub, utts."""
        return {"wer": self.wer, "ser": self.ser, "oracle_wer": self.oracle_wer,
                "words": self.words, "ins": self.ins, "del": self.del_, "sub": self.sub,
                "utts": self.utts}


def pool_wer(results: Sequence[WerResult]) -> WerResult:
    """Several runs' results on the same references as one: counts summed, rates recomputed
    (the pooled WER of K runs is their mean WER when every run scored the same words)."""
    if not results:
        raise ValueError("no results to pool")
    tot = {k: sum(getattr(r, k) for r in results) for k in
           ("words", "ins", "del_", "sub", "utts", "errors", "sent_errors", "oracle_errors")}
    return WerResult(wer=_rate(tot["errors"], tot["words"]), ser=_rate(tot["sent_errors"], tot["utts"]),
                     oracle_wer=_rate(tot["oracle_errors"], tot["words"]), **tot)


def _rate(num: int, den: int) -> float:
    # No reference words: 0 % if nothing was wrong, else infinite (Kaldi refuses to divide).
    if den:
        return 100.0 * num / den
    return 0.0 if num == 0 else float("inf")


def corpus_wer(nbest: NBest, chosen: Sequence[int],
               errors: list[np.ndarray] | None = None) -> WerResult:
    """WER, SER and oracle WER of choosing hypothesis ``chosen[i]`` in utterance i.

    ``chosen[i] == -1`` means the empty hypothesis.  ``errors`` is
    :func:`hyp_error_matrix` output, computed here when not given.
    """
    if len(chosen) != len(nbest):
        raise ValueError(f"{len(chosen)} choices for {len(nbest)} utterances")
    if errors is None:
        errors = hyp_error_matrix(nbest)
    nref = ref_word_counts(nbest)
    tot = np.zeros(4, dtype=np.int64)
    sent = oracle = 0
    for n, e, c in zip(nref, errors, chosen):
        row = np.array([n, 0, n, 0]) if c < 0 else e[c]  # empty hyp: all deletions
        tot += row
        sent += int(row[ERR] > 0)
        oracle += int(e[:, ERR].min()) if len(e) else int(n)
    words = int(nref.sum())
    return WerResult(wer=_rate(int(tot[ERR]), words), ser=_rate(sent, len(nbest)),
                     oracle_wer=_rate(oracle, words), words=words, ins=int(tot[INS]),
                     del_=int(tot[DEL]), sub=int(tot[SUB]), utts=len(nbest),
                     errors=int(tot[ERR]), sent_errors=sent, oracle_errors=oracle)


def kaldi_wer_line(r: WerResult) -> str:
    """``%WER 4.27 [ 241 / 5643, 30 ins, 21 del, 190 sub ]`` as Kaldi's compute-wer prints it."""
    return (f"%WER {r.wer:.2f} [ {r.errors} / {r.words}, {r.ins} ins, "
            f"{r.del_} del, {r.sub} sub ]")


def kaldi_ser_line(r: WerResult) -> str:
    """``%SER 12.34 [ 37 / 300 ]``."""
    return f"%SER {r.ser:.2f} [ {r.sent_errors} / {r.utts} ]"


def oracle_line(r: WerResult) -> str:
    """``%ORACLE 0.59 [ 321 / 54402 ]``: the N-best oracle WER.

    Deliberately without the substring "WER", so Kaldi's ``utils/best_wer.sh``
    (which greps WER and keeps the minimum) never mistakes it for a system result.
    """
    return f"%ORACLE {r.oracle_wer:.2f} [ {r.oracle_errors} / {r.words} ]"


def chosen_texts(nbest: NBest, chosen: Sequence[int]) -> list[tuple[str, str]]:
    """``(utt, text)`` of each chosen hypothesis; empty text for index -1."""
    return [(u.utt, "" if c < 0 else _norm(u.hyps[c].text)) for u, c in zip(nbest, chosen)]


def write_text(path: str | os.PathLike, nbest: NBest, chosen: Sequence[int]) -> None:
    """Write the chosen hypotheses as Kaldi ``text``: ``uttid w1 w2 ...`` (just ``uttid`` if empty)."""
    with atomic_write(path) as f:
        for utt, text in chosen_texts(nbest, chosen):
            f.write(f"{utt} {text}\n" if text else f"{utt}\n")


def write_trn(path: str | os.PathLike, nbest: NBest, chosen: Sequence[int]) -> None:
    """Write the chosen hypotheses as sclite ``trn``: ``w1 w2 ... (uttid)``."""
    with atomic_write(path) as f:
        for utt, text in chosen_texts(nbest, chosen):
            f.write(f"{text} ({utt})\n" if text else f"({utt})\n")


def texts_wer(nbest: NBest, texts: Sequence[str],
              errors: list[np.ndarray] | None = None) -> WerResult:
    """WER and SER of the word strings ``texts[i]`` (one per utterance, e.g. consensus
    output, which need not be in the list); the oracle WER stays the N-best oracle.

    ``errors``: :func:`hyp_error_matrix` output (for the oracle), computed when not given.
    """
    if len(texts) != len(nbest):
        raise ValueError(f"{len(texts)} texts for {len(nbest)} utterances")
    if errors is None:
        errors = hyp_error_matrix(nbest)
    nref = ref_word_counts(nbest)
    rows = batch_errors([u.ref for u in nbest], list(texts))
    tot = rows.sum(axis=0)
    oracle = sum(int(e[:, ERR].min()) if len(e) else int(n) for e, n in zip(errors, nref))
    sent = int((rows[:, ERR] > 0).sum())
    words = int(nref.sum())
    return WerResult(wer=_rate(int(tot[ERR]), words), ser=_rate(sent, len(nbest)),
                     oracle_wer=_rate(oracle, words), words=words, ins=int(tot[INS]),
                     del_=int(tot[DEL]), sub=int(tot[SUB]), utts=len(nbest),
                     errors=int(tot[ERR]), sent_errors=sent, oracle_errors=oracle)


def write_texts(path: str | os.PathLike, nbest: NBest, texts: Sequence[str],
                trn: bool = False) -> None:
    """Write one word string per utterance as Kaldi ``text`` (or sclite ``trn``)."""
    with atomic_write(path) as f:
        for u, text in zip(nbest, texts):
            text = _norm(text)
            if trn:
                f.write(f"{text} ({u.utt})\n" if text else f"({u.utt})\n")
            else:
                f.write(f"{u.utt} {text}\n" if text else f"{u.utt}\n")
