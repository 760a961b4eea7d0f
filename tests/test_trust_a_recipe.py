"""The recipes' option parser (recipes/utils/options.sh): every argument is an option with
one value; --pass-unknown hands the rest on."""
from __future__ import annotations

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WSJ = os.path.join(ROOT, "recipes", "wsj")
RECIPE = os.path.join(WSJ, "run.sh")

# the recipes' option parser, with two options, printing what they parsed
HARNESS = ('. ../utils/options.sh; opts stage=0 decode=1best; parse_options "$@"; '
           'echo "stage=$stage decode=$decode"')


def parse(*args):
    return subprocess.run(["bash", "-c", HARNESS, "run.sh", *args], cwd=WSJ,
                          capture_output=True, text=True)


def test_options_parse():
    p = parse("--stage", "8", "--decode=consensus")
    assert p.returncode == 0 and p.stdout.strip() == "stage=8 decode=consensus"
    p = parse("--decode", "")          # an empty value is a value
    assert p.returncode == 0 and p.stdout.strip() == "stage=0 decode="


@pytest.mark.parametrize("args", [["--stage", "8", "9", "--decode", "consensus"],
                                  ["stray"], ["--stage=8", "9"]])
def test_a_stray_argument_is_refused(args):
    # before: the parse stopped at the stray word and ran with --decode 1best
    p = parse(*args)
    assert p.returncode != 0 and "unexpected argument" in p.stderr and p.stdout == ""


def test_unknown_option_without_value_is_named_as_unknown():
    p = parse("--bogus")
    assert p.returncode != 0 and "unknown option --bogus" in p.stderr
    assert "needs a value" in parse("--stage").stderr
    p = subprocess.run(["bash", RECIPE, "--bogus"], capture_output=True, text=True)
    assert p.returncode != 0 and "unknown option --bogus" in p.stderr
