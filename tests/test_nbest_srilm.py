"""SRILM nbest-format(5): the three formats, with the score conversions checked numerically."""
from __future__ import annotations

import math

import pytest

from asr_kd.errors import InputError
from asr_kd.nbest import read_nbest
from asr_kd.nbest.srilm import read_srilm, utt_id_from_name
from nbest_fixtures import write_text

# ln p for one bytelog: SRILM's BytelogToLogP gives log10 p = b * 1024 / 10000.5 / ln 10
BYTELOG = 1024 / 10000.5


def test_bytelog_constant_matches_log_base_1_0001():
    # "log base 1.0001, divided by 1024": ln p = b * 1024 * ln(1.0001), to 1e-8 relative
    assert BYTELOG == pytest.approx(1024 * math.log(1.0001), rel=1e-8)


def test_format1(tmp_path):
    d = tmp_path / "nbest"
    write_text(d / "utt-1.score.gz", "NBestList1.0\n(-2048) <s> hello world </s>\n(-3072)\n")
    u, = read_nbest(d).utts                                  # detected as srilm
    assert u.utt == "utt-1"
    assert [h.text for h in u.hyps] == ["hello world", ""]
    assert u.hyps[0].scores["score"] == pytest.approx(-2048 * BYTELOG)
    assert u.hyps[0].scores["score"] == pytest.approx(-209.7047, abs=1e-4)  # -2048*1024*ln(1.0001)


def test_format2_sums_word_scores_and_skips_phones(tmp_path):
    f = write_text(tmp_path / "a.nbest", (
        "NBestList2.0\n"
        "(-300) <s> ( st: 0.00 et: 0.05 g: 0 a: -10 ) hello ( st: 0.06 et: 0.50 g: -100 a: -90 )"
        " hh ( st: 0.06 et: 0.20 g: 0 a: -40 ) world ( st: 0.51 et: 0.90 g: -50 a: -50 )\n"),
        crlf=True)
    u, = read_srilm(f).utts
    h, = u.hyps
    assert u.utt == "a" and h.text == "hello world"          # phone 'hh' and <s> dropped
    assert h.scores["score"] == pytest.approx(-300 * BYTELOG)
    assert h.scores["am"] == pytest.approx(-150 * BYTELOG)   # -10 - 90 - 50
    assert h.scores["lm0"] == pytest.approx(-150 * BYTELOG)  # 0 - 100 - 50


def test_format3_log10_and_list_file(tmp_path):
    write_text(tmp_path / "n" / "u1.txt", "-12.5 -3 2 <s> a b </s>\n-13 -4 0\n")
    write_text(tmp_path / "n" / "u2", "-1 -2 1 c\n", bom=True)
    write_text(tmp_path / "list", "n/u2\n" + str(tmp_path / "n" / "u1.txt") + "\n")
    nb = read_srilm(tmp_path / "list")
    assert [u.utt for u in nb] == ["u2", "u1"]
    h = nb.utts[1].hyps[0]
    assert h.text == "a b"
    assert h.scores == pytest.approx({"am": -12.5 * math.log(10), "lm0": -3 * math.log(10),
                                      "nwords": 2.0})     # the word-count column, kept
    assert nb.utts[1].hyps[1].text == ""


def test_empty_file_is_an_utterance_with_no_hyps(tmp_path):
    write_text(tmp_path / "n" / "a.nbest", "NBestList1.0\n")
    write_text(tmp_path / "n" / "b.nbest", "(-5) x\n")       # headerless (score) lines
    nb = read_srilm(tmp_path / "n")
    assert [(u.utt, len(u.hyps)) for u in nb] == [("a", 0), ("b", 1)]


def test_utt_id_from_name():
    assert utt_id_from_name("sw_4390-A_0012.nbest.gz") == "sw_4390-A_0012"
    assert utt_id_from_name("x.score") == "x" and utt_id_from_name("x.y.txt") == "x.y"
    assert utt_id_from_name("plain") == "plain"


@pytest.mark.parametrize("content,line,expect", [
    ("NBestList1.0\n(-1) a\n(abc) b\n", 3, "expected a number"),
    ("NBestList1.0\n-1 a\n", 2, "expected '(score)'"),
    ("NBestList2.0\n(-1) a ( st: 0 et: 1 g: 0 )\n", 2, "expected field a:"),
    ("NBestList2.0\n(-1) a b\n", 2, "expected '( st:"),
    ("NBestList3.0\n", 1, "expected NBestList1.0 or NBestList2.0"),
    ("-1 -2 1 a\n-1 x 1 a\n", 2, "expected a number for the LM score"),
    ("-1 -2 1 a\n-1 -2 one a\n", 2, "word count"),
    ("-1 -2 1 a\n-1 -2\n", 2, "expected 'ascore lscore nwords"),
    ("-1 nan 1 a\n", 1, "finite"),
])
def test_malformed_lines_name_file_and_line(tmp_path, content, line, expect):
    f = write_text(tmp_path / "n" / "u.nbest", content)
    with pytest.raises(InputError) as e:
        read_srilm(tmp_path / "n")
    assert f"{f}:{line}:" in str(e.value) and expect in str(e.value)


def test_duplicate_ids_and_missing_list_entry(tmp_path):
    write_text(tmp_path / "n" / "u.nbest", "(-1) a\n")
    write_text(tmp_path / "n" / "u.nbest.gz", "(-1) a\n")
    with pytest.raises(InputError, match="utterance id 'u'"):
        read_srilm(tmp_path / "n")
    write_text(tmp_path / "list", "n/u.nbest\nn/missing.nbest\n")
    with pytest.raises(InputError, match=r"list:2: expected an N-best file"):
        read_srilm(tmp_path / "list")
