"""What SRILM users reach for: the acoustic and LM column names on reading and in
--print-srilm (--srilm-am, --srilm-lm), the utterance order kept through a SRILM folder,
and the -nbest-files list written with it."""
from __future__ import annotations

import json
import os

import pytest

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.nbest import read_nbest
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.nbest.srilm import read_srilm, write_srilm

ORDER = ["zz-3", "aa-1", "mm-2"]    # not name order


def _nb():
    return NBest([Utterance(u, [Hyp("a b", {"am": -1.5, "lm:t": -2.0}),
                                Hyp("a", {"am": -1.0, "lm:t": -3.5})], "a b") for u in ORDER])


@pytest.mark.parametrize("version", ["2", "3"])
def test_columns_read_back_under_the_names_written(tmp_path, version):
    write_srilm(_nb(), tmp_path / "sr", version, am="am", lm="lm:t")
    back = read_srilm(tmp_path / "sr", lm="lm:t")
    assert {"am", "lm:t"} <= set(back.utts[0].hyps[0].scores)
    assert "lm0" not in back.utts[0].hyps[0].scores
    assert back.utts[0].hyps[1].scores["lm:t"] == pytest.approx(-3.5, abs=0.06)
    with pytest.raises(InputError, match="two names"):
        read_srilm(tmp_path / "sr", am="x", lm="x")


def test_order_kept_through_the_folder_and_the_list(tmp_path, capsys):
    write_srilm(_nb(), tmp_path / "sr", "3", lm="lm:t")
    listed = (tmp_path / "sr" / "nbest-files").read_text().split()
    assert listed == [os.path.abspath(tmp_path / "sr" / f"{u}.nbest") for u in ORDER]
    assert [u.utt for u in read_nbest(tmp_path / "sr", lm="lm:t")] == ORDER
    assert [u.utt for u in read_nbest(tmp_path / "sr" / "nbest-files", lm="lm:t")] == ORDER
    # the CLI prints where the list is, and a list that disagrees with the folder is refused
    src = tmp_path / "nb.jsonl"
    src.write_text("".join(json.dumps({"utt": u.utt, "ref": u.ref, "hyps": [
        {"text": h.text, "scores": h.scores} for h in u.hyps]}) + "\n" for u in _nb()))
    capsys.readouterr()
    assert main(["convert-nbest", str(src), str(tmp_path / "cli"), "--to", "srilm",
                 "--srilm-lm", "lm:t"]) == 0
    err = capsys.readouterr().err
    assert str(tmp_path / "cli" / "nbest-files") in err and "--srilm-lm lm:t" in err
    assert main(["convert-nbest", str(tmp_path / "cli"), str(tmp_path / "back.jsonl"),
                 "--srilm-lm", "lm:t"]) == 0
    back = [json.loads(l) for l in open(tmp_path / "back.jsonl")]
    assert [u["utt"] for u in back] == ORDER and "lm:t" in back[0]["hyps"][0]["scores"]
    os.unlink(tmp_path / "cli" / "aa-1.nbest")
    with pytest.raises(InputError, match="nbest-files:2: .*not in the folder"):
        read_srilm(tmp_path / "cli")


def test_print_srilm_takes_the_key_names(tmp_path, capsys):
    nb = tmp_path / "nb.jsonl"
    nb.write_text("".join(json.dumps({"utt": u, "ref": "a b", "hyps": [
        {"text": "a b", "scores": {"ac": -1.0, "lm0": -2.0, "lm:t": -1.0}},
        {"text": "a", "scores": {"ac": -2.0, "lm0": -1.0, "lm:t": -3.0}}]}) + "\n"
        for u in ORDER))
    w = ["--weight", "ac=1", "--weight", "lm0=0.5", "--weight", "lm:t=0.25"]
    capsys.readouterr()
    assert main(["score", "--nbest", str(nb), *w, "--print-srilm", "--srilm-am", "ac",
                 "--srilm-lm", "lm:t", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)["srilm"]
    assert s["order"][:2] == ["ac", "lm:t"] and s["weights"][:2] == [1.0, 0.25]
    assert s["score_dirs"] == [["lm0", 0.5]]


def test_key_options_refused_for_other_input(tmp_path, capsys):
    nb = tmp_path / "nb.jsonl"
    nb.write_text(json.dumps({"utt": "u", "ref": "a", "hyps": [
        {"text": "a", "scores": {"am": -1.0}}]}) + "\n")
    capsys.readouterr()
    assert main(["tune", "--nbest", str(nb), "--scores", "am", "--srilm-lm", "lm:t",
                 "--out", str(tmp_path / "w.json")]) == 2
    assert "--srilm-lm apply to srilm input" in capsys.readouterr().err
