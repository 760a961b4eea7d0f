"""Leakage guard: how much of a test set's references the LM text already holds.

An LM trained on text that contains the evaluation transcripts gives rescoring gains
that vanish on truly unseen speech.  Two measures, both on the references as the LM
sees text (after the LM-input filter, ``--text-filter``, the rules ``rescore``
applies to hypotheses; whitespace runs are one space, words compared exactly):

* **sentences**: reference sentences that occur as a whole LM-text sentence (line);
* **n-grams** (n = 8 by default): of all word n-grams inside reference sentences,
  the share that also occurs inside an LM-text sentence (n-grams do not cross
  sentence boundaries on either side).  References shorter than n words have no
  n-grams; they are counted (``short``) and take part in the sentence measure only.

Empty references (after the filter) are left out of both.  LM text is read like
training text (:func:`asr_kd.corpus.read_sentences`: plain or Kaldi ``text``,
``.gz``, BOM, CRLF).  Memory: one 64-bit hash per LM n-gram and sentence.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

from .corpus import read_sentences
from .errors import InputError

NGRAM = 8


@dataclass
class Overlap:
    """Counts of one reference set against the LM text; shares are percentages."""

    n: int
    lm_files: list[str]
    lm_sentences: int
    refs: int                 # non-empty references after the filter
    exact: int                # of them, found whole in the LM text
    ngrams: int               # reference n-grams
    ngrams_found: int         # of them, found in the LM text
    short: int                # references shorter than n words
    examples: list[str] = field(default_factory=list)  # ids of exact matches (first 10)

    @property
    def exact_share(self) -> float:
        return 100.0 * self.exact / self.refs if self.refs else 0.0

    @property
    def ngram_share(self) -> float:
        return 100.0 * self.ngrams_found / self.ngrams if self.ngrams else 0.0

    def to_dict(self) -> dict:
        return {"n": self.n, "lm_files": self.lm_files, "lm_sentences": self.lm_sentences,
                "refs": self.refs, "exact": self.exact, "exact_share": self.exact_share,
                "ngrams": self.ngrams, "ngrams_found": self.ngrams_found,
                "ngram_share": self.ngram_share, "short": self.short,
                "examples": self.examples}

    def lines(self, ref_name: str = "references") -> list[str]:
        """Two lines for people: the sentence and the n-gram measure."""
        ex = f" (e.g. {', '.join(self.examples[:5])})" if self.exact else ""
        return [f"{ref_name}: {self.exact} of {self.refs} reference sentences "
                f"({self.exact_share:.2f} %) occur in the LM text "
                f"({self.lm_sentences} sentences){ex}",
                f"{ref_name}: {self.ngrams_found} of {self.ngrams} reference {self.n}-grams "
                f"({self.ngram_share:.2f} %) occur in the LM text"
                + (f"; {self.short} references shorter than {self.n} words" if self.short
                   else "")]


def _ngrams(words: list[str], n: int):
    return (hash(tuple(words[i:i + n])) for i in range(len(words) - n + 1))


class LmTextIndex:
    """The sentences and n-grams of LM text files, as hashes."""

    def __init__(self, paths: Sequence[str], n: int = NGRAM):
        if n < 1:
            raise InputError(f"n-gram order {n}: expected a positive number")
        self.n, self.paths = n, list(paths)
        self.sentences: set[int] = set()
        self.grams: set[int] = set()
        self.count = 0
        for p in self.paths:
            for s in read_sentences(p):
                words = s.split()
                self.count += 1
                self.sentences.add(hash(" ".join(words)))
                self.grams.update(_ngrams(words, n))

    def check(self, refs: dict[str, str], text_filter: Callable[[str], str] | None = None
              ) -> Overlap:
        """The :class:`Overlap` of references ``{utt: text}`` (filtered by ``text_filter``)."""
        res = Overlap(self.n, self.paths, self.count, 0, 0, 0, 0, 0)
        for utt, text in refs.items():
            words = (text_filter(text) if text_filter else text).split()
            if not words:
                continue
            res.refs += 1
            if hash(" ".join(words)) in self.sentences:
                res.exact += 1
                if len(res.examples) < 10:
                    res.examples.append(utt)
            if len(words) < self.n:
                res.short += 1
            for g in _ngrams(words, self.n):
                res.ngrams += 1
                res.ngrams_found += g in self.grams
        return res
