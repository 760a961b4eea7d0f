"""ESPnet <K>best_recog folders, tiny fixtures plus the real LibriSpeech dev_clean lists."""
from __future__ import annotations

import time
from pathlib import Path

import pytest

from asr_kd.errors import InputError
from asr_kd.fileio import read_lines
from asr_kd.nbest import attach_refs, read_nbest, read_refs
from asr_kd.nbest.espnet import read_espnet
from nbest_fixtures import espnet_folder, write_text

UTTS = [
    ("1272-128104-0000", [("A B", -46.6314, -0.3654, -0.0041), ("A C", -47.0, -0.5, -1.0),
                          ("", -60.0, -9.0, -8.0)]),
    ("1272-128104-0001", [("X", -10.0, -1.0, -2.0)]),            # fewer hypotheses
]
REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / \
    "librispeech-espnet-nbest" / "dev_clean"


def test_reads_folders_with_varying_n_and_empty_hyps(tmp_path):
    nb = read_nbest(espnet_folder(tmp_path / "dec", UTTS))          # detected
    assert [u.utt for u in nb] == ["1272-128104-0000", "1272-128104-0001"]
    assert [len(u.hyps) for u in nb] == [3, 1]
    h = nb.utts[0].hyps[0]
    assert h.text == "A B"
    assert h.scores == {"score": -46.6314, "decoder": -0.3654, "ctc": -0.0041}
    assert nb.utts[0].hyps[2].text == ""
    # pointed at one <K>best_recog folder: the parent is read
    assert len(read_espnet(tmp_path / "dec" / "2best_recog").utts) == 2


def test_plain_floats_crlf_and_no_scores_file(tmp_path):
    d = tmp_path / "dec" / "1best_recog"
    write_text(d / "text", "u1 hi there\nu2\n", crlf=True, bom=True)
    write_text(d / "score", "u1 -3.5\nu2 tensor(-1.25, device='cuda:0')\n", crlf=True)
    nb = read_espnet(tmp_path / "dec")
    assert [(h.text, h.scores) for u in nb for h in u.hyps] == [
        ("hi there", {"score": -3.5}), ("", {"score": -1.25})]


def test_utterance_missing_from_lower_k(tmp_path):
    root = espnet_folder(tmp_path / "dec", UTTS)
    write_text(root / "3best_recog" / "text", "1272-128104-0000 a\n1272-128104-0001 b\n")
    write_text(root / "3best_recog" / "score", "1272-128104-0000 -1\n1272-128104-0001 -1\n")
    (root / "3best_recog" / "scores").unlink()
    with pytest.raises(InputError) as e:
        read_espnet(root)
    assert f"{root / '3best_recog' / 'text'}:2:" in str(e.value)
    assert "not in 2best_recog" in str(e.value)


@pytest.mark.parametrize("name,content,line,expect", [
    ("score", "1272-128104-0000 tensor(abc)\n", 1, "expected a number"),
    ("score", "1272-128104-0000 -1\n1272-128104-0001\n", 2, "expected a number"),
    ("score", "1272-128104-0000 inf\n", 1, "finite"),
    ("scores", "1272-128104-0000 {bad json\n", 1, "expected"),
    ("scores", '1272-128104-0000 {"ctc": "tensor(nan)"}\n', 1, "finite"),
    ("text", "1272-128104-0000 a\n1272-128104-0000 b\n", 2, "duplicate utterance id"),
    ("score", "1272-128104-0000 -1\nzzz -2\n", 2, "not in"),
])
def test_malformed_lines_name_file_and_line(tmp_path, name, content, line, expect):
    root = espnet_folder(tmp_path / "dec", UTTS)
    write_text(root / "1best_recog" / name, content)
    with pytest.raises(InputError) as e:
        read_espnet(root)
    assert f"{root / '1best_recog' / name}:{line}:" in str(e.value)
    assert expect in str(e.value)


def test_score_missing_for_an_utterance(tmp_path):
    root = espnet_folder(tmp_path / "dec", UTTS)
    write_text(root / "1best_recog" / "score", "1272-128104-0000 -1\n")
    with pytest.raises(InputError, match="'1272-128104-0001' of .* is missing"):
        read_espnet(root)


def test_gap_in_k_and_no_folders(tmp_path):
    root = espnet_folder(tmp_path / "dec", UTTS)
    (root / "2best_recog").rename(root / "old")
    with pytest.raises(InputError, match="expected folder 2best_recog"):
        read_espnet(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="best_recog"):
        read_espnet(tmp_path / "empty")


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real ESPnet N-best data not found at {REAL}")
def test_real_dev_clean():
    start = time.perf_counter()
    nb = read_nbest(REAL)
    elapsed = time.perf_counter() - start
    assert len(nb) == 2703
    assert max(len(u.hyps) for u in nb) == 30 and all(1 <= len(u.hyps) <= 30 for u in nb)
    one_best = {}
    for _, line in read_lines(REAL / "1best_recog" / "text"):
        utt, _, text = line.partition(" ")
        one_best[utt] = " ".join(text.split())
    assert {u.utt: u.hyps[0].text for u in nb} == one_best
    assert set(nb.score_keys()) == {"score", "decoder", "ctc", "lm"}
    assert elapsed < 20, f"reading dev_clean took {elapsed:.1f} s"
    # the ESPnet trn ids "(spk-uttid)" map onto the N-best ids, like ref/text
    refs = read_refs(REAL / "ref" / "ref_wer.trn")
    assert refs == read_refs(REAL / "ref" / "text")
    assert attach_refs(nb, refs) == []
