"""LM text readers and the two batching modes.

Text is UTF-8, one sentence per line, either plain or Kaldi ``text`` layout
(``uttid w1 w2 ...``).  Empty lines are skipped (an empty sentence carries no
LM information beyond ``</s>``).

Input policies: words are separated by any whitespace (spaces, TABs, a lone
CR inside a line); CRLF line ends, a leading BOM and ``.gz`` are accepted; a
non-UTF-8 line is an InputError naming the file and line; a file with no
words is an InputError.  Lines of any length are read (the batchers cut long
sentences, see ``max_len``).  In Kaldi layout the first field is dropped
unchecked: ids are not used by LM training, so repeated ids are allowed (each
line is a sentence), and a line holding only an id is an empty sentence.

Batching modes (both deterministic given ``seed`` and ``epoch``):

* ``sentence``: each sentence is ``<s> w1 .. wn </s>``; a batch holds whole
  sentences padded to the longest, inputs ``(B, T)`` and targets ``(B, T)``
  with ``ignore_index`` (-100) on padding.  Every sentence starts from a fresh
  state: exactly what rescoring sees.
* ``stream``: all sentences concatenated (each followed by ``</s>``, the
  first preceded by ``<s>``), cut into ``B`` contiguous streams and walked in
  BPTT windows of ``T``; the state is carried across windows.  This is what
  the PTB literature reports.

Data-parallel runs (``rank``/``world`` of a torchrun job): ``batch_size`` is
per rank and the *global* batch is ``batch_size * world``.  Both modes lay the
data out exactly as one process with the global batch would and give rank
``r`` its ``r``-th share of every global batch (sentence mode: the ``r``-th of
``world`` near-equal contiguous slices of the length-sorted batch; stream mode:
streams ``[r*B, (r+1)*B)``).  So W ranks of batch B see, step by step, the
same tokens as one process of batch W*B, and canonical ``positions`` (used by
the teacher cache) are those of the global layout.
"""
from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Iterator

import torch

from .errors import InputError
from .fileio import read_lines

IGNORE_INDEX = -100


def _looks_like_kaldi_ids(first_fields: list[str]) -> bool:
    # Kaldi utterance ids carry digits and are unique; plain text sentence-initial
    # words almost never are both (PTB has none, WSJ text spells numbers out).
    return (len(first_fields) > 0
            and all(any(c.isdigit() for c in f) for f in first_fields)
            and len(set(first_fields)) == len(first_fields))


def read_sentences(path: str | os.PathLike, text_format: str = "auto") -> list[str]:
    """Read sentences from ``path``: ``plain``, ``kaldi`` (drop first field) or ``auto``.

    ``auto`` chooses ``kaldi`` when every one of the first 200 lines starts with
    a distinct field containing a digit.  Raises :class:`InputError` for a missing
    file, non-UTF-8 bytes (with the line) and a corpus with no words.
    """
    if text_format not in ("auto", "plain", "kaldi"):
        raise ValueError(f"unknown text format {text_format!r}")
    lines = [(n, s) for n, s in read_lines(path)]
    if text_format == "auto":
        firsts = [s.split(maxsplit=1)[0] for _, s in lines[:200] if s.strip()]
        text_format = "kaldi" if _looks_like_kaldi_ids(firsts) else "plain"
    out = []
    for n, s in lines:
        if text_format == "kaldi":
            parts = s.split(maxsplit=1)
            s = parts[1] if len(parts) == 2 else ""
        s = " ".join(s.split())
        if s:
            out.append(s)
    if not out:
        raise InputError("corpus has no words", path)
    return out


def encode_sentences(sentences: list[str], tokenizer) -> list[list[int]]:
    """Token ids per sentence, without ``<s>``/``</s>``."""
    return [tokenizer.encode(s) for s in sentences]


