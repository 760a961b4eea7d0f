"""The recipe's leakage guard (stage 0, before training) and stage 8's details, on tiny data."""
from __future__ import annotations

import json
import random

import pytest

from test_recipe import RECIPE, _fake_shared, run_recipe  # noqa: F401  (RECIPE: skip marks)

pytestmark = pytest.mark.slow  # every test runs recipes/wsj/run.sh


def test_recipe_stops_when_the_lm_text_holds_the_test_set(tmp_path):
    import os
    import subprocess
    import sys

    shared = _fake_shared(tmp_path / "shared", random.Random(1))  # half of the refs are PTB lines
    args = ["--task", "chime4", "--shared", str(shared), "--stop-stage", "0",
            "--lm-data", str(tmp_path / "lmdata"), "--lm-exp", str(tmp_path / "lmexp")]
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OMP_NUM_THREADS="1")
    p = subprocess.run(["bash", RECIPE, "--data", str(tmp_path / "data"), "--exp",
                        str(tmp_path / "exp"), *args],
                       capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode != 0
    assert "asr-kd overlap: error: " in p.stderr and "of the reference sentences occur in the " \
        "LM text" in p.stderr and "--allow-overlap true to go on" in p.stderr
    ov = json.loads((tmp_path / "exp" / "overlap.json").read_text())
    assert [s["ref"].rsplit("/", 1)[-1] for s in ov["sets"]] == ["dev.ref", "eval.ref"]
    assert sum(s["exact"] for s in ov["sets"]) == 20  # the 20 PTB sentences, all found
    assert ov["limits"] == {"sentences": 5.0, "ngrams": 30.0}
    # the override: the figures are printed and kept, the recipe goes on
    p = run_recipe(tmp_path, *args, "--allow-overlap", "true")
    assert "reference sentences" in p.stdout and "8-grams" in p.stdout
    assert json.loads((tmp_path / "exp" / "overlap.json").read_text())["limits"] == \
        {"sentences": None, "ngrams": None}


@pytest.mark.parametrize("limit", ["70"])
def test_recipe_limits_are_options(tmp_path, limit):
    shared = _fake_shared(tmp_path / "shared", random.Random(1))
    run_recipe(tmp_path, "--task", "chime4", "--shared", str(shared), "--stop-stage", "0",
               "--lm-data", str(tmp_path / "lmdata"), "--lm-exp", str(tmp_path / "lmexp"),
               "--max-overlap-sentences", limit, "--max-overlap-ngrams", "100")
    ov = json.loads((tmp_path / "exp" / "overlap.json").read_text())
    assert ov["limits"]["sentences"] == float(limit)
    assert max(s["exact_share"] for s in ov["sets"]) <= float(limit)


def test_recipe_report_links_details_and_browser(tmp_path):
    """A whole tiny run (test_recipe's real-data path): stage 8 writes every system's details
    and the comparisons' differences; the report links them and report.html browses them."""
    import re

    import test_recipe

    test_recipe.test_recipe_real_data_path_with_lm_text_and_kaldi_archives(tmp_path)
    exp = tmp_path / "exp"
    systems = ["first_pass", "teacher", "baseline", "student"]
    for s in systems:
        for st in ("dev", "eval"):
            det = json.loads((exp / "score" / s / "details" / st / "details.json").read_text())
            sc = json.loads((exp / "score" / s / f"{st}.json").read_text())
            assert {k: det[k] for k in ("words", "sub", "del", "ins")} == \
                {k: sc[k] for k in ("words", "sub", "del", "ins")}
    diff = json.loads((exp / "compare" / "eval.teacher_vs_student" / "differences.json")
                      .read_text())
    sign = json.loads((exp / "compare" / "eval.teacher_vs_student.json").read_text())["sign_test"]
    assert (diff["b_better"], diff["a_better"], diff["ties"]) == \
        (sign["b_better"], sign["a_better"], sign["ties"])
    md = (exp / "report" / "report.md").read_text()
    for section in ("## Where the errors are", "## Where systems differ",
                    "## Leakage check (LM text vs references)"):
        assert section in md
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert len(links) >= 2 * len(systems) + 10
    for link in links:
        assert (exp / "report" / link).resolve().is_file(), link
    page = (exp / "report" / "report.html").read_text()
    data = json.loads(re.search(r'id="utt-data">(.*?)</script>', page, re.S).group(1))
    assert list(data) == ["dev", "eval"] and list(data["eval"]["systems"])[:4] == systems
    assert len(data["eval"]["utts"]) == 10
