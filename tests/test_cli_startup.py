"""The scoring commands start without importing torch (about 2 s on a small CPU): a recipe
runs dozens of them, and `asr-kd score` on a laptop should feel instant."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("cmd", [["score", "--nbest", "{d}/n.jsonl", "--weight", "am=1"],
                                 ["tune", "--nbest", "{d}/n.jsonl", "--scores", "am",
                                  "--out", "{d}/w.json"],
                                 ["compare", "--ref", "{d}/ref", "{d}/ref", "{d}/ref"],
                                 ["convert-nbest", "{d}/n.jsonl", "{d}/o.jsonl"]])
def test_scoring_commands_do_not_import_torch(tmp_path, cmd):
    (tmp_path / "n.jsonl").write_text('{"utt": "u1", "ref": "a b", "hyps": [{"text": "a b", '
                                      '"scores": {"am": -1}}, {"text": "a", "scores": '
                                      '{"am": -2}}]}\n')
    (tmp_path / "ref").write_text("u1 a b\n")
    code = ("import sys; from asr_kd.cli import main; rc = main(sys.argv[1:]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    p = subprocess.run([sys.executable, "-c", code, *[c.format(d=tmp_path) for c in cmd]],
                       capture_output=True, text=True, env=env)
    assert p.returncode == 0, p.stderr


def test_full_help_still_lists_every_command():
    from asr_kd.cli import COMMANDS, build_parser

    text = build_parser().format_help()
    for name in COMMANDS:
        assert name.replace("_", "-") in text