@dataclass
class Batch:
    """One training batch.

    inputs, targets: (B, T) long; targets hold IGNORE_INDEX on padding.
    reset: True when the recurrent state must start fresh (sentence mode, or
    the first window of a stream epoch).
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    reset: bool
    positions: torch.Tensor | None = None   # (B, T) canonical target index, -1 on padding

    @property
    def num_tokens(self) -> int:
        return int((self.targets != IGNORE_INDEX).sum())


class SentenceBatches:
    """Whole-sentence batches, length-bucketed and shuffled per epoch.

    Sentences are sorted by length within shuffled buckets of ``50 * batch_size``
    so padding stays small, then the batch order is shuffled.  ``max_len`` splits
    longer sentences into pieces of at most ``max_len`` predictions (the first
    starts at ``<s>``, each later one at the previous piece's last target, from a
    fresh state; every target is predicted once) so one pathological line cannot
    blow up memory.

    rank, world: data-parallel share (see the module notes).  When shuffling
    (training) under ``world > 1``, a global batch with fewer sentences than
    ranks (at most one per epoch, the tail) is dropped so every rank takes the
    same number of steps; without shuffling (evaluation) every sentence is kept
    and a rank whose share of the last batch is empty yields one batch fewer.

    pad_multiple: pad each batch's length up to a multiple of this (padding is
    ignored by every loss); 8 under CPU bf16, where oneDNN compiles and caches one
    LSTM kernel per sequence length and ~80 distinct lengths cost gigabytes.
    """

    def __init__(self, ids: list[list[int]], bos: int, eos: int, batch_size: int,
                 seed: int = 0, shuffle: bool = True, max_len: int = 400,
                 rank: int = 0, world: int = 1, pad_multiple: int = 1):
        self.seqs = []
        self.offsets = []   # canonical index of each piece's first target (file order)
        total = 0
        for s in ids:
            full = [bos] + s + [eos]
            for i in range(0, max(1, len(full) - 1), max_len):
                piece = full[i: i + max_len + 1]
                if len(piece) >= 2:
                    self.seqs.append(piece)
                    self.offsets.append(total)
                    total += len(piece) - 1
        self.batch_size, self.seed, self.shuffle = batch_size * world, seed, shuffle
        self.rank, self.world = rank, world
        self.pad_multiple = pad_multiple

    def num_tokens(self) -> int:
        return sum(len(s) - 1 for s in self.seqs)

    def _order(self, epoch: int) -> list[list[int]]:
        """Global batches of ``epoch`` (each then split across ranks)."""
        batches = self._global_order(epoch)
        if self.world > 1 and self.shuffle:
            batches = [b for b in batches if len(b) >= self.world]
        return batches

    def _global_order(self, epoch: int) -> list[list[int]]:
        idx = list(range(len(self.seqs)))
        if not self.shuffle:
            return [idx[i: i + self.batch_size] for i in range(0, len(idx), self.batch_size)]
        rng = random.Random(self.seed * 100003 + epoch)
        rng.shuffle(idx)
        bucket = 50 * self.batch_size
        batches = []
        for b in range(0, len(idx), bucket):
            chunk = sorted(idx[b: b + bucket], key=lambda i: len(self.seqs[i]))
            batches += [chunk[i: i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        rng.shuffle(batches)
        return batches

    def __len__(self) -> int:
        n = (len(self.seqs) + self.batch_size - 1) // self.batch_size
        # Every global batch but the corpus tail is full (buckets hold whole batches).
        if self.world > 1 and self.shuffle and 0 < len(self.seqs) % self.batch_size < self.world:
            n -= 1
        return n

    def _share(self, members: list[int]) -> list[int]:
        """This rank's contiguous slice of a global batch (sizes differ by at most one)."""
        if self.world == 1:
            return members
        q, r = divmod(len(members), self.world)
        lo = self.rank * q + min(self.rank, r)
        return members[lo: lo + q + (self.rank < r)]

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        """Batches of ``epoch``, skipping the first ``start`` (for resume)."""
        for members in self._order(epoch)[start:]:
            members = self._share(members)
            if members:
                yield pad_batch([self.seqs[i] for i in members], [self.offsets[i] for i in members],
                                self.pad_multiple)


def pad_batch(seqs: list[list[int]], offsets: list[int] | None = None,
              multiple: int = 1) -> Batch:
    """Inputs ``s[:-1]`` and targets ``s[1:]`` padded to (B, max len - 1), the length
    rounded up to a multiple of ``multiple``.

    offsets: canonical index of each sequence's first target; gives ``positions``.
    """
    T = max(len(s) for s in seqs) - 1
    T = -(-T // multiple) * multiple
    inputs = torch.zeros(len(seqs), T, dtype=torch.long)
    targets = torch.full((len(seqs), T), IGNORE_INDEX, dtype=torch.long)
    positions = None if offsets is None else torch.full((len(seqs), T), -1, dtype=torch.long)
    for b, s in enumerate(seqs):
        t = torch.tensor(s, dtype=torch.long)
        inputs[b, : len(s) - 1] = t[:-1]
        targets[b, : len(s) - 1] = t[1:]
        if positions is not None:
            positions[b, : len(s) - 1] = torch.arange(offsets[b], offsets[b] + len(s) - 1)
    return Batch(inputs, targets, reset=True, positions=positions)


class StreamBatches:
    """Contiguous BPTT windows over the concatenated corpus (Zaremba-style).

    The token stream ``<s> s1 </s> s2 </s> ...`` is cut into ``batch_size`` equal
    rows (the remainder is dropped, as in the PTB literature); window ``k`` covers
    columns ``[k*bptt, (k+1)*bptt)`` of the inputs.  Order is fixed, so every
    epoch sees the same windows; state is carried between windows.
    With ``world > 1`` the layout has ``batch_size * world`` rows and this rank
    keeps rows ``[rank * batch_size, (rank + 1) * batch_size)``.
    """

    def __init__(self, ids: list[list[int]], bos: int, eos: int, batch_size: int, bptt: int,
                 rank: int = 0, world: int = 1):
        stream = [bos]
        for s in ids:
            stream += s
            stream.append(eos)
        data = torch.tensor(stream, dtype=torch.long)
        per_rank, batch_size = batch_size, batch_size * world
        cols = (len(data) - 1) // batch_size
        if cols < 1:
            raise ValueError("corpus too small for this batch size")
        self.inputs = data[: batch_size * cols].view(batch_size, cols)
        self.targets = data[1: batch_size * cols + 1].view(batch_size, cols)
        # Canonical target index = position in the stream (row-major over the layout).
        self.positions = torch.arange(batch_size * cols).view(batch_size, cols)
        if world > 1:
            rows = slice(rank * per_rank, (rank + 1) * per_rank)
            self.inputs, self.targets = self.inputs[rows], self.targets[rows]
            self.positions = self.positions[rows]
        self.bptt = bptt

    def num_tokens(self) -> int:
        return self.targets.numel()

    def __len__(self) -> int:
        return (self.inputs.shape[1] + self.bptt - 1) // self.bptt

    def epoch(self, epoch: int = 0, start: int = 0) -> Iterator[Batch]:
        for k in range(start, len(self)):
            sl = slice(k * self.bptt, (k + 1) * self.bptt)
            yield Batch(self.inputs[:, sl], self.targets[:, sl], reset=(k == 0),
                        positions=self.positions[:, sl])
