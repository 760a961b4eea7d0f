"""End-to-end runs of recipes/wsj/run.sh on tiny configurations (a few minutes in all)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from asr_kd.nbest import Hyp, NBest, Utterance, write_kaldi_nbest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "wsj", "run.sh")

TINY = """embed_dim: {d}
hidden_dim: {d}
num_layers: 1
batching: sentence
batch_size: 16
epochs: 1
optimizer: adamw
lr: 0.01
"""

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def run_recipe(tmp_path, *args):
    for name, d in (("teacher", 24), ("student", 8)):
        (tmp_path / f"{name}.yaml").write_text(TINY.format(d=d))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OMP_NUM_THREADS="1")
    cmd = ["bash", RECIPE, "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
           "--teacher-conf", str(tmp_path / "teacher.yaml"),
           "--student-conf", str(tmp_path / "student.yaml"), "--device", "cpu", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def check_report(tmp_path, p):
    exp = tmp_path / "exp"
    res = json.loads((exp / "report" / "results.json").read_text())
    names = [r["system"] for r in res["systems"]]
    assert names == ["first_pass", "teacher", "baseline", "student"]
    for r in res["systems"]:
        for st in ("dev", "eval"):
            assert 0 <= r[st]["wer"] <= 100 and r[st]["oracle_wer"] <= r[st]["wer"]
    assert res["systems"][3]["params"] < res["systems"][1]["params"]
    for png in ("wer_vs_size.png", "wer_vs_lm_weight.png", "training_curves.png"):
        assert (exp / "report" / png).stat().st_size > 1000
    assert "| student |" in p.stdout  # the table is printed at the end
    assert len(res["comparisons"]) == 10


def test_recipe_mini_task_end_to_end_and_rerun_skips(tmp_path):
    p = run_recipe(tmp_path, "--mini-words", "3000", "--mini-utts", "8", "--mini-nbest", "5",
                   "--num-teachers", "2")
    check_report(tmp_path, p)
    assert (tmp_path / "exp" / "teacher2" / "model.safetensors").is_file()
    # A rerun of the training stages finds every sentinel and does no work.
    p2 = run_recipe(tmp_path, "--stage", "1", "--stop-stage", "5", "--num-teachers", "2")
    assert p2.stdout.count("done before, skipping") == 5


def test_recipe_real_data_path_with_lm_text_and_kaldi_archives(tmp_path):
    import random

    rng = random.Random(0)
    words = "the market rose fell sharply today yesterday stocks bonds prices".split()
    sents = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(400)]
    (tmp_path / "lm.txt").write_text("\n".join(sents[20:]) + "\n")
    for st, part in (("dev", sents[:10]), ("eval", sents[10:20])):
        utts, refs = [], []
        for i, ref in enumerate(part):
            uid = f"{st}{i:03d}"
            hyps = [Hyp(ref, {"am": -10.0, "lm0": -5.0})]
            for k in range(3):
                w = ref.split()
                w[rng.randrange(len(w))] = rng.choice(words)
                hyps.append(Hyp(" ".join(w), {"am": -10.0 + rng.random(), "lm0": -5.5}))
            utts.append(Utterance(uid, hyps))
            refs.append(f"{uid} {ref}")
        write_kaldi_nbest(NBest(utts), str(tmp_path / st / "nbest"))
        (tmp_path / st / "text").write_text("\n".join(refs) + "\n")
    p = run_recipe(tmp_path, "--lm-text", str(tmp_path / "lm.txt"),
                   "--nbest-dev", str(tmp_path / "dev" / "nbest"),
                   "--nbest-eval", str(tmp_path / "eval" / "nbest"), "--nbest-format", "kaldi",
                   "--ref-dev", str(tmp_path / "dev" / "text"),
                   "--ref-eval", str(tmp_path / "eval" / "text"), "--valid-every", "10")
    check_report(tmp_path, p)
    assert not (tmp_path / "data" / "mini").exists()


def test_recipe_refuses_unknown_option(tmp_path):
    p = subprocess.run(["bash", RECIPE, "--no-such-option", "1"], capture_output=True, text=True)
    assert p.returncode != 0 and "unknown option --no-such-option" in p.stderr
