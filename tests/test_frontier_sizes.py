"""The frontier's size syntax (asr_kd.frontier_sizes) and the recipe's plan script."""
import json
import os
import subprocess
import sys

import pytest

from asr_kd.frontier_sizes import parse_size, parse_sizes, parse_trust_modes, pick_sizes

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize("text, arch", [
    ("1x16", (1, 16, 16, 0)),            # layers x hidden, tied embedding
    ("2x64", (2, 64, 64, 0)),
    ("h32", (1, 32, 32, 0)),
    ("e64h64", (1, 64, 64, 0)),
    ("1x512p64", (1, 512, 64, 64)),      # projection: the embedding follows it (tied)
    ("h128e32", (1, 128, 32, 0)),        # a smaller, untied embedding
    ("l3h100e20p40", (3, 100, 20, 40)),
    ("2x100e20", (2, 100, 20, 0)),
])
def test_sizes_parse_to_layers_hidden_embed_proj(text, arch):
    s = parse_size(text)
    assert s.arch() == arch and s.name == text
    assert s.overrides() == ["--num-layers", str(arch[0]), "--hidden-dim", str(arch[1]),
                             "--embed-dim", str(arch[2]), "--proj-dim", str(arch[3])]


@pytest.mark.parametrize("text, why", [
    ("", "expected LxH"), ("16", "expected LxH"), ("x16", "expected LxH"),
    ("1x16x2", "expected LxH"), ("1X16", "expected LxH"), ("e32", "no hidden size"),
    ("1x16h32", "h given twice"), ("h16e8e8", "e given twice"), ("0x16", "at least 1"),
    ("1x0", "at least 1"), ("h16e0", "at least 1"), ("1x16p16", "projection"),
    ("1x16p0", "projection"), ("1x16 e8", "expected LxH"),
])
def test_malformed_sizes_are_refused_naming_the_size(text, why):
    with pytest.raises(ValueError, match=why) as e:
        parse_size(text, "size 3")
    assert f"size 3 {text!r}" in str(e.value)


def test_a_list_keeps_its_order_and_refuses_repeats_and_empty_entries():
    assert [s.name for s in parse_sizes("1x128,1x16, e64h64")] == ["1x128", "1x16", "e64h64"]
    with pytest.raises(ValueError, match="'l1h16' is the same size as '1x16'"):
        parse_sizes("1x16,2x8,l1h16")
    with pytest.raises(ValueError, match="size 2 ''"):
        parse_sizes("1x16,,1x32")


def test_picked_sizes_and_trust_modes():
    sizes = parse_sizes("1x16,1x32")
    assert pick_sizes("", sizes, "--x") == ["1x16", "1x32"] == pick_sizes("all", sizes, "--x")
    assert pick_sizes("1x32", sizes, "--x") == ["1x32"]
    with pytest.raises(ValueError, match=r"--x: '1x64' is not one of the --frontier sizes"):
        pick_sizes("1x64", sizes, "--x")
    assert parse_trust_modes("none,margin") == ["none", "margin"]
    with pytest.raises(ValueError, match="unknown trust mode 'soft'"):
        parse_trust_modes("none,soft")
    with pytest.raises(ValueError, match="given twice"):
        parse_trust_modes("rank,rank")


def _plan(*args):
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "local/frontier_sizes.py", *args], text=True,
                          capture_output=True, cwd=os.path.join(ROOT, "recipes", "wsj"), env=env)


def test_recipe_plan_lines_and_json():
    p = _plan("--sizes", "1x16,e64h64,1x512p64", "--trust", "none,margin", "--trust-at", "1x16",
              "--int8", "1x512p64")
    assert p.returncode == 0, p.stderr
    assert p.stdout.splitlines() == ["1x16 1 16 16 0 0 none,margin", "e64h64 1 64 64 0 0 none",
                                     "1x512p64 1 512 64 64 1 none"]
    j = json.loads(_plan("--sizes", "1x16", "--int8", "true", "--json").stdout)
    assert j == {"sizes": [{"name": "1x16", "num_layers": 1, "hidden_dim": 16, "embed_dim": 16,
                            "proj_dim": 0, "int8": True, "trust": ["none"]}]}
    bad = _plan("--sizes", "1x16", "--int8", "2x8")
    assert bad.returncode == 1 and bad.stdout == ""
    assert bad.stderr.strip() == ("run.sh: --frontier-int8: '2x8' is not one of the --frontier "
                                  "sizes (1x16)")


def test_run_sh_refuses_a_bad_size_before_any_work(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=ROOT)
    p = subprocess.run(["bash", os.path.join(ROOT, "recipes", "wsj", "run.sh"), "--exp",
                        str(tmp_path / "exp"), "--data", str(tmp_path / "data"),
                        "--frontier", "1x16,2y8"], text=True, capture_output=True, env=env)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1] == (
        "run.sh: --frontier: size 2 '2y8': expected LxH and/or fields lN hN eN pN "
        "(e.g. 1x16, e64h64, 1x512p64)")
    assert not (tmp_path / "exp").exists() and not (tmp_path / "data").exists()


def test_run_sh_help_describes_the_frontier_options():
    out = subprocess.run(["bash", os.path.join(ROOT, "recipes", "wsj", "run.sh"), "--help"],
                         text=True, capture_output=True, check=True).stdout
    lines = {l.split()[0]: l for l in out.splitlines() if l.startswith("  --")}
    assert "1x16,e64h64,1x512p64" in lines["--frontier"]
    assert "trust modes" in lines["--frontier-trust"]
    assert "every --frontier-trust mode" in lines["--frontier-trust-at"]
    assert lines["--frontier-int8"].split()[1] == "auto"
    assert lines["--stop-stage"].split()[1] == "10"
