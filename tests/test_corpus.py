"""Text readers and the sentence / stream batching modes."""
from __future__ import annotations

import collections
import gzip
import random

import pytest
import torch

from asr_kd.corpus import (IGNORE_INDEX, SentenceBatches, StreamBatches, encode_sentences,
                           pad_batch, read_sentences)
from asr_kd.errors import InputError
from asr_kd.vocab import WordVocab

BOS, EOS = 0, 1


def random_ids(n=53, lo=0, hi=12, vocab=20, seed=0):
    """n sentences of random ids in [3, vocab), lengths in [lo, hi]; each sentence unique."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        # first id encodes the index so every sentence can be identified in a batch
        out.append([3 + i] + [rng.randrange(3, vocab) for _ in range(rng.randint(lo, hi))])
    return out


# -- readers -------------------------------------------------------------------
def test_plain_and_kaldi_auto_detection(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("the cat sat\n\n  a   dog\tran \nthe end\n", encoding="utf-8")
    assert read_sentences(plain) == ["the cat sat", "a dog ran", "the end"]
    kaldi = tmp_path / "text"
    kaldi.write_text("utt001 the cat sat\nutt002 a dog\nutt003\nspk1-utt4 end\n", encoding="utf-8")
    assert read_sentences(kaldi) == ["the cat sat", "a dog", "end"]
    # forcing a format overrides detection
    assert read_sentences(kaldi, "plain")[0] == "utt001 the cat sat"
    assert read_sentences(plain, "kaldi") == ["cat sat", "dog ran", "end"]
    # repeated first fields are not utterance ids, even with digits
    rep = tmp_path / "rep.txt"
    rep.write_text("3 cats\n3 dogs\n", encoding="utf-8")
    assert read_sentences(rep) == ["3 cats", "3 dogs"]
    # first words without digits: plain
    nodig = tmp_path / "nodig.txt"
    nodig.write_text("uttA hello\nuttB world\n", encoding="utf-8")
    assert read_sentences(nodig) == ["uttA hello", "uttB world"]
    with pytest.raises(ValueError):
        read_sentences(plain, "csv")


def test_gzip_bom_crlf(tmp_path):
    path = tmp_path / "t.txt.gz"
    with gzip.open(path, "wb") as f:
        f.write("\ufeffone two\r\nthree\r\n".encode("utf-8"))
    assert read_sentences(path) == ["one two", "three"]


def test_non_utf8_line_names_file_and_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"fine line\nalso fine\ncaf\xe9 au lait\n")
    with pytest.raises(InputError) as e:
        read_sentences(path)
    assert str(e.value).startswith(f"{path}:3: ")
    assert "UTF-8" in str(e.value)


def test_empty_and_missing_corpus(tmp_path):
    for content in ("", "\n   \n\t\n"):
        path = tmp_path / "empty.txt"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(InputError, match="no words") as e:
            read_sentences(path)
        assert str(e.value).startswith(str(path))
    kaldi_empty = tmp_path / "text"
    kaldi_empty.write_text("utt1\nutt2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no words"):
        read_sentences(kaldi_empty, "kaldi")
    missing = tmp_path / "nowhere" / "train.txt"
    with pytest.raises(InputError) as e:
        read_sentences(missing)
    assert str(missing) in str(e.value) and "no such file" in str(e.value)
    with pytest.raises(InputError, match="folder"):
        read_sentences(tmp_path)


def test_encode_sentences():
    v = WordVocab.build(["a b", "b c"])
    assert encode_sentences(["a b z", ""], v) == [[v.stoi["a"], v.stoi["b"], v.unk], []]


# -- sentence batches ------------------------------------------------------------
def test_pad_batch_layout():
    b = pad_batch([[0, 5, 6, 1], [0, 7, 1], [0, 1]])
    assert b.inputs.shape == b.targets.shape == (3, 3) and b.reset
    assert b.inputs.tolist()[0] == [0, 5, 6]
    assert b.targets.tolist() == [[5, 6, 1], [7, 1, -100], [1, -100, -100]]
    assert b.num_tokens == 6


def test_sentence_batches_shapes_padding_and_markers():
    ids = random_ids()
    sb = SentenceBatches(ids, BOS, EOS, batch_size=8, seed=3)
    assert len(sb) == 7 and sb.num_tokens() == sum(len(s) + 1 for s in ids)
    batches = list(sb.epoch(0))
    assert len(batches) == 7
    for b in batches:
        B, T = b.inputs.shape
        assert b.targets.shape == (B, T) and 1 <= B <= 8 and b.reset
        assert b.inputs.dtype == b.targets.dtype == torch.long
        assert (b.inputs[:, 0] == BOS).all()
        for r in range(B):
            s = ids[int(b.targets[r, 0]) - 3]         # first word identifies the sentence
            n = len(s) + 1                            # predicted tokens: words + </s>
            assert b.inputs[r, :n].tolist() == [BOS] + s
            assert b.targets[r, :n].tolist() == s + [EOS]
            # padding targets are IGNORE_INDEX exactly where padding is
            assert b.targets[r, n:].tolist() == [IGNORE_INDEX] * (T - n)
        # the longest sentence of the batch has no padding
        assert (b.targets[:, -1] != IGNORE_INDEX).any()
        assert b.num_tokens == int((b.targets != IGNORE_INDEX).sum())


def _epoch_sentences(sb, epoch, start=0):
    """The sentence ids (first word) of each batch of an epoch."""
    return [[int(b.targets[r, 0]) for r in range(b.targets.shape[0])]
            for b in sb.epoch(epoch, start)]


def test_sentence_batches_cover_each_sentence_once_and_are_deterministic():
    ids = random_ids(n=97)
    sb = SentenceBatches(ids, BOS, EOS, batch_size=4, seed=11)
    e0 = _epoch_sentences(sb, 0)
    flat = [i for b in e0 for i in b]
    assert sorted(flat) == [3 + i for i in range(97)]
    # same (seed, epoch): same order, also from a fresh object
    assert _epoch_sentences(SentenceBatches(ids, BOS, EOS, 4, seed=11), 0) == e0
    assert _epoch_sentences(sb, 0) == e0
    e1 = _epoch_sentences(sb, 1)
    assert e1 != e0 and sorted(i for b in e1 for i in b) == sorted(flat)
    assert _epoch_sentences(SentenceBatches(ids, BOS, EOS, 4, seed=12), 0) != e0
    # resume: start skips exactly that many batches of the same order
    for start in (0, 1, 5, len(e0) - 1, len(e0)):
        assert _epoch_sentences(sb, 1, start) == e1[start:]


def test_sentence_batches_without_shuffle_keep_file_order():
    ids = random_ids(n=10)
    sb = SentenceBatches(ids, BOS, EOS, batch_size=4, shuffle=False)
    assert _epoch_sentences(sb, 0) == [[3, 4, 5, 6], [7, 8, 9, 10], [11, 12]]
    assert _epoch_sentences(sb, 5) == _epoch_sentences(sb, 0)


def test_sentence_batches_length_bucketing_limits_padding():
    ids = random_ids(n=400, lo=0, hi=60, seed=1)
    sb = SentenceBatches(ids, BOS, EOS, batch_size=8, seed=0)
    pad = sum(int((b.targets == IGNORE_INDEX).sum()) for b in sb.epoch(0))
    unsorted = SentenceBatches(ids, BOS, EOS, batch_size=8, shuffle=False)
    pad_unsorted = sum(int((b.targets == IGNORE_INDEX).sum()) for b in unsorted.epoch(0))
    assert pad < pad_unsorted / 4


def test_sentence_batches_split_long_sentences_cover_every_target_once():
    words = list(range(3, 3 + 23))
    sb = SentenceBatches([words, [50]], BOS, EOS, batch_size=16, shuffle=False, max_len=5)
    assert all(len(s) <= 6 for s in sb.seqs)
    assert sb.num_tokens() == 24 + 2
    targets = collections.Counter()
    for b in sb.epoch(0):
        assert b.inputs.shape[1] <= 5
        for t in b.targets[b.targets != IGNORE_INDEX].tolist():
            targets[t] += 1
    assert targets == collections.Counter(words + [EOS, 50, EOS])


def test_empty_sentence_gives_eos_only():
    sb = SentenceBatches([[]], BOS, EOS, batch_size=2, shuffle=False)
    (b,) = list(sb.epoch(0))
    assert b.inputs.tolist() == [[BOS]] and b.targets.tolist() == [[EOS]]


# -- stream batches --------------------------------------------------------------
def _stream(ids):
    s = [BOS]
    for x in ids:
        s += x + [EOS]
    return s


@pytest.mark.parametrize("B,bptt", [(3, 5), (4, 7), (1, 1000)])
def test_stream_batches_reproduce_the_stream(B, bptt):
    ids = random_ids(n=30, lo=0, hi=9, seed=2)
    stream = _stream(ids)
    sb = StreamBatches(ids, BOS, EOS, batch_size=B, bptt=bptt)
    cols = (len(stream) - 1) // B
    assert sb.num_tokens() == B * cols
    windows = list(sb.epoch(0))
    assert len(windows) == len(sb) == -(-cols // bptt)
    for k, w in enumerate(windows):
        width = min(bptt, cols - k * bptt)
        assert w.inputs.shape == w.targets.shape == (B, width)
        assert w.reset == (k == 0)
        assert w.num_tokens == B * width
    rows_in = torch.cat([w.inputs for w in windows], 1)
    rows_tg = torch.cat([w.targets for w in windows], 1)
    for r in range(B):
        # each row is one contiguous piece of the stream, rows follow each other
        assert rows_in[r].tolist() == stream[r * cols: (r + 1) * cols]
        assert rows_tg[r].tolist() == stream[r * cols + 1: (r + 1) * cols + 1]
    # targets are the inputs shifted by one
    assert torch.equal(rows_tg[:, :-1], rows_in[:, 1:])
    # only the remainder (fewer than B tokens) is dropped
    assert len(stream) - 1 - B * cols < B
    # every epoch sees the same windows; start skips windows
    again = list(sb.epoch(3, start=1))
    assert len(again) == len(windows) - 1
    assert all(torch.equal(a.inputs, w.inputs) for a, w in zip(again, windows[1:]))
    assert not any(a.reset for a in again)


def test_stream_batches_full_windows_shape():
    ids = [[3] * 9] * 10                      # stream of 1 + 100 tokens -> 100 predictions
    sb = StreamBatches(ids, BOS, EOS, batch_size=4, bptt=5)
    shapes = [tuple(w.inputs.shape) for w in sb.epoch(0)]
    assert shapes == [(4, 5)] * 5


def test_stream_batches_too_small():
    with pytest.raises((ValueError, InputError)):
        StreamBatches([[3]], BOS, EOS, batch_size=8, bptt=5)
