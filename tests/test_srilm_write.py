"""SRILM completeness: extra score folders, the nwords column, the NBestList writer
(round trips) and weights in SRILM's units and form."""
from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.nbest import read_nbest
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.nbest.srilm import (BYTELOG_TO_LN, format_srilm_weights, read_srilm, srilm_weights,
                                write_srilm)
from asr_kd.scoring import pick_best
from nbest_fixtures import write_text

LN10 = math.log(10)


def _nb() -> NBest:
    return NBest([
        Utterance("sw_4390-A_0012", [Hyp("a -pau- b", {"am": -10.0, "lm0": -3.0, "lm:x": -2.5}),
                                     Hyp("", {"am": -1.0, "lm0": -2.0, "lm:x": -1.0}),
                                     Hyp("c", {"am": -4.25, "lm0": -7.5, "lm:x": -0.5})], "a b"),
        Utterance("u2", [], "c"),
        Utterance("u.3", [Hyp("d e", {"am": -5.0, "lm0": -6.0, "lm:x": -7.0})], "d")])


def _by_utt(nb):
    return {u.utt: [(h.text, h.scores) for h in u.hyps] for u in nb}


# ---- extra score folders ---------------------------------------------------------------

def test_score_folders_merge_by_utterance_and_position(tmp_path):
    write_text(tmp_path / "nb" / "a.nbest.gz", "NBestList1.0\n(-100) x\n(-200) y\n")
    write_text(tmp_path / "nb" / "b.score", "-1 -2 1 z\n")
    write_text(tmp_path / "pron" / "a.gz", "-0.5\n\n-1.5\n")      # gzip, blank line skipped
    write_text(tmp_path / "pron" / "b", "2\n")
    write_text(tmp_path / "pron" / "unused", "1\n")               # no N-best: ignored
    write_text(tmp_path / "dur" / "a", "1e-1\n0\n", crlf=True)
    write_text(tmp_path / "dur" / "b", "3\n")
    nb = read_srilm(tmp_path / "nb", scores={"pron": str(tmp_path / "pron"),
                                             "dur": str(tmp_path / "dur")})
    a, b = nb.utts
    assert [h.scores["pron"] for h in a.hyps] == pytest.approx([-0.5 * LN10, -1.5 * LN10])
    assert [h.scores["dur"] for h in a.hyps] == pytest.approx([0.1 * LN10, 0.0])
    assert b.hyps[0].scores == pytest.approx({"am": -LN10, "lm0": -2 * LN10, "nwords": 1.0,
                                              "pron": 2 * LN10, "dur": 3 * LN10})
    assert a.hyps[0].scores["score"] == pytest.approx(-100 * BYTELOG_TO_LN)


@pytest.mark.parametrize("content,match", [
    ("-1\n", r"pron/a: 1 scores but .*nb/a\.nbest has 2 hypotheses"),
    ("-1\n-2\n-3\n", r"pron/a: 3 scores but .*nb/a\.nbest has 2 hypotheses"),
    ("-1\n-2 -3\n", r"pron/a:2: expected one score per line, got 2 fields"),
    ("-1\nabc\n", r"pron/a:2: expected a number for the score 'pron'"),
    ("-1\nnan\n", r"pron/a:2: expected a finite"),
])
def test_score_folder_errors_name_both_files(tmp_path, content, match):
    write_text(tmp_path / "nb" / "a.nbest", "NBestList1.0\n(-100) x\n(-200) y\n")
    write_text(tmp_path / "pron" / "a", content)
    with pytest.raises(InputError, match=match):
        read_srilm(tmp_path / "nb", scores={"pron": str(tmp_path / "pron")})


def test_score_folder_missing_file_name_clash_and_both_gz(tmp_path):
    write_text(tmp_path / "nb" / "a.nbest", "-1 -2 1 x\n")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match=r"empty: no score file 'a' \(or a\.gz\) for .*a\.nbest"):
        read_srilm(tmp_path / "nb", scores={"s": str(tmp_path / "empty")})
    with pytest.raises(InputError, match="no such folder"):
        read_srilm(tmp_path / "nb", scores={"s": str(tmp_path / "nope")})
    write_text(tmp_path / "s" / "a", "1\n")
    with pytest.raises(InputError, match=r"score name 'am' is already used by .*a\.nbest"):
        read_srilm(tmp_path / "nb", scores={"am": str(tmp_path / "s")})
    write_text(tmp_path / "s" / "a.gz", "1\n")
    with pytest.raises(InputError, match="both a and a.gz give scores for 'a'"):
        read_srilm(tmp_path / "nb", scores={"s": str(tmp_path / "s")})


