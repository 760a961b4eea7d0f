"""End to end: recipes/wsj/run.sh and run_seeds.sh --frontier on the embedded mini task with
tiny models."""
import json
import os
import subprocess
import sys

import pytest

from test_recipe import ROOT, run_recipe

pytestmark = pytest.mark.slow


def _sentinels(lm_exp):
    return sorted(n for n in os.listdir(lm_exp / ".done") if n.startswith("frontier_lm_"))


def test_frontier_two_sizes_two_seeds_trust_modes_int8_and_report(tmp_path):
    int8 = __import__("importlib").util.find_spec("onnxruntime") is not None
    args = ("--mini-words", "3000", "--mini-utts", "8", "--mini-nbest", "5", "--seeds", "2",
            "--int8-student", "false", "--frontier", "1x4,h6e4",
            "--frontier-trust", "none,margin", "--frontier-trust-at", "1x4",
            "--frontier-int8", "h6e4" if int8 else "false")
    p = run_recipe(tmp_path, *args)
    exp = tmp_path / "exp"
    assert "Stage 10: size frontier (1x4,h6e4; 2 run(s) each)" in p.stdout
    for size, systems, arch in (("1x4", ["baseline", "student", "student_margin"], (1, 4, 4)),
                                ("h6e4", ["baseline", "student"] + ["student_int8"] * int8,
                                 (1, 6, 4))):
        for r, seed in ((1, 0), (2, 1000)):
            d = exp / "frontier" / size / f"seed{r}"
            models = json.loads((d / "models.json").read_text())
            assert list(models) == systems
            for s in systems:
                cfg = json.loads((exp / "frontier" / size / f"seed{r}" / s / "config.json")
                                 .read_text())
                assert models[s] == str(exp / "frontier" / size / f"seed{r}" / s)
                if s == "student_int8":
                    assert cfg["format"] == "asr_kd-exported-lm"
                    continue
                m = cfg["model"]
                assert (m["num_layers"], m["hidden_dim"], m["embed_dim"]) == arch
                assert cfg["seed"] == seed
                if s.startswith("student"):   # distilled from run r's own teacher
                    assert cfg["kd"]["trust"] == {"student": "none"}.get(s, "margin")
                    assert cfg["kd"]["alpha"] == 0.5
                    assert [os.path.realpath(t) for t in cfg["teacher"]] == \
                        [str(exp / f"seed{r}" / "teacher1")]
                for st in ("dev", "eval"):
                    sc = json.loads((d / "score" / s / f"{st}.json").read_text())
                    assert 0 <= sc["wer"] <= 100
                assert json.loads((d / "ppl" / f"{s}.json").read_text())["ppl"] > 1
            w = json.loads((d / "score" / "student" / "weights.json").read_text())
            assert "lm:student" in w and "lm:baseline" not in w
        for st in ("dev", "eval"):
            for s in systems[1:]:
                c = json.loads((exp / "frontier" / size / "compare" /
                                f"{st}.baseline_vs_{s}.json").read_text())
                assert c["runs"] == 2 and "bootstrap" in c
    res = json.loads((exp / "report" / "results.json").read_text())
    fr = res["frontier"]
    assert [s["name"] for s in fr["sizes"]] == ["1x4", "h6e4"]  # by parameters
    assert fr["sizes"][0]["params"] < fr["sizes"][1]["params"]
    teacher = next(r for r in res["systems"] if r["system"] == "teacher")
    assert fr["teacher"]["dev"] == teacher["dev"]["wer"]
    for size in fr["sizes"]:
        assert size["runs"] == 2
        for s in size["systems"].values():
            assert len(s["dev"]["values"]) == 2 and len(s["ppl"]["values"]) == 2
    md = (exp / "report" / "report.md").read_text()
    assert "## Size frontier" in md and "| 1x4 (student_margin) |" in md
    assert "Missing inputs" not in md
    for png in ("frontier_wer.png", "frontier_ppl.png"):
        assert (exp / "report" / png).stat().st_size > 5000
    assert "Size frontier" in (exp / "report" / "report.html").read_text()
    # The same command again (--nj 2: rescoring in shard jobs): every frontier model is
    # found done, nothing retrained; the sharded rescoring gives the same lists.
    before = _sentinels(exp)
    lists = _lists(exp)
    p2 = run_recipe(tmp_path, *args, "--stage", "10", "--nj", "2")
    assert "Stage 10" in p2.stdout and "Run 1 of 2" not in p2.stdout
    n_models = 2 * (3 + 2 + int8)
    assert p2.stdout.count("done before, skipping") == n_models
    assert _sentinels(exp) == before and len(before) == n_models
    assert (exp / "frontier" / "1x4" / "seed2" / "log" / "rescore_dev_student.1.log").is_file()
    assert _lists(exp) == lists


