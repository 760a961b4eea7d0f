"""Native JSONL: lossless round trips and validation."""
from __future__ import annotations

import gzip

import pytest

from asr_kd.errors import InputError
from asr_kd.nbest import Hyp, NBest, Utterance, read_nbest, write_jsonl, write_nbest
from asr_kd.nbest.jsonl import read_jsonl
from nbest_fixtures import write_text


def _sample():
    return NBest([
        Utterance("4k0c0301", [Hyp("w1 w2", {"am": -1234.5, "lm0": -45.6, "lm:student": -1 / 3}),
                               Hyp("", {"am": -2000.0, "lm0": -1e-12, "lm:student": -7.0})],
                  ref="w1 w2 \u00e9"),
        Utterance("no-hyps", []),
        Utterance("x", [Hyp("only", {"score": 3.25})]),
    ])


@pytest.mark.parametrize("name", ["nb.jsonl", "nb.jsonl.gz"])
def test_round_trip_exact(tmp_path, name):
    nb = _sample()
    write_nbest(nb, tmp_path / name, "jsonl")
    assert read_nbest(tmp_path / name) == nb
    if name.endswith(".gz"):
        assert gzip.decompress((tmp_path / name).read_bytes()).startswith(b'{"utt": "4k0c0301"')


def test_bom_crlf_blank_lines(tmp_path):
    f = write_text(tmp_path / "a.jsonl",
                   '{"utt": "a", "hyps": [{"text": "x", "scores": {"am": -1}}]}\n\n'
                   '{"utt": "b", "ref": null, "hyps": [{"text": ""}]}\n', crlf=True, bom=True)
    nb = read_jsonl(f)
    assert [(u.utt, u.ref, [(h.text, h.scores) for h in u.hyps]) for u in nb] == [
        ("a", None, [("x", {"am": -1.0})]), ("b", None, [("", {})])]


@pytest.mark.parametrize("line2,expect", [
    ('{"utt": "a", "hyps": []}', "duplicate utterance id 'a'"),
    ('{"utt": "b", "hyps": [{"text": "x", "scores": {"am": "1"}}]}', "expected a number"),
    ('{"utt": "b", "hyps": [{"text": "x", "scores": {"am": NaN}}]}', "finite"),
    ('{"utt": "b", "hyps": [{"scores": {}}]}', "expected hyp 1"),
    ('{"utt": "b"}', '"hyps" to be a list'),
    ('{"utt": "b", "hyps": []', "expected one JSON object per line"),
    ('["b"]', "expected an object"),
    ('{"utt": "", "hyps": []}', '"utt"'),
])
def test_malformed_lines(tmp_path, line2, expect):
    f = write_text(tmp_path / "a.jsonl", '{"utt": "a", "hyps": []}\n' + line2 + "\n")
    with pytest.raises(InputError) as e:
        read_jsonl(f)
    assert f"{f}:2:" in str(e.value) and expect in str(e.value)


def test_write_rejects_nan_and_leaves_nothing(tmp_path):
    nb = _sample()
    nb.utts[2].hyps[0].scores["lm:x"] = float("nan")
    with pytest.raises(InputError, match="not finite"):
        write_jsonl(nb, tmp_path / "out.jsonl")
    assert list(tmp_path.iterdir()) == []
