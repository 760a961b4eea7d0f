"""The option parser of the recipes outside recipes/wsj/run.sh and recipes/atis/run.sh.

Each script parses its options with recipes/utils/options.sh: ``--help`` lists every
option and exits 0 before any work; an unknown option stops it with one line naming
the option and status 1.
"""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "recipes"

# script -> the options its --help must list
SCRIPTS = {
    "ptb/run_kd.sh": ["--ptb", "--exp", "--jobs", "--stage", "--stop-stage", "--device",
                      "--student-conf", "--seed"],
    "librispeech/run_espnet_nbest.sh": ["--stage", "--stop-stage", "--data", "--exp",
                                        "--threads", "--min-count"],
    "librispeech/run_consensus.sh": ["--shared", "--exp", "--part"],
    "srilm/run.sh": ["--libri"],
    "wsj/local/kd_ablation.sh": ["--exp", "--lm-exp", "--lm-data", "--student-conf",
                                 "--first-pass-scores", "--text-filter", "--jobs", "--seed"],
    "wsj/local/filter_ablation.sh": ["--exp", "--rules", "--first-pass-scores", "--model",
                                     "--blocks"],
}


def _bash(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(RECIPES / script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_help_lists_every_option(script, tmp_path):
    r = _bash(script, "--help", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: ")
    listed = [line.split()[0] for line in r.stdout.splitlines()[2:]]
    assert listed == SCRIPTS[script]
    assert list(tmp_path.iterdir()) == []  # --help does no work


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_unknown_option_is_one_line_and_status_1(script, tmp_path):
    r = _bash(script, "--no-such-option", "x", cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and "unknown option --no-such-option" in lines[0], r.stderr
    assert r.stdout == ""
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_option_without_value_is_refused(script, tmp_path):
    opt = SCRIPTS[script][0]
    r = _bash(script, opt, cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"{RECIPES / script}: option {opt} needs a value"]


def test_srilm_libri_takes_true_or_false(tmp_path):
    # the old positional flag `--libri` now needs its value
    r = _bash("srilm/run.sh", "--libri", "yes", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [f"{RECIPES / 'srilm/run.sh'}: --libri is true or false, not 'yes'"]


def test_kd_ablation_refuses_unknown_option_among_variants(tmp_path):
    # the words after the options are variants; an option nobody knows is not one
    r = _bash("wsj/local/kd_ablation.sh", "--exp", "e", "--bogus=1", "v:--alpha 1", cwd=tmp_path)
    assert r.returncode == 1
    assert len(r.stderr.splitlines()) == 1 and "unknown option --bogus " in r.stderr


@pytest.mark.parametrize("script,args", [
    ("wsj/local/kd_ablation.sh", ["--exp", "e", "--lm-exp", "l", "--lm-data", "d"]),
    ("wsj/local/filter_ablation.sh", ["--exp", "e", "--rules", "r"]),
])
def test_ablation_usage_on_missing_required_options(script, args, tmp_path):
    r = _bash(script, *args, cwd=tmp_path)
    assert r.returncode == 1
    assert f"local/{Path(script).name} --exp" in r.stderr  # the usage text of the header
    assert r.stdout == ""