def test_cli_srilm_scores_option(tmp_path, capsys):
    write_text(tmp_path / "nb" / "a.nbest", "-1 -2 1 x\n-1 -2 1 y\n")
    write_text(tmp_path / "pron" / "a", "0\n5\n")
    write_text(tmp_path / "ref", "a y\n")
    args = ["score", "--nbest", str(tmp_path / "nb"), "--ref", str(tmp_path / "ref"), "--json",
            "--weight", "am=1"]
    assert main(args) == 0 and json.loads(capsys.readouterr().out)["wer"] == 100.0
    assert main(args + ["--weight", "pron=1", "--srilm-scores",
                        f"pron={tmp_path / 'pron'}"]) == 0
    assert json.loads(capsys.readouterr().out)["wer"] == 0.0     # pron makes 'y' win
    assert main(args + ["--weight", "pron=1", "--srilm-scores", "pron"]) == 2
    assert "expected NAME=DIR" in capsys.readouterr().err
    write_text(tmp_path / "n.jsonl", '{"utt": "a", "hyps": []}\n')
    assert main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weight", "am=1",
                 "--srilm-scores", f"p={tmp_path / 'pron'}"]) == 2
    assert "--srilm-scores applies to srilm input only" in capsys.readouterr().err


# ---- the writer ---------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["1", "2", "3"])
def test_round_trip_scores_text_and_extra_folders(tmp_path, version):
    nb = _nb()
    extras = write_srilm(nb, tmp_path / "out", version)
    assert extras == (["am", "lm0", "lm:x"] if version == "1" else ["lm:x"])
    back = read_srilm(tmp_path / "out", scores={k: str(tmp_path / "out" / k) for k in extras})
    want, got = _by_utt(nb), _by_utt(back)
    assert set(got) == set(want)
    for utt in want:
        assert [t for t, _ in got[utt]] == [t for t, _ in want[utt]]
        for (_, s0), (text, s1) in zip(want[utt], got[utt]):
            tol = 0.5 * BYTELOG_TO_LN + 1e-9 if version in "12" else 1e-12
            for k in ("am", "lm0", "lm:x"):
                if version != "1" or k == "lm:x":
                    assert s1[k] == pytest.approx(s0[k], abs=tol, rel=1e-12)
                else:              # version 1: am, lm0 in folders (exact), total in (score)
                    assert s1[k] == pytest.approx(s0[k], rel=1e-12)
            if version == "1":
                assert s1["score"] == pytest.approx(s0["am"] + s0["lm0"], abs=tol)
            if version == "3":
                assert s1["nwords"] == len(text.split())


@pytest.mark.parametrize("text", [
    "NBestList1.0\n(-127) a -pau- b\n(-29)\n",
    "NBestList2.0\n(-127) a ( st: 0 et: 0.5 g: -29 a: -98 ) -pau- ( st: 1 et: 1.5 g: 0 a: 0 ) "
    "b ( st: 2 et: 2.5 g: 0 a: 0 )\n(-30)\n",
    "-4.3429448190325175 -1.3028834457097553 7 a -pau- b\n-0.5 -0.25 0\n",
])
def test_srilm_files_round_trip_byte_for_byte(tmp_path, text):
    write_text(tmp_path / "in" / "u.nbest", text)
    version = "1" if text.startswith("NBestList1") else "2" if text.startswith("NBestList2") \
        else "3"
    assert write_srilm(read_srilm(tmp_path / "in"), tmp_path / "out", version) == []
    assert (tmp_path / "out" / "u.nbest").read_text() == text    # nwords 7 kept as given


