"""Tokenizers: a Kaldi ``words.txt``-compatible word vocabulary and SentencePiece.

Both expose the same small interface used by the corpus readers, the models
and the rescorer:

* ``size``: number of ids V (the LM output dimension);
* ``bos``, ``eos``, ``unk``: ids of ``<s>``, ``</s>``, ``<unk>``;
* ``encode(text) -> list[int]`` (no ``<s>``/``</s>`` added);
* ``count_oov(text) -> int``: how many words map to ``<unk>``.

Word ids are those of ``words.txt`` (``word id`` per line, separated by any
whitespace: spaces or TABs; CRLF and a leading BOM are accepted, other bytes
must be UTF-8).  A word or an id listed twice is an InputError naming both
lines, and so is a byte-order mark starting any line but the first (files
concatenated with ``cat``).  Ids are non-negative ASCII integers and may have
gaps, at most ``MAX_UNUSED_IDS`` in all (a stray huge id is refused rather than
building a huge output layer); ``<s>``, ``</s>`` and ``<unk>`` must be
present.  Files
written here put ``<s> 0``, ``</s> 1``, ``<unk> 2`` first, then words by
descending count (ties alphabetical).  A Kaldi ``words.txt`` with ``<eps>``,
disambiguation symbols (``#0``) and ids that are not contiguous is read as is;
the LM's output size is then ``max id + 1`` (unused ids simply get no mass
from training data).
"""
from __future__ import annotations

import collections
import os
from typing import Iterable

from .errors import InputError
from .fileio import atomic_write, read_lines

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
# ids a words.txt may leave unused (gaps); the LM output size is max id + 1, so a
# stray huge id (a typo, a corrupt line) would otherwise build a giant model.
MAX_UNUSED_IDS = 1_000_000


def _parse_id(text: str, path, line: int) -> int:
    """A words.txt id: a non-negative integer in ASCII digits (no sign, no ``_``)."""
    if text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    if text.startswith("-") and text[1:].isascii() and text[1:].isdigit():
        raise InputError(f"negative id {text[:20]}", path, line)
    raise InputError(f"expected a non-negative integer id, got {text[:40]!r}", path, line)


