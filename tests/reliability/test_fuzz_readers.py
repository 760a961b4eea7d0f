"""Every reader, fed damaged input, returns well-formed data or raises one clean InputError.

Two halves: the mutation fuzzer of ``fuzz_readers.py`` (a bounded number of
cases per reader; ``ASR_KD_FUZZ_CASES`` overrides it, ``ASR_KD_FUZZ_SEED`` the
seed) and hypothesis properties, ``ASR_KD_PROPERTY_EXAMPLES`` examples each
(arbitrary bytes or JSON never crash a reader; write_nbest/read_nbest round
trips are exact).
"""
from __future__ import annotations

import gzip
import json
import math
import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_readers import (TARGETS, bad_error_message, check_nbest,  # noqa: E402
                          format_crashes, run_fuzz)

from asr_kd.corpus import read_sentences  # noqa: E402
from asr_kd.errors import InputError  # noqa: E402
from asr_kd.nbest import Hyp, NBest, Utterance, read_nbest, read_refs, write_nbest  # noqa: E402
from asr_kd.vocab import WordVocab  # noqa: E402

CASES = int(os.environ.get("ASR_KD_FUZZ_CASES", "300"))
SEED = int(os.environ.get("ASR_KD_FUZZ_SEED", "0"))
# function-scoped tmp_path is fine here: every example overwrites its own files
PROPERTY = settings(max_examples=int(os.environ.get("ASR_KD_PROPERTY_EXAMPLES", "40")),
                    deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


# ------------------------------------------------------------- fuzzer --

@pytest.mark.parametrize("name", [t.name for t in TARGETS])
def test_mutated_real_layouts_never_crash_the_reader(name, tmp_path):
    stats, = run_fuzz(CASES, SEED, [name], workdir=tmp_path / "work",
                      crash_dir=tmp_path / "crashes")
    assert stats.cases == CASES
    assert not stats.crashes, format_crashes([stats])
    # the fixture is valid and the mutations are not all fatal: both outcomes occur
    assert stats.ok and stats.input_errors


# ------------------------------------------------- properties: no crash --

def outcome(read, path: Path):
    """``read(path)``'s result, or None after checking its InputError is clean."""
    try:
        return read(path)
    except InputError as e:
        why = bad_error_message(e, path.parent, path)
        assert why is None, f"{why}: {e!s}"
        return None


_TOKENS = [b"u1", b"u-1", b"utt-2", b"spk-spk-u1", b"a", b"word", b"<s>", b"</s>", b"(u1)",
           b"(spk-spk-u1)", b"(-100)", b"-1.5", b"3", b"0", b"nan", b"inf", b"1e999", b"-",
           b"\t", b"\r", b"\xef\xbb\xbf", b"\xff", b"\x00", b"\xc3", b"[", b"]", b"{", b"}",
           b'"', b":", b",", b"tensor(-1)", b"NBestList1.0", b"NBestList2.0", b"(", b")",
           b"st:", b"et:", b"g:", b"a:", b"[noise]", b"\t-2.5"]
LINEISH = st.lists(st.lists(st.sampled_from(_TOKENS), max_size=8).map(b" ".join),
                   max_size=8).map(b"\n".join)
BYTES = st.one_of(st.binary(max_size=300), LINEISH)
_KEYS = ["utt", "ref", "hyps", "text", "scores", "am", "input", "output", "score", "am_score",
         "id", "hyp_1", "hyp_2", "audio_filepath", "u1"]
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=3), inner, max_size=4),
    max_leaves=20)


def _dumps(obj) -> bytes:
    return json.dumps(obj, allow_nan=True).encode()


@PROPERTY
@given(data=BYTES)
def test_text_corpus_takes_any_bytes(tmp_path, data):
    f = tmp_path / "corpus.txt"
    f.write_bytes(data)
    for fmt in ("auto", "plain", "kaldi"):
        sents = outcome(lambda p: read_sentences(p, fmt), f)
        assert sents is None or all(s and s == " ".join(s.split()) for s in sents)


@PROPERTY
@given(data=BYTES)
def test_vocab_takes_any_bytes(tmp_path, data):
    f = tmp_path / "words.txt"
    f.write_bytes(data)
    v = outcome(WordVocab.load, f)
    assert v is None or v.itos[v.unk] == "<unk>"


@PROPERTY
@given(data=BYTES, name=st.sampled_from(["text", "ref.trn", "ref_wer"]))
def test_refs_take_any_bytes(tmp_path, data, name):
    f = tmp_path / name
    f.write_bytes(data)
    refs = outcome(read_refs, f)
    assert refs is None or all(isinstance(k, str) and k for k in refs)


@PROPERTY
@given(data=BYTES, name=st.sampled_from(["a.nbest", "b.score.gz"]))
def test_srilm_file_takes_any_bytes(tmp_path, data, name):
    f = tmp_path / name
    f.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    nb = outcome(lambda p: read_nbest(p, fmt="srilm"), f)
    assert nb is None or check_nbest(nb) is not None


