"""recipes/utils/: the one option parser, sentinel scheme and job runner of every recipe,
and the shape of the recipes built on them (plain stage blocks in numeric order)."""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
UTILS = os.path.join(ROOT, "recipes", "utils")

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def bash(script: str, *args: str, cwd: str = UTILS) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    return subprocess.run(["bash", "-c", script, "recipe.sh", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_pass_unknown_keeps_the_other_words_in_order():
    p = bash('. ./options.sh; opts stage=0 seeds=1; parse_options --pass-unknown "$@"; '
             'echo "stage=$stage seeds=$seeds"; printf "[%s]" "${passed[@]}"',
             "--alpha", "0.5", "--stage", "3", "--tau=2", "x", "--seeds=2")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["stage=3 seeds=2", "[--alpha][0.5][--tau=2][x]"]


def test_help_lists_every_option_with_default_and_description():
    p = bash('. ./options.sh; opts stage=0 exp=exp; opt_help exp "experiment folder"; '
             'opts_usage="[options] DIR"; parse_options "$@"', "--help")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0] == "Usage: recipe.sh [options] DIR"
    assert [ln.split()[:2] for ln in lines[2:]] == [["--stage", "0"], ["--exp", "exp"]]
    assert lines[3].split()[2:] == ["experiment", "folder"]


def test_spawn_limits_jobs_and_wait_jobs_reports_a_failure(tmp_path):
    log = tmp_path / "log"
    # Three jobs, two at a time: the third starts only after the first ended.
    script = ('. ./jobs.sh; max_jobs=2; job() { echo "start $1" >> "$L"; sleep "$2"; '
              'echo "end $1" >> "$L"; return "$3"; }; '
              'spawn job a 1 0; spawn job b 1.2 0; spawn job c 0 0; wait_jobs "the jobs" '
              '&& echo ok; spawn job d 0 1; spawn job e 0 0; wait_jobs "job d (log: x)" '
              '|| echo failed')
    p = subprocess.run(["bash", "-c", script], cwd=UTILS, capture_output=True, text=True,
                       env=dict(os.environ, L=str(log)), timeout=60)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["ok", "failed"]
    assert p.stderr.strip() == "bash: job d (log: x) failed"
    events = log.read_text().splitlines()
    assert events.index("end a") < events.index("start c")  # at most 2 at once
    assert events.index("start b") < events.index("end a")   # ... but 2 at once (a sleeps 1 s)
    assert {"start e", "end e"} <= set(events)               # a failure stops nothing else


def test_done_or_run_skips_reruns_on_change_and_removes_only_inside_its_folders(tmp_path):
    exp, out = tmp_path / "exp", tmp_path / "exp" / "model"
    step = ('. ./steps.sh; step_outputs_under=("$E"); '
            'make() { mkdir -p "$2"; echo "$4" >> "$2/made"; }; '
            'done_or_run "$E" train make --out "$E/model" --size "$1"')
    env = dict(os.environ, E=str(exp),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])

    def run(size, script=step):
        return subprocess.run(["bash", "-c", script, "x", size], cwd=UTILS, env=env,
                              capture_output=True, text=True, timeout=60)
    assert run("8").returncode == 0 and (out / "made").read_text() == "8\n"
    p = run("8")
    assert "train: done before, skipping" in p.stdout and (out / "made").read_text() == "8\n"
    p = run("16")  # another option: the old output removed, the step made again
    assert "train: made with other options or inputs (--size 8 -> 16)" in p.stdout
    assert (out / "made").read_text() == "16\n"
    assert (exp / ".done" / "train").is_file() and not (exp / ".done" / "train.running").exists()
    # An output outside step_outputs_under is never removed: the user is asked to.
    other = step.replace('step_outputs_under=("$E")', 'step_outputs_under=()')
    p = run("32", other)
    assert p.returncode == 1 and "was made with other options; remove it to rerun" in p.stderr
    assert (out / "made").read_text() == "16\n"


WSJ = os.path.join(ROOT, "recipes", "wsj")
STAGE = re.compile(r"^if \[ \$stage -le (\d+) \] && \[ \$stop_stage -ge (\d+) \]")


@pytest.mark.parametrize("script", ["wsj/run.sh", "wsj/run_seeds.sh", "atis/run.sh",
                                    "ptb/run_kd.sh", "librispeech/run_espnet_nbest.sh"])
def test_stage_blocks_are_plain_and_in_numeric_order(script):
    with open(os.path.join(ROOT, "recipes", script), encoding="utf-8") as f:
        lines = f.read().splitlines()
    stages = [(int(m[1]), int(m[2])) for m in map(STAGE.match, lines) if m]
    assert stages, "no stage blocks"
    # run_seeds.sh: one block runs run.sh for stages 1..9 of every seed
    plain = [a for a, b in stages if a == b or (script.endswith("run_seeds.sh") and (a, b) == (9, 1))]
    assert len(plain) == len(stages), stages
    starts = [a if a == b else b for a, b in stages]
    assert starts == sorted(starts), starts


def test_run_sh_does_not_run_itself_again():
    """One run per run.sh; seeds are looped by run_seeds.sh, which runs run.sh."""
    with open(os.path.join(WSJ, "run.sh"), encoding="utf-8") as f:
        src = f.read()
    assert not re.search(r'^\s*(exec\s+)?"?\$(0|\{0\}|_self)"?\s', src, re.M)
    assert "opts seeds" not in src
    p = subprocess.run(["bash", os.path.join(WSJ, "run.sh"), "--seeds", "3"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1 and "./run_seeds.sh --seeds K" in p.stderr
    with open(os.path.join(WSJ, "run_seeds.sh"), encoding="utf-8") as f:
        assert f.read().count("./run.sh ") >= 2


def test_every_recipe_uses_the_one_parser():
    """No recipe script parses its own options: all go through utils/options.sh."""
    scripts = [p for p in glob.glob(os.path.join(ROOT, "recipes", "**", "*.sh"), recursive=True)
               if "/utils/" not in p and "/exp/" not in p]
    own = []
    for p in scripts:
        with open(p, encoding="utf-8") as f:
            src = f.read()
        if re.search(r"while \[\[? \$# -gt 0", src) and "parse_options" not in src:
            own.append(os.path.relpath(p, ROOT))
    assert not own, own
