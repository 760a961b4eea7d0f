"""The N-best data model shared by every reader, writer, rescorer and scorer.

An :class:`NBest` is an ordered list of :class:`Utterance`; each utterance has
an id, an optional reference and a list of :class:`Hyp`.  Every score is a
natural-log score where larger is better (readers convert costs and other log
bases).  Rescoring adds keys (``"lm:student"``); nothing is ever dropped.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class Hyp:
    """One hypothesis: its word string (may be empty) and named log-scores.

    Slotted: a set holds millions of these, and a per-object ``__dict__`` would
    add about 100 bytes to each."""

    text: str
    scores: dict[str, float] = field(default_factory=dict)

    @property
    def words(self) -> list[str]:
        return self.text.split()


@dataclass
class Utterance:
    """One utterance: id, optional reference text, hypotheses in first-pass order."""

    utt: str
    hyps: list[Hyp] = field(default_factory=list)
    ref: str | None = None


@dataclass
class NBest:
    """An N-best set: utterances in file order; ids are unique.

    ``positional_ids``: the reader made the ids up from positions ("0", "1", ...)
    because the file has none; references from elsewhere then match by order only.
    """

    utts: list[Utterance] = field(default_factory=list)
    positional_ids: bool = False

    def __len__(self) -> int:
        return len(self.utts)

    def __iter__(self):
        return iter(self.utts)

    def by_id(self) -> dict[str, Utterance]:
        return {u.utt: u for u in self.utts}

    def score_keys(self) -> list[str]:
        """Score names present on every hypothesis, in first-seen order."""
        keys: list[str] | None = None
        for u in self.utts:
            for h in u.hyps:
                if keys is None:
                    keys = list(h.scores)
                else:
                    keys = [k for k in keys if k in h.scores]
        return keys or []

    def num_hyps(self) -> int:
        return sum(len(u.hyps) for u in self.utts)


def utt_ids_digest(nbest) -> str:
    """Hash of the utterance ids in order: shards of one input agree on it, and a weights
    file records the set it was tuned on by it."""
    import hashlib

    h = hashlib.sha256()
    for u in nbest:
        h.update(u.utt.encode("utf-8") + b"\n")
    return h.hexdigest()[:16]
