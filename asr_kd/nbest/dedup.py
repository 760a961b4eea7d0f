"""Repeated hypotheses within an utterance's N-best list.

Some lists repeat hypotheses: HyPoradise keeps the top 5 *unique* Whisper
hypotheses and fills the missing slots with repeats, and Kaldi or ESPnet
N-best lists can hold one word string several times (different alignments or
token segmentations of the same words).  Repeats change no 1-best choice (the
copies score alike and ties go to the earliest), but they inflate N, the
rescoring work and a position-based ``rank`` feature, and they would count
twice in any posterior over the list.

Policy (``dedup_hyps``): two hypotheses are the same when their word strings
are equal after whitespace normalisation (case and punctuation matter, as in
scoring); the first occurrence is kept with its scores and later ones are
dropped.  Every reader keeps the recogniser's order and lists come best first,
so the kept copy is the best-ranked one.
"""
from __future__ import annotations

from .model import NBest


def count_repeats(nbest: NBest) -> int:
    """How many hypotheses repeat an earlier one of their list (what
    :func:`dedup_hyps` would drop)."""
    return sum(len(u.hyps) - len({" ".join(h.text.split()) for h in u.hyps}) for u in nbest)


def dedup_hyps(nbest: NBest) -> int:
    """Drop repeated hypotheses in place (first occurrence kept); returns how many were dropped."""
    dropped = 0
    for u in nbest:
        seen: set[str] = set()
        kept = []
        for h in u.hyps:
            key = " ".join(h.text.split())
            if key in seen:
                dropped += 1
                continue
            seen.add(key)
            kept.append(h)
        u.hyps = kept
    return dropped
