"""recipes/wsj: sentinels stamp every file a step reads, outputs are atomic, one run per exp/.

* ``recipes/utils/step_signature.py`` stamps the file inside ``--text-filter "FILE -BLOCK"``
  and ``--name=FILE``: editing it reruns the step;
* run.sh writes no output by a shell redirect or ``cp`` (a kill would leave it
  empty or partial under its final name): ``to FILE cmd...`` (``recipes/utils/outputs.sh``)
  writes a temporary and renames it, and a killed one leaves the earlier file;
* a second run.sh on the same ``--exp`` stops at once with one line naming the
  folder and the first run's pid.
"""
from __future__ import annotations

import fcntl
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSJ = os.path.join(ROOT, "recipes", "wsj")
_spec = importlib.util.spec_from_file_location(
    "step_signature", os.path.join(ROOT, "recipes", "utils", "step_signature.py"))
sig = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sig)

needs_bash = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def test_signature_stamps_a_rules_file_followed_by_switches(tmp_path):
    rules = tmp_path / "w2p.rules"
    rules.write_text("[numbers]\none => 1\n")
    nb = tmp_path / "dev.jsonl"
    nb.write_text("{}\n")
    words = ["asr-kd", "rescore", "--nbest", str(nb), "--text-filter", f"{rules} -numbers",
             "--out", str(tmp_path / "o.jsonl")]
    before = sig.sign(words)
    assert any(ln.startswith(f"in {rules}\tmd5:") for ln in before)
    rules.write_text("[numbers]\none => N\n")
    after = sig.sign(words)
    assert after != before
    assert sig.diff(before, after) == f"inputs changed: {rules}"


def test_signature_stamps_the_value_of_name_equals_file(tmp_path):
    conf = tmp_path / "student.yaml"
    conf.write_text("hidden_dim: 8\n")
    out = tmp_path / "student"
    out.mkdir()
    (out / "config.json").write_text("{}")
    words = ["asr-kd", "distill", f"--config={conf}", f"--out={out}", "--threads=4", "--tau=2"]
    before = sig.sign(words)
    assert any(ln.startswith(f"in {conf}\tmd5:") for ln in before)
    assert not any(ln.startswith(f"in {out}\t") for ln in before)  # an output
    assert not any("--threads" in ln for ln in before)
    conf.write_text("hidden_dim: 16\n")
    after = sig.sign(words)
    assert after != before and sig.diff(before, after) == f"inputs changed: {conf}"
    assert sig.diff(after, sig.sign(words[:-1] + ["--tau=3"])) == "--tau 2 -> 3"


def test_run_sh_writes_no_output_by_redirect_or_cp():
    with open(os.path.join(WSJ, "run.sh"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    bad = []
    for n, line in enumerate(lines, 1):
        code = line.split(" #", 1)[0]
        if re.search(r'(^|[^>&0-9])>>? *"\$(exp|data|lm_data|lm_exp|d)\b', code) \
                or re.search(r"(^|[;&|(]\s*|^\s*)cp\s", code):
            bad.append(f"run.sh:{n}: {line.strip()}")
    assert not bad, "outputs written in place:\n" + "\n".join(bad)


def bash(script: str, cwd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


@needs_bash
def test_to_leaves_the_earlier_file_when_killed_or_failing(tmp_path):
    out = tmp_path / "dev.json"
    out.write_text('{"wer": 5.0}\n')
    # The writing command kills the shell that runs `to` in the middle of its output.
    p = bash(f'. ../utils/outputs.sh; to {out} sh -c \'printf "{{\\"we"; kill -9 $PPID; sleep 1\'',
             WSJ)
    assert p.returncode == -9 or p.returncode == 137, p
    assert out.read_text() == '{"wer": 5.0}\n'
    p = bash(f'set -e; . ../utils/outputs.sh; to {out} sh -c "printf partial; exit 3"; echo no',
             WSJ)
    assert p.returncode == 3 and "no" not in p.stdout
    assert out.read_text() == '{"wer": 5.0}\n'
    p = bash(f'set -e; . ../utils/outputs.sh; to {out} echo new', WSJ)
    assert p.returncode == 0 and out.read_text() == "new\n"
    assert sorted(os.listdir(tmp_path)) == ["dev.json"]  # the killed temporary went too
    assert oct(out.stat().st_mode & 0o777) == "0o644"


@pytest.mark.slow  # runs recipes/wsj/run.sh twice
@needs_bash
def test_second_run_on_one_exp_is_refused(tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OMP_NUM_THREADS="1")
    env.pop("ASR_KD_RECIPE_LOCKS", None)
    cmd = ["bash", os.path.join(WSJ, "run.sh"), "--data", str(tmp_path / "data"),
           "--exp", str(exp), "--stage", "10", "--int8-student", "false"]
    with open(exp / ".lock", "a+") as held:      # a first run, holding the folder
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.seek(0)
        held.truncate()
        held.write("4242\n")
        held.flush()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
        assert p.returncode == 1, p.stdout + p.stderr
        last = p.stderr.strip().splitlines()[-1]
        assert str(exp) in last and "pid 4242" in last and "another run" in last
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr  # free again: it runs (nothing to do)