def test_writer_refuses_what_it_cannot_write(tmp_path):
    nb = NBest([Utterance("u", [Hyp("a", {"score": -1.0})])])
    assert write_srilm(nb, tmp_path / "v1", "1") == []
    with pytest.raises(InputError, match=r"needs scores 'am' and 'lm0'.*this N-best has: score"):
        write_srilm(nb, tmp_path / "v3", "3")
    with pytest.raises(InputError, match="utterance id 'a/b' cannot be a file name"):
        write_srilm(NBest([Utterance("a/b", [])]), tmp_path / "x", "3")
    with pytest.raises(InputError, match="version '4'"):
        write_srilm(nb, tmp_path / "x", "4")
    write_text(tmp_path / "stale" / "old.nbest", "-1 -1 0\n")
    with pytest.raises(InputError, match=r"other files \(old.nbest ...\)"):
        write_srilm(nb, tmp_path / "stale", "1")
    assert not (tmp_path / "stale" / "u.nbest").exists()        # nothing written
    assert write_srilm(nb, tmp_path / "v1", "1") == []          # rewriting its own files is fine


def test_convert_to_srilm_and_back_gives_the_same_wer(tmp_path, capsys):
    nb = _nb()
    with open(tmp_path / "in.jsonl", "w") as f:
        for u in nb:
            f.write(json.dumps({"utt": u.utt, "ref": u.ref,
                                "hyps": [{"text": h.text, "scores": h.scores} for h in u.hyps]})
                    + "\n")
    out = tmp_path / "sri"
    assert main(["convert-nbest", "--to", "srilm", str(tmp_path / "in.jsonl"), str(out),
                 "--out-ref", str(tmp_path / "ref")]) == 0
    err = capsys.readouterr().err
    assert f"--srilm-scores lm:x={out}/lm:x" in err
    assert (tmp_path / "ref").read_text() == "sw_4390-A_0012 a b\nu2 c\nu.3 d\n"
    w = ["--weight", "am=1", "--weight", "lm0=0.7", "--weight", "lm:x=2", "--weight", "wip=-0.3"]
    res = []
    for args in (["--nbest", str(tmp_path / "in.jsonl")],
                 ["--nbest", str(out), "--ref", str(tmp_path / "ref"),
                  "--srilm-scores", f"lm:x={out}/lm:x"]):
        assert main(["score", *args, *w, "--json", "--out-hyp", str(tmp_path / "h")]) == 0
        res.append((json.loads(capsys.readouterr().out),    # folder order: by file name
                    sorted((tmp_path / "h").read_text().splitlines())))
    assert res[0] == res[1]


# ---- weights in SRILM form -----------------------------------------------------------------

def test_srilm_weights_units_order_and_forms():
    s = srilm_weights({"am": 2.0, "lm:x": 0.5, "lm0": 16.0, "wip": -LN10})
    assert s["order"] == ["am", "lm0", "nwords", "lm:x"]
    assert s["weights"] == pytest.approx([2.0, 16.0, -1.0, 0.5])
    assert s["normed"] == pytest.approx([1.0, 8.0, -0.5, 0.25]) and s["scale"] == 0.5
    assert (s["rescore_lmw"], s["rescore_wtw"]) == pytest.approx((8.0, -0.5))
    assert s["score_dirs"] == [["lm:x", 0.25]]
    lines = format_srilm_weights(s)
    assert lines[1] == "   weights = 2 16 -1 0.5"
    assert lines[-2] == "   -rescore-lmw 8 -rescore-wtw -0.5"
    assert lines[-1] == "   rescore-reweight NBEST_DIR 8 -0.5 SCORE_DIR[lm:x] 0.25"
    # no am key: the first key is the acoustic slot; the nwords score is the word count
    s = srilm_weights({"score": 1.0, "lm:t": 0.3, "nwords": LN10})
    assert s["order"][:3] == ["score", "lm:t", "nwords"] and s["weights"][2] == pytest.approx(1)
    with pytest.raises(InputError, match="both set"):
        srilm_weights({"am": 1.0, "wip": 1.0, "nwords": 1.0})
    s = srilm_weights({"am": 0.0, "lm0": 1.0})
    assert s["rescore_lmw"] is None and s["normed"] == [0.0, 1.0, 0.0]
    assert "no -rescore-lmw form" in format_srilm_weights(s)[-1]


