"""NeMo beam-search TSV with an optional manifest."""
from __future__ import annotations

import json

import pytest

from asr_kd.errors import InputError
from asr_kd.nbest import read_nbest
from asr_kd.nbest.nemo import read_nemo
from nbest_fixtures import write_text

TSV = "hello world\t-1.5\nhello word\t-2\n\t-9.25\na b\t-3\n"


def _manifest(path, names=("/data/x/1272-0001.wav", "/data/y/1272-0002.flac")):
    lines = [json.dumps({"audio_filepath": p, "duration": 1.0, "text": f"ref {i}"})
             for i, p in enumerate(names)]
    return write_text(path, "\n".join(lines) + "\n")


def test_with_manifest_infers_n(tmp_path):
    f = write_text(tmp_path / "preds.tsv", TSV, crlf=True, bom=True)
    nb = read_nbest(f, manifest=_manifest(tmp_path / "m.json"))   # detected by .tsv
    assert [(u.utt, u.ref, len(u.hyps)) for u in nb] == [
        ("1272-0001", "ref 0", 2), ("1272-0002", "ref 1", 2)]
    assert [(h.text, h.scores) for h in nb.utts[1].hyps] == [
        ("", {"score": -9.25}), ("a b", {"score": -3.0})]


def test_without_manifest(tmp_path):
    nb = read_nemo(write_text(tmp_path / "p.tsv", TSV), n=1)
    assert [u.utt for u in nb] == ["0", "1", "2", "3"] and nb.utts[0].ref is None
    with pytest.raises(InputError, match="need the number of hypotheses"):
        read_nemo(tmp_path / "p.tsv")


def test_line_count_checks(tmp_path):
    f = write_text(tmp_path / "p.tsv", TSV)
    with pytest.raises(InputError, match="expected a multiple of N=3 lines, got 4"):
        read_nemo(f, n=3)
    m = _manifest(tmp_path / "m.json", ["a.wav", "b.wav", "c.wav"])
    with pytest.raises(InputError, match="do not divide evenly"):
        read_nemo(f, manifest=m)
    with pytest.raises(InputError, match=r"expected 3 x 1 lines"):
        read_nemo(f, n=1, manifest=m)


@pytest.mark.parametrize("content,line,expect", [
    ("a\t-1\nno tab here\n", 2, "expected 'text<TAB>score'"),
    ("a\t-1\nb\tx\n", 2, "expected a number"),
    ("a\t-1\nb\t\n", 2, "expected a number"),
    ("a\t-inf\n", 1, "finite"),
])
def test_malformed_lines(tmp_path, content, line, expect):
    f = write_text(tmp_path / "p.tsv", content)
    with pytest.raises(InputError) as e:
        read_nemo(f, n=1)
    assert f"{f}:{line}:" in str(e.value) and expect in str(e.value)


def test_manifest_errors(tmp_path):
    f = write_text(tmp_path / "p.tsv", TSV)
    m = write_text(tmp_path / "m.json",
                   '{"audio_filepath": "a.wav"}\n{"audio_filepath": "d/a.flac"}\n')
    with pytest.raises(InputError, match=r"m\.json:2: duplicate utterance id 'a'"):
        read_nemo(f, manifest=m)
    m = write_text(tmp_path / "m.json", '{"audio_filepath": "a.wav"}\n{"text": "x"}\n')
    with pytest.raises(InputError, match=r"m\.json:2: expected"):
        read_nemo(f, manifest=m)