def _lists(exp):
    """The rescored lists of the frontier, decompressed (gzip headers hold a time)."""
    import gzip
    return {str(p.relative_to(exp)): gzip.open(p).read()
            for p in sorted((exp / "frontier").glob("*/seed*/rescore/*.all.jsonl.gz"))}


def test_frontier_is_passed_on_by_the_atis_recipe(tmp_path):
    """recipes/atis/run.sh hands --frontier to recipes/wsj/run.sh (which checks it) and
    runs up to stage 10 by default."""
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               PYTHONPATH=ROOT)
    atis = os.path.join(ROOT, "recipes", "atis", "run.sh")
    p = subprocess.run(["bash", atis, "--stage", "1", "--data", str(tmp_path / "d"), "--exp",
                        str(tmp_path / "e"), "--frontier", "1x16,1z8"], text=True,
                       capture_output=True, env=env)
    assert p.returncode == 1
    assert "run.sh: --frontier: size 2 '1z8'" in p.stderr
    help_ = subprocess.run(["bash", atis, "--help"], text=True, capture_output=True).stdout
    stop = [line.split()[:2] for line in help_.splitlines() if "--stop-stage" in line]
    assert stop == [["--stop-stage", "10"]]


def test_frontier_sh_writes_every_output_through_to():
    """local/frontier.sh writes no output by redirect or cp (a kill would leave it half)."""
    import re
    with open(os.path.join(ROOT, "recipes", "wsj", "local", "frontier.sh"), encoding="utf-8") as f:
        lines = f.read().splitlines()
    bad = [f"frontier.sh:{n}: {line.strip()}" for n, line in enumerate(lines, 1)
           if re.search(r'(^|[^>&0-9<])>>? *"?\$', line.split(" #", 1)[0])
           or re.search(r"(^|[;&|(]\s*|^\s*)cp\s", line.split(" #", 1)[0])]
    assert not bad, "\n".join(bad)
    assert sum("to \"$" in line for line in lines) >= 6


def test_frontier_one_seed_from_the_teacher_cache(tmp_path):
    """One seed run (the recipe's own folders) and --use-cache true: the frontier students
    distil from the run's top-K cache, in the recipe's own folders."""
    args = ("--mini-words", "3000", "--mini-utts", "8", "--mini-nbest", "5",
            "--int8-student", "false", "--use-cache", "true", "--topk", "8",
            "--frontier", "2x4")
    run_recipe(tmp_path, *args)
    exp = tmp_path / "exp"
    d = exp / "frontier" / "2x4" / "seed1"
    cfg = json.loads((d / "student" / "config.json").read_text())
    assert cfg["model"]["num_layers"] == 2 and cfg["seed"] == 0
    assert [os.path.realpath(t) for t in cfg["teacher"]] == [str(exp / "teacher_cache")]
    assert list(json.loads((d / "models.json").read_text())) == ["baseline", "student"]
    res = json.loads((exp / "report" / "results.json").read_text())
    size = res["frontier"]["sizes"][0]
    assert size["runs"] == 1 and size["systems"]["student"]["dev"]["values"] == [
        json.loads((d / "score" / "student" / "dev.json").read_text())["wer"]]
    assert "## Size frontier" in (exp / "report" / "report.md").read_text()
