"""Help a new user can rely on: every option says what it does, commands that print
progress take --quiet, asr-kd --version, and run.sh --help describes each option."""
from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from asr_kd.cli import build_parser, main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if hasattr(a, "choices") and isinstance(a.choices, dict))
    return sub.choices


def test_every_option_of_every_command_has_help():
    missing = [f"{name} {a.option_strings[0]}" for name, p in _subparsers().items()
               for a in p._actions if a.option_strings and a.dest != "help" and not a.help]
    assert missing == []


def test_help_names_srilm_output_and_the_sign_of_wip():
    cmds = _subparsers()
    assert "SRILM" in cmds["convert-nbest"].format_help()
    tune_help = " ".join(cmds["tune"].format_help().split())
    assert "bonus" in tune_help and "word_ins_penalty" in tune_help
    assert "word_ins_penalty" in cmds["score"].format_help()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("asr-kd ") and "asr_kd" in out


@pytest.mark.parametrize("command", ["score", "tune", "convert-nbest", "compare"])
def test_quiet_silences_progress(tmp_path, capsys, monkeypatch, command):
    nb = tmp_path / "nb.jsonl"
    with open(nb, "w") as f:
        for i in range(40):
            f.write(json.dumps({"utt": f"u{i:02d}", "ref": "a b c", "hyps": [
                {"text": "a b c", "scores": {"am": -1.0, "lm0": -2.0}},
                {"text": "a b", "scores": {"am": -0.5, "lm0": -3.0}}]}) + "\n")
    hyp = tmp_path / "hyp.txt"
    hyp.write_text("".join(f"u{i:02d} a b c\n" for i in range(40)))
    args = {"score": ["score", "--nbest", str(nb), "--weight", "am=1"],
            "tune": ["tune", "--nbest", str(nb), "--scores", "am,lm0",
                     "--out", str(tmp_path / "w.json")],
            "convert-nbest": ["convert-nbest", str(nb), str(tmp_path / "out.jsonl")],
            "compare": ["compare", "--ref", str(hyp), str(hyp), str(hyp)]}[command]
    monkeypatch.setenv("ASR_KD_PROGRESS_SECONDS", "0.000001")  # a line on every update
    capsys.readouterr()
    assert main(args) == 0
    # "12/40 hyp (30.0 %), 9.1 hyp/s"; a streamed score knows no total: "40 utt, 9.1 utt/s"
    rate = re.compile(r"\d+(/\d+)? .*, [\d.]+ [\w ]+/s")
    assert rate.search(capsys.readouterr().err)
    assert main(args + ["--quiet"]) == 0
    assert not rate.search(capsys.readouterr().err)


def test_run_sh_help_one_described_line_per_option():
    out = subprocess.run(["bash", "recipes/wsj/run.sh", "--help"], cwd=ROOT, text=True,
                         capture_output=True, check=True).stdout
    lines = [l for l in out.splitlines() if l.startswith("  --")]
    src = open(os.path.join(ROOT, "recipes/wsj/local/options.sh")).read()  # run.sh's options
    declared = [kv.split("=")[0] for l in src.splitlines() if l.startswith("opts ")
                for kv in l.split("#")[0].split()[1:]]
    assert [l.split()[0] for l in lines] == ["--" + d.replace("_", "-") for d in declared]
    # name, default ('' when empty), then the description
    assert all(len(l.split()) >= 4 for l in lines), [l for l in lines if len(l.split()) < 4]