def test_srilm_weights_pick_what_asr_kd_picks():
    """SRILM's log10 total with the printed lmw/wtw/score-dir weights (rescore-reweight:
    am + lmw*lm + wtw*nwords + sum w*score) chooses the hypotheses asr_kd chooses."""
    rng = random.Random(0)
    utts = []
    for i in range(200):
        hyps = []
        for j in range(rng.randint(1, 6)):
            words = " ".join("w" for _ in range(rng.randint(0, 5)))
            hyps.append(Hyp(words, {"am": rng.uniform(-50, 0), "lm0": rng.uniform(-30, 0),
                                    "lm:x": rng.uniform(-30, 0)}))
        utts.append(Utterance(f"u{i}", hyps))
    nb = NBest(utts)
    weights = {"am": 0.8, "lm0": 0.3, "lm:x": 0.9, "wip": 1.7}
    s = srilm_weights(weights)
    srilm_choice = []
    for u in nb:
        tot = [h.scores["am"] / LN10 + s["rescore_lmw"] * h.scores["lm0"] / LN10
               + s["rescore_wtw"] * len(h.words)
               + sum(w * h.scores[k] / LN10 for k, w in s["score_dirs"]) for h in u.hyps]
        srilm_choice.append(int(np.argmax(tot)))
    assert srilm_choice == pick_best(nb, weights)


def test_print_srilm_in_score_and_tune(tmp_path, capsys):
    write_text(tmp_path / "nb" / "a", "-1 -2 1 x\n-1.1 -1 1 y\n")
    write_text(tmp_path / "ref", "a y\n")
    base = ["--nbest", str(tmp_path / "nb"), "--ref", str(tmp_path / "ref")]
    assert main(["score", *base, "--weight", "am=1", "--weight", "lm0=2",
                 "--weight", "wip=1", "--print-srilm"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("SRILM weights (log10 scores; nbest-optimize order: am lm0 nwords")
    assert "   -rescore-lmw 2 -rescore-wtw 0.434294" in out
    assert out[-3].startswith("%WER")
    assert main(["score", *base, "--weight", "am=1", "--print-srilm", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["srilm"]["order"] == ["am", "lm0", "nwords"] and d["srilm"]["rescore_lmw"] == 0
    assert main(["tune", *base, "--scores", "am,lm0", "--out", str(tmp_path / "w.json"),
                 "--print-srilm"]) == 0
    out = capsys.readouterr().out
    w = json.loads((tmp_path / "w.json").read_text())
    assert f"   -rescore-lmw {w['lm0']:.6g} -rescore-wtw 0" in out


def test_read_nbest_srilm_opts_through_io(tmp_path):
    write_text(tmp_path / "nb" / "a", "-1 -2 1 x\n")
    write_text(tmp_path / "p" / "a", "1\n")
    nb = read_nbest(tmp_path / "nb", "srilm", scores={"p": str(tmp_path / "p")})
    assert nb.utts[0].hyps[0].scores["p"] == pytest.approx(LN10)


def test_rescore_keeps_the_srilm_word_count_column(tmp_path):
    from asr_kd.rescore import rescore_nbest
    from test_rescore import MODELS, make_vocab
    write_text(tmp_path / "nb" / "a", "-1 -2 5 the -pau- cat\n-1 -2 0\n")
    nb = read_srilm(tmp_path / "nb")
    rescore_nbest(nb, MODELS["lstm"](), make_vocab(), "tiny")
    assert [h.scores["nwords"] for h in nb.utts[0].hyps] == [5.0, 0.0]   # not 3 and 0
    assert "lm:tiny" in nb.utts[0].hyps[0].scores


def test_huge_word_count_is_an_input_error(tmp_path):
    write_text(tmp_path / "nb" / "a", "-1 -2 " + "9" * 5000 + " x\n")
    with pytest.raises(InputError, match=r"a:1: word count 9{20}\.\.\. is too large"):
        read_srilm(tmp_path / "nb")


def test_a_folder_starting_with_an_empty_list_is_detected_as_srilm(tmp_path):
    from asr_kd.nbest.io import detect_format
    nb = NBest([Utterance("a", []), Utterance("b", [Hyp("x", {"am": -1.0, "lm0": -2.0})])])
    write_srilm(nb, tmp_path / "out", "3")
    assert (tmp_path / "out" / "a.nbest").read_text() == ""
    assert detect_format(tmp_path / "out") == "srilm"
