"""Format detection, the read/write dispatcher and `asr-kd convert-nbest`."""
from __future__ import annotations

import pytest

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.nbest import FORMATS, detect_format, read_nbest, write_nbest
from nbest_fixtures import espnet_folder, kaldi_folder, write_json, write_text

ESP = [("u-1", [("a b", -1.0, -0.5, -0.25), ("a", -2.0, -1.0, -1.0)]),
       ("u-2", [("c", -3.0, -1, -2)])]


def test_detect_format(tmp_path):
    assert detect_format(espnet_folder(tmp_path / "esp", ESP)) == "espnet"
    assert detect_format(tmp_path / "esp" / "1best_recog") == "espnet"
    assert detect_format(kaldi_folder(tmp_path / "kaldi")) == "kaldi"
    assert detect_format(write_text(tmp_path / "a.jsonl.gz", "")) == "jsonl"
    assert detect_format(write_json(tmp_path / "a.json", [])) == "json"
    assert detect_format(write_text(tmp_path / "a.tsv", "")) == "nemo"
    assert detect_format(write_text(tmp_path / "sri" / "u1", "-1 -2 1 a\n").parent) == "srilm"
    assert detect_format(write_text(tmp_path / "one.nbest", "NBestList1.0\n")) == "srilm"
    with pytest.raises(InputError, match="cannot tell"):
        detect_format(write_text(tmp_path / "other" / "x", "hello\n").parent)
    with pytest.raises(InputError, match="no such file"):
        detect_format(tmp_path / "missing")
    assert set(FORMATS) == {"kaldi", "espnet", "srilm", "json", "nemo", "jsonl"}


def test_write_nbest_refuses_read_only_formats(tmp_path):
    nb = read_nbest(espnet_folder(tmp_path / "esp", ESP))
    with pytest.raises(InputError, match="cannot write N-best format 'espnet'"):
        write_nbest(nb, tmp_path / "x", "espnet")
    with pytest.raises(InputError, match="need scores 'am' and 'lm0'.*has: score, decoder, ctc"):
        write_nbest(nb, tmp_path / "k", "kaldi")
    assert not (tmp_path / "k").exists()


def test_convert_espnet_to_jsonl_with_trn_refs(tmp_path, capsys):
    espnet_folder(tmp_path / "esp", ESP)
    write_text(tmp_path / "ref.trn", "A B (u-1)\nC (u-2)\nD (u-3)\n")
    out = tmp_path / "out" / "nb.jsonl.gz"
    rc = main(["convert-nbest", "--from", "espnet", "--to", "jsonl", str(tmp_path / "esp"),
               str(out), "--ref", str(tmp_path / "ref.trn")])
    assert rc == 0
    err = capsys.readouterr().err
    assert "1 references have no N-best entry and are left out (first: u-3)" in err
    assert "2 utterances, 3 hypotheses (espnet)" in err
    nb = read_nbest(out)
    assert [u.ref for u in nb] == ["A B", "C"]
    assert nb.utts[0].hyps[0].scores == {"score": -1.0, "decoder": -0.5, "ctc": -0.25}


def test_convert_kaldi_round_trip_via_cli(tmp_path):
    kaldi_folder(tmp_path / "k")
    assert main(["convert-nbest", str(tmp_path / "k"), str(tmp_path / "a.jsonl")]) == 0
    assert main(["convert-nbest", "--from", "jsonl", "--to", "kaldi", str(tmp_path / "a.jsonl"),
                 str(tmp_path / "k2")]) == 0
    assert read_nbest(tmp_path / "k2") == read_nbest(tmp_path / "k") == read_nbest(
        tmp_path / "a.jsonl")


def test_convert_nemo_options(tmp_path):
    write_text(tmp_path / "p.tsv", "a\t-1\nb\t-2\nc\t-3\nd\t-4\n")
    assert main(["convert-nbest", "--from", "nemo", "--nemo-n", "2", str(tmp_path / "p.tsv"),
                 str(tmp_path / "o.jsonl")]) == 0
    assert [len(u.hyps) for u in read_nbest(tmp_path / "o.jsonl")] == [2, 2]
    write_text(tmp_path / "m.json", '{"audio_filepath": "x/a.wav", "text": "A"}\n')
    assert main(["convert-nbest", "--nemo-manifest", str(tmp_path / "m.json"),
                 str(tmp_path / "p.tsv"), str(tmp_path / "o2.jsonl")]) == 0
    nb = read_nbest(tmp_path / "o2.jsonl")
    assert [(u.utt, u.ref, len(u.hyps)) for u in nb] == [("a", "A", 4)]


def test_convert_errors_are_one_line_exit_2(tmp_path, capsys):
    espnet_folder(tmp_path / "esp", ESP)
    write_text(tmp_path / "text", "u-1 A B\n")
    out = tmp_path / "o.jsonl"
    rc = main(["convert-nbest", str(tmp_path / "esp"), str(out), "--ref", str(tmp_path / "text")])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert err.count("\n") == 1
    assert err.startswith("asr-kd convert-nbest: error: ")
    assert "1 of 2 N-best utterances have no reference: u-2" in err
    write_text(tmp_path / "esp" / "1best_recog" / "score", "u-1 -1\nu-2 oops\n")
    assert main(["convert-nbest", str(tmp_path / "esp"), str(out)]) == 2
    assert f"{tmp_path / 'esp' / '1best_recog' / 'score'}:2:" in capsys.readouterr().err
    assert main(["convert-nbest", "--nemo-n", "2", str(tmp_path / "esp"), str(out)]) == 2


def test_dedup_keeps_first_copy_with_its_scores():
    from asr_kd.nbest import Hyp, NBest, Utterance
    from asr_kd.nbest.dedup import dedup_hyps
    nb = NBest([Utterance("u1", [Hyp("a b", {"am": -1.0}), Hyp("a  b", {"am": -2.0}),
                                 Hyp("a c", {"am": -3.0}), Hyp("A b", {"am": -4.0}),
                                 Hyp("a c", {"am": -5.0})]),
                Utterance("u2", []), Utterance("u3", [Hyp(""), Hyp("")])])
    assert dedup_hyps(nb) == 3
    assert [(h.text, h.scores["am"]) for h in nb.utts[0].hyps] == \
        [("a b", -1.0), ("a c", -3.0), ("A b", -4.0)]  # case matters, as in scoring
    assert nb.utts[1].hyps == [] and [h.text for h in nb.utts[2].hyps] == [""]


def test_convert_dedup_hyporadise(tmp_path, capsys):
    src = write_json(tmp_path / "h.json", [
        {"id": "a", "input": ["x y", "x z", "x y", "x y", "x y"], "output": "x y"},
        {"id": "b", "input": ["p", "p", "p", "p", "p"], "output": "q"}])
    out = tmp_path / "o.jsonl"
    assert main(["convert-nbest", "--dedup", str(src), str(out)]) == 0
    assert "2 utterances, 3 hypotheses" in capsys.readouterr().err
    nb = read_nbest(out)
    assert [[h.text for h in u.hyps] for u in nb] == [["x y", "x z"], ["p"]]
    assert main(["convert-nbest", str(src), str(tmp_path / "all.jsonl")]) == 0
    assert read_nbest(tmp_path / "all.jsonl").num_hyps() == 10  # off by default