class WordVocab:
    """Word-level vocabulary; unknown words map to ``<unk>``."""

    kind = "words"

    def __init__(self, words: list[str]):
        self.itos = list(words)
        self.stoi = {}
        for i, w in enumerate(self.itos):
            if w is not None and w not in self.stoi:
                self.stoi[w] = i
        for sym in (BOS, EOS, UNK):
            if sym not in self.stoi:
                raise ValueError(f"vocabulary lacks {sym}")
        self.bos, self.eos, self.unk = self.stoi[BOS], self.stoi[EOS], self.stoi[UNK]

    @property
    def size(self) -> int:
        return len(self.itos)

    def __len__(self) -> int:
        return self.size

    def encode(self, text: str) -> list[int]:
        unk = self.unk
        get = self.stoi.get
        return [get(w, unk) for w in text.split()]

    def count_oov(self, text: str) -> int:
        return sum(1 for w in text.split() if w not in self.stoi)

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.itos[i] for i in ids)

    # -- files -------------------------------------------------------------
    @classmethod
    def build(cls, sentences: Iterable[str], max_size: int | None = None,
              min_count: int = 1) -> "WordVocab":
        """Count words; keep those seen ``min_count`` times, at most ``max_size`` ids."""
        counts = collections.Counter()
        for s in sentences:
            counts.update(s.split())
        for sym in (BOS, EOS, UNK):
            counts.pop(sym, None)
        words = sorted((w for w, c in counts.items() if c >= min_count),
                       key=lambda w: (-counts[w], w))
        if max_size is not None:
            words = words[: max(0, max_size - 3)]
        return cls([BOS, EOS, UNK] + words)

    def save(self, path: str | os.PathLike) -> None:
        with atomic_write(path) as f:
            for i, w in enumerate(self.itos):
                if w is not None:
                    f.write(f"{w} {i}\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "WordVocab":
        """Read ``words.txt`` (``word id`` per line, ids unique, any order)."""
        table: dict[int, str] = {}
        id_line: dict[int, int] = {}
        word_line: dict[str, int] = {}
        for n, line in read_lines(path):
            parts = line.split()
            if not parts:
                continue
            if parts[0].startswith("\ufeff"):   # cat-ed files: '<s>' would not be found
                raise InputError("line starts with a byte-order mark (U+FEFF), as left by "
                                 "concatenating files that had one; remove it", path, n)
            if len(parts) != 2:
                raise InputError("expected 'word id'", path, n)
            w, i = parts
            idx = _parse_id(i, path, n)
            if idx in table:
                raise InputError(f"id {idx} used twice (first on line {id_line[idx]})", path, n)
            if w in word_line:
                raise InputError(f"word {w!r} listed twice (first on line {word_line[w]})",
                                 path, n)
            table[idx] = w
            id_line[idx], word_line[w] = n, n
        if not table:
            raise InputError("empty vocabulary", path)
        unused = max(table) + 1 - len(table)
        if unused > MAX_UNUSED_IDS:
            top = max(table)
            raise InputError(f"id {top} leaves {unused} ids unused (at most {MAX_UNUSED_IDS} "
                             "allowed: the LM would get max id + 1 outputs)", path, id_line[top])
        words: list = [None] * (max(table) + 1)
        seen = set(word_line)
        for i, w in table.items():
            words[i] = w
        missing = [s for s in (BOS, EOS, UNK) if s not in seen]
        if missing:
            raise InputError(f"vocabulary lacks {', '.join(missing)}", path)
        return cls(words)


class SpmTokenizer:
    """SentencePiece subword tokenizer (ids from the model: ``<unk>``, ``<s>``, ``</s>``)."""

    kind = "spm"

    def __init__(self, model_path: str | os.PathLike):
        import sentencepiece as spm

        self.path = os.fspath(model_path)
        if not os.path.isfile(self.path):
            raise InputError("no such SentencePiece model", self.path)
        self.sp = spm.SentencePieceProcessor()
        try:
            self.sp.Load(self.path)
        except (OSError, RuntimeError) as e:
            raise InputError(f"not a valid SentencePiece model ({e})", self.path) from None
        self.bos, self.eos, self.unk = self.sp.bos_id(), self.sp.eos_id(), self.sp.unk_id()
        if min(self.bos, self.eos, self.unk) < 0:
            raise InputError("SentencePiece model needs <s>, </s> and <unk> ids", self.path)

    @property
    def size(self) -> int:
        return self.sp.GetPieceSize()

    def __len__(self) -> int:
        return self.size

    def encode(self, text: str) -> list[int]:
        return self.sp.EncodeAsIds(text)

    def count_oov(self, text: str) -> int:
        return sum(1 for i in self.encode(text) if i == self.unk)

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.DecodeIds(list(ids))

    @staticmethod
    def train(text_path: str | os.PathLike, out_prefix: str, vocab_size: int,
              model_type: str = "unigram", seed: int = 0) -> str:
        """Train ``<out_prefix>.model`` on one-sentence-per-line text; return its path."""
        import sentencepiece as spm

        # TrainerSpec has no seed field; the library-wide generator seed is the knob.
        spm.SetRandomGeneratorSeed(seed)
        try:
            spm.SentencePieceTrainer.Train(
                input=os.fspath(text_path), model_prefix=out_prefix,
                vocab_size=vocab_size, model_type=model_type,
                unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
                character_coverage=1.0,
                hard_vocab_limit=False, minloglevel=2, num_threads=1)
        except RuntimeError as e:
            raise InputError(f"SentencePiece training failed: {e}", text_path) from None
        return out_prefix + ".model"


def load_tokenizer(model_dir: str | os.PathLike, kind: str = "words"):
    """The tokenizer stored in a model or vocab folder (``words.txt`` or ``spm.model``)."""
    model_dir = os.fspath(model_dir)
    if kind == "spm":
        return SpmTokenizer(os.path.join(model_dir, "spm.model"))
    path = os.path.join(model_dir, "words.txt")
    if not os.path.isfile(path):
        raise InputError("no words.txt in this folder", model_dir)
    return WordVocab.load(path)


def load_vocab_path(path: str | os.PathLike):
    """A tokenizer from a folder holding ``spm.model`` or ``words.txt``, or from either file."""
    path = os.fspath(path)
    if os.path.isdir(path):
        if os.path.isfile(os.path.join(path, "spm.model")):
            return SpmTokenizer(os.path.join(path, "spm.model"))
        if os.path.isfile(os.path.join(path, "words.txt")):
            return WordVocab.load(os.path.join(path, "words.txt"))
        raise InputError("folder holds neither words.txt nor spm.model", path)
    if path.endswith(".model"):
        return SpmTokenizer(path)
    return WordVocab.load(path)
