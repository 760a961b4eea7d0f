"""Scoring-side word filter: noise and pause tokens removed before WER.

The counterpart of SRILM's ``-noise`` / ``-noise-vocab`` (nbest-lattice,
nbest-optimize) and of a Kaldi recipe's ``local/wer_output_filter``: words
that are not part of what is scored (``-pau-``, ``[noise]``, ``[laughter]``,
``<unk>``, ``@reject@`` ...) are removed from hypotheses AND references before
edit counts, SER, oracle and the word count behind ``wip`` / ``KEY*words``.
Scores already stored on a hypothesis (acoustic, LM, rescoring) are not
touched: the filter decides what counts as an error, not what the LM saw
(``asr_kd.textfilter`` rewrites LM input and never affects scoring).

Patterns: a word matches a pattern exactly, except that ``*`` matches any run
of characters (``[*]`` = every bracketed token, ``<*>`` = every angle-bracketed
one).  No other character is special: ``[noise]`` is the literal word, not a
character class.  ``*`` alone (every word) is refused.

Default: ``-pau-``, SRILM's pause word.  SRILM's N-best tools remove pause
words from every hypothesis unless told ``-keep-noise`` (nbest-lattice calls
``NBestList::removeNoise`` on each list it reads, which drops the pause word
and the ``-noise`` / ``-noise-vocab`` tags;
``-noise`` is documented as "ignored ... the same as the -pau- word"), and
no other toolkit writes ``-pau-`` as a word, so it is the default for every
format; ``--no-default-noise`` keeps it.
"""
from __future__ import annotations

import re
from typing import Iterable, Sequence

from .errors import InputError
from .fileio import read_lines
from .nbest.model import Hyp, NBest, Utterance

DEFAULT_NOISE = ("-pau-",)


class NoiseFilter:
    """Removes the words matching any of ``patterns`` (see the module docstring);
    with ``ignore_case``, the words kept are also lower-cased (on hypotheses and
    references alike, so words that differ only in case count as equal).  Patterns
    match the words as written."""

    def __init__(self, patterns: Iterable[str] = (), ignore_case: bool = False):
        self.ignore_case = bool(ignore_case)
        pats = list(dict.fromkeys(p for p in patterns if p))   # unique, in order
        for p in pats:
            if not p.strip("*"):
                raise InputError(f"noise pattern {p!r} would remove every word")
            if any(c.isspace() for c in p):
                raise InputError(f"noise pattern {p!r}: a pattern is one word (no spaces)")
        self.patterns: tuple[str, ...] = tuple(pats)
        self._exact = frozenset(p for p in pats if "*" not in p)
        wild = [p for p in pats if "*" in p]
        self._wild = (re.compile("|".join(".*".join(map(re.escape, p.split("*")))
                                          for p in wild), re.S) if wild else None)
        self._seen: dict[str, bool] = {}    # word -> is noise (lists repeat words a lot)

    def __bool__(self) -> bool:
        return bool(self.patterns) or self.ignore_case

    def describe(self) -> str:
        """The filter in words: its patterns, and ``(case ignored)`` when it folds case."""
        return " ".join(self.patterns or ("(none)",)) + (" (case ignored)"
                                                        if self.ignore_case else "")

    def record(self) -> dict:
        """What a result file records about the filter: ``{"noise": [...]}``, plus
        ``"ignore_case": true`` when set (absent otherwise: outputs stay as they were)."""
        return {"noise": list(self.patterns), **({"ignore_case": True} if self.ignore_case
                                                   else {})}

    def is_noise(self, word: str) -> bool:
        hit = self._seen.get(word)
        if hit is None:
            hit = word in self._exact or bool(self._wild and self._wild.fullmatch(word))
            self._seen[word] = hit
        return hit

    def words(self, text: str) -> list[str]:
        """The words of ``text`` (whitespace-split) that are not noise (lower-cased
        with ``ignore_case``)."""
        kept = [w for w in text.split() if not self.is_noise(w)]
        return [w.lower() for w in kept] if self.ignore_case else kept

    def text(self, text: str) -> str:
        """``text`` without its noise words, single-spaced."""
        return " ".join(self.words(text))

    def nbest(self, nbest: NBest) -> tuple[NBest, int, int]:
        """A filtered copy of ``nbest`` and the numbers of hypothesis and reference
        tokens removed.  Scores are shared with the input (not copied), and so is
        every hypothesis the filter leaves unchanged (most of them, usually: a
        copy of each would double the memory a large set takes)."""
        out, n_hyp, n_ref = NBest(), 0, 0
        for u in nbest:
            hyps = []
            for h in u.hyps:
                kept = self.text(h.text)
                n_hyp += len(h.text.split()) - len(kept.split())
                hyps.append(h if kept == h.text else Hyp(kept, h.scores))
            ref = u.ref
            if ref is not None:
                ref = self.text(u.ref)
                n_ref += len(u.ref.split()) - len(ref.split())
            out.utts.append(Utterance(u.utt, hyps, ref))
        return out, n_hyp, n_ref


def read_noise_vocab(path) -> list[str]:
    """Patterns from a noise vocabulary file: the first field of each non-blank line
    (SRILM vocabulary files: one word per line; ``#`` starts a comment line here)."""
    out = []
    for _, line in read_lines(path):
        parts = line.split()
        if parts and not parts[0].startswith("#"):
            out.append(parts[0])
    return out


def build_filter(words: Sequence[str] | None = None, vocab_files: Sequence[str] | None = None,
                 default: bool = True, ignore_case: bool = False) -> NoiseFilter:
    """The filter for ``--noise W1,W2`` (each item may hold a comma list),
    ``--noise-vocab FILE`` (repeatable) and the default ``-pau-`` unless
    ``default`` is False; ``ignore_case``: ``--ignore-case``."""
    pats = list(DEFAULT_NOISE) if default else []
    for item in words or []:
        pats += [w.strip() for w in item.split(",") if w.strip()]
    for f in vocab_files or []:
        pats += read_noise_vocab(f)
    return NoiseFilter(pats, ignore_case)
