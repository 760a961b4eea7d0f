"""Kaldi nbest-to-linear folders: reading, error messages, writing, round trip."""
from __future__ import annotations

import struct

import kaldiio
import numpy as np
import pytest

from asr_kd.errors import InputError
from asr_kd.nbest import read_nbest, write_kaldi_scores, write_nbest
from asr_kd.nbest.kaldi import read_kaldi, write_kaldi_nbest
from nbest_fixtures import UTTS, kaldi_folder, write_text


def _expected():
    return [(u, [(t, {"am": am, "lm0": lm}) for t, am, lm in hyps]) for u, hyps in UTTS]


def _shape(nb):
    return [(u.utt, [(h.text, h.scores) for h in u.hyps]) for u in nb]


def test_reads_kaldiio_written_folder(tmp_path):
    nb = read_nbest(kaldi_folder(tmp_path / "nb"))   # format detected
    assert _shape(nb) == _expected()
    assert nb.utts[0].hyps[2].text == ""             # empty hypothesis
    assert [len(u.hyps) for u in nb] == [3, 1]       # varying N


def test_kaldi_text_layout_optional_archives_and_order(tmp_path):
    d = tmp_path / "nb"
    # hyps listed out of order in words_text; real Kaldi BaseFloat text layout "key 12 "
    write_text(d / "words_text", "u-a-2 b\nu-a-1 a\nu-b-1\n", crlf=True, bom=True)
    write_text(d / "acwt", "u-a-1 10 \nu-a-2 12.5 \nu-b-1 7 \n")
    write_text(d / "lmwt.withlm", "u-a-1 3\nu-a-2 4\nu-b-1 5\n")
    write_text(d / "lmwt.nolm", "u-a-1 1\nu-a-2 2\nu-b-1 3\n")
    write_text(d / "lmwt.lmonly", "u-a-1 2\nu-a-2 2\nu-b-1 2\n")
    write_text(d / "lmwt.rnn", "u-a-1 9.5\nu-a-2 8\nu-b-1 1e-3\n")
    nb = read_kaldi(d)
    assert [u.utt for u in nb] == ["u-a", "u-b"]
    a1, a2 = nb.utts[0].hyps
    assert (a1.text, a2.text) == ("a", "b")
    assert a1.scores == {"am": -10.0, "lm0": -3.0, "graph": -1.0, "lm0only": -2.0,
                         "lm:rnn": -9.5}
    assert nb.utts[1].hyps[0].text == "" and nb.utts[1].hyps[0].scores["lm:rnn"] == -1e-3


def test_integer_words_with_symbol_table(tmp_path):
    d = kaldi_folder(tmp_path / "nb")
    (d / "words_text").unlink()
    write_text(d / "words", "spk1-utt-001-1 1 2\nspk1-utt-001-2 1 3\nspk1-utt-001-3\n"
                            "spk2-utt-002-1 4 5 6\n")
    table = "<eps> 0\nhello 1\nworld 2\nword 3\na 4\nb 5\nc 6\n"
    with pytest.raises(InputError, match="words.txt"):
        read_kaldi(d)
    write_text(tmp_path / "words.txt", table)
    assert _shape(read_kaldi(d, words_txt=tmp_path / "words.txt")) == _expected()
    write_text(d / "words.txt", table)                 # found in the folder
    assert _shape(read_kaldi(d)) == _expected()


def test_job_folders(tmp_path):
    kaldi_folder(tmp_path / "nb" / "archives.2", UTTS[1:])
    kaldi_folder(tmp_path / "nb" / "archives.1", UTTS[:1])
    nb = read_nbest(tmp_path / "nb")
    assert [u.utt for u in nb] == ["spk1-utt-001", "spk2-utt-002"]


def test_binary_archives(tmp_path):
    d = kaldi_folder(tmp_path / "nb")
    # kaldiio binary vectors for acwt, Kaldi binary BaseFloat for lmwt.withlm
    with kaldiio.WriteHelper(f"ark:{d / 'acwt'}") as w:
        for utt, hyps in UTTS:
            for i, h in enumerate(hyps, 1):
                w[f"{utt}-{i}"] = np.array([-h[1]], dtype=np.float32)
    raw = b"".join(f"{utt}-{i} ".encode() + b"\0B\x04" + struct.pack("<f", -h[2])
                   for utt, hyps in UTTS for i, h in enumerate(hyps, 1))
    (d / "lmwt.withlm").write_bytes(raw)
    assert _shape(read_kaldi(d)) == _expected()