@PROPERTY
@given(data=BYTES, n=st.integers(1, 3))
def test_nemo_tsv_takes_any_bytes(tmp_path, data, n):
    f = tmp_path / "preds.tsv"
    f.write_bytes(data)
    nb = outcome(lambda p: read_nbest(p, fmt="nemo", n=n), f)
    assert nb is None or all(len(u.hyps) == n for u in nb)


@PROPERTY
@given(rows=st.lists(JSONISH, max_size=4), junk=BYTES, raw=st.booleans())
def test_jsonl_takes_any_json_or_bytes(tmp_path, rows, junk, raw):
    f = tmp_path / "nb.jsonl"
    f.write_bytes(junk if raw else b"\n".join(_dumps(r) for r in rows))
    nb = outcome(lambda p: read_nbest(p, fmt="jsonl"), f)
    assert nb is None or check_nbest(nb) is not None


@PROPERTY
@given(doc=JSONISH, junk=BYTES, raw=st.booleans())
def test_json_document_takes_any_json_or_bytes(tmp_path, doc, junk, raw):
    f = tmp_path / "nb.json"
    f.write_bytes(junk if raw else _dumps(doc))
    nb = outcome(lambda p: read_nbest(p, fmt="json"), f)
    assert nb is None or check_nbest(nb) is not None


@PROPERTY
@given(data=BYTES, name=st.sampled_from(["x", "x.tsv", "x.json", "x.jsonl", "x.txt.gz"]))
def test_format_detection_takes_any_bytes(tmp_path, data, name):
    f = tmp_path / name
    f.write_bytes(gzip.compress(data, mtime=0) if name.endswith(".gz") else data)
    nb = outcome(read_nbest, f)             # fmt=None: detected from name and content
    assert nb is None or check_nbest(nb) is not None


# ------------------------------------------------ properties: round trip --

FINITE = st.floats(allow_nan=False, allow_infinity=False)
ANY_TEXT = st.text(max_size=12)       # any code point but surrogates: JSONL keeps it exactly
_ID_CHARS = st.sampled_from(list("abcxyz019-_.") + ["é", "ß", "日"])
KALDI_ID = st.text(_ID_CHARS, min_size=1, max_size=8)
KALDI_WORD = st.text(st.sampled_from(list("abwz09'<>[]-") + ["é", "日"]), min_size=1, max_size=5)


def _shape(nb: NBest) -> list:
    return [(u.utt, u.ref, [(h.text, h.scores) for h in u.hyps]) for u in nb]


@st.composite
def native_nbest(draw):
    """Any N-best the data model allows: empty hypotheses, N = 0, odd texts and keys."""
    hyp = st.builds(Hyp, ANY_TEXT, st.dictionaries(st.text(max_size=6), FINITE, max_size=3))
    utts = draw(st.lists(st.builds(Utterance, st.text(min_size=1, max_size=8),
                                   st.lists(hyp, max_size=4), st.none() | ANY_TEXT),
                         max_size=5, unique_by=lambda u: u.utt))
    return NBest(utts)


@PROPERTY
@given(nb=native_nbest(), name=st.sampled_from(["nb.jsonl", "nb.jsonl.gz"]))
def test_jsonl_round_trip_is_exact(tmp_path, nb, name):
    write_nbest(nb, tmp_path / name, "jsonl")
    back = read_nbest(tmp_path / name)
    assert _shape(back) == _shape(nb)
    assert all(math.copysign(1, a) == math.copysign(1, b)         # even -0.0 survives
               for u, v in zip(nb, back) for h, g in zip(u.hyps, v.hyps)
               for a, b in zip(h.scores.values(), g.scores.values()))


@st.composite
def kaldi_nbest(draw):
    """N-best lists Kaldi archives can hold: whitespace-free ids and words, am and
    lm0 (plus the same optional LM keys) on every hypothesis, N = 0 allowed."""
    extra = draw(st.lists(st.sampled_from(["graph", "lm0only", "lm:student", "lm:rnn"]),
                          unique=True, max_size=2))
    keys = ["am", "lm0"] + extra
    hyp = st.builds(lambda words, vals: Hyp(" ".join(words), dict(zip(keys, vals))),
                    st.lists(KALDI_WORD, max_size=4),
                    st.lists(FINITE, min_size=len(keys), max_size=len(keys)))
    utts = draw(st.lists(st.builds(Utterance, KALDI_ID, st.lists(hyp, max_size=4)),
                         max_size=5, unique_by=lambda u: u.utt))
    return NBest(utts)


@PROPERTY
@given(nb=kaldi_nbest())
def test_kaldi_round_trip_is_exact_and_skips_only_n0(tmp_path, nb):
    out = Path(tempfile.mkdtemp(dir=tmp_path))     # fresh: stale archives would not match
    write_nbest(nb, out, "kaldi")
    back = read_nbest(out, fmt="kaldi")
    # N = 0 has no key in these archives: those utterances, and only those, are absent
    assert _shape(back) == [s for s in _shape(nb) if s[2]]