@pytest.mark.parametrize("archive,content,line,expect", [
    ("acwt", "spk1-utt-001-1 10\nspk1-utt-001-2 abc\n", 2, "expected a number"),
    ("acwt", "spk1-utt-001-1 10\nspk1-utt-001-2\n", 2, "expected '<uttid>-<n> <cost>'"),
    ("acwt", "spk1-utt-001-1 nan\n", 1, "finite"),
    ("acwt", "spk1-utt-001-1 1\nspk1-utt-001-1 2\n", 2, "duplicate key"),
    ("words_text", "spk1-utt-001-1 a\nspk1-utt-001-1 b\n", 2, "duplicate key"),
    ("words_text", "spk1-utt-001-1 a\nnodash b\n", 2, "<uttid>-<n>"),
    ("words_text", "spk1-utt-001-0 a\n", 1, "n >= 1"),
    ("acwt", "spk1-utt-001-1 1\nspk9-9 2\n", 2, "not in words_text"),
])
def test_malformed_lines_name_file_and_line(tmp_path, archive, content, line, expect):
    d = kaldi_folder(tmp_path / "nb")
    write_text(d / archive, content)
    with pytest.raises(InputError) as e:
        read_kaldi(d)
    assert f"{d / archive}:{line}:" in str(e.value) and expect in str(e.value)


def test_key_missing_from_an_archive(tmp_path):
    d = kaldi_folder(tmp_path / "nb")
    lines = (d / "lmwt.withlm").read_text().splitlines(keepends=True)
    write_text(d / "lmwt.withlm", "".join(lines[:-1]))
    with pytest.raises(InputError, match=r"lmwt\.withlm: key 'spk2-utt-002-1'.*is missing"):
        read_kaldi(d)
    (d / "lmwt.withlm").unlink()
    with pytest.raises(InputError, match="lmwt.withlm"):
        read_kaldi(d)


def test_non_utf8(tmp_path):
    d = kaldi_folder(tmp_path / "nb")
    (d / "words_text").write_bytes(b"spk1-utt-001-1 ok\nspk1-utt-001-2 caf\xe9\n")
    with pytest.raises(InputError, match=r"words_text:2: not valid UTF-8"):
        read_kaldi(d)


def test_round_trip_and_lm_scores(tmp_path):
    nb = read_kaldi(kaldi_folder(tmp_path / "a"))
    for u in nb:
        for h in u.hyps:
            h.scores["graph"] = h.scores["lm0"] + 0.125
            h.scores["lm:student"] = -0.1 * len(h.words) - 1 / 3
            h.scores["ctc"] = -1.0           # no Kaldi archive for this: not written
    write_nbest(nb, tmp_path / "b", "kaldi")
    names = sorted(p.name for p in (tmp_path / "b").iterdir())
    assert names == ["acwt", "lmwt.nolm", "lmwt.student", "lmwt.withlm", "words_text"]
    back = read_kaldi(tmp_path / "b")
    for u in nb:
        for h in u.hyps:
            del h.scores["ctc"]
    assert _shape(back) == _shape(nb)                # exact: costs written with repr
    first = (tmp_path / "b" / "lmwt.student").read_text().splitlines()[0]
    assert first == f"spk1-utt-001-1 {0.2 + 1 / 3!r}"


def test_write_kaldi_scores_into_existing_folder(tmp_path):
    d = kaldi_folder(tmp_path / "nb")
    nb = read_kaldi(d)
    for u in nb:
        for h in u.hyps:
            h.scores["lm:student"] = -2.5
    assert write_kaldi_scores(nb, d, "lm:student") == d / "lmwt.student"
    assert (d / "lmwt.student").read_text().splitlines()[0] == "spk1-utt-001-1 2.5"
    assert read_kaldi(d).utts[0].hyps[0].scores["lm:student"] == -2.5
    with pytest.raises(InputError, match="no score 'lm:teacher'"):
        write_kaldi_scores(nb, d, "teacher")
    assert not (d / "lmwt.teacher").exists()         # nothing half-written


def test_write_needs_am_and_lm0(tmp_path):
    nb = read_kaldi(kaldi_folder(tmp_path / "a"))
    del nb.utts[1].hyps[0].scores["am"]
    with pytest.raises(InputError, match="need scores 'am' and 'lm0'"):
        write_kaldi_nbest(nb, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_write_integer_words(tmp_path):
    nb = read_kaldi(kaldi_folder(tmp_path / "a"))
    write_text(tmp_path / "words.txt", "<eps> 0\nhello 1\nworld 2\nword 3\na 4\nb 5\nc 6\n")
    write_kaldi_nbest(nb, tmp_path / "b", words_txt=tmp_path / "words.txt")
    assert (tmp_path / "b" / "words").read_text().splitlines()[:3] == [
        "spk1-utt-001-1 1 2", "spk1-utt-001-2 1 3", "spk1-utt-001-3"]
