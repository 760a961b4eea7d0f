"""End-to-end runs of recipes/wsj/run.sh (and run_seeds.sh) on tiny configurations (a few
minutes in all)."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from asr_kd.nbest import Hyp, NBest, Utterance, write_kaldi_nbest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPE = os.path.join(ROOT, "recipes", "wsj", "run.sh")
RUN_SEEDS = os.path.join(ROOT, "recipes", "wsj", "run_seeds.sh")

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
    """run.sh with ARGS (run_seeds.sh when they name --seeds) on tiny model configs."""
    for name, d in (("teacher", 24), ("student", 8)):
        (tmp_path / f"{name}.yaml").write_text(TINY.format(d=d))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OMP_NUM_THREADS="1")
    cmd = ["bash", RUN_SEEDS if "--seeds" in args else RECIPE, "--data", str(tmp_path / "data"), "--exp", str(tmp_path / "exp"),
           "--teacher-conf", str(tmp_path / "teacher.yaml"),
           "--student-conf", str(tmp_path / "student.yaml"), "--device", "cpu", *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return p


def check_report(tmp_path, p):
    exp = tmp_path / "exp"
    res = json.loads((exp / "report" / "results.json").read_text())
    names = [r["system"] for r in res["systems"]]
    int8 = importlib.util.find_spec("onnxruntime") is not None  # the student_int8 row (export)
    assert names == ["first_pass", "teacher", "baseline", "student"] + ["student_int8"] * int8
    if int8:
        st, q = res["systems"][3], res["systems"][4]
        assert q["params"] == st["params"] and q["size_mb"] > 0
        assert "| student_int8 |" in p.stdout
    for r in res["systems"]:
        for st in ("dev", "eval"):
            assert 0 <= r[st]["wer"] <= 100 and r[st]["oracle_wer"] <= r[st]["wer"]
    assert res["systems"][3]["params"] < res["systems"][1]["params"]
    for png in ("wer_vs_size.png", "wer_vs_lm_weight.png", "training_curves.png"):
        assert (exp / "report" / png).stat().st_size > 1000
    assert "| student |" in p.stdout  # the table is printed at the end
    assert len(res["comparisons"]) == 10


@pytest.mark.slow  # runs recipes/wsj/run.sh
def test_recipe_mini_task_end_to_end_and_rerun_skips(tmp_path):
    p = run_recipe(tmp_path, "--mini-words", "3000", "--mini-utts", "8", "--mini-nbest", "5",
                   "--num-teachers", "2")
    check_report(tmp_path, p)
    assert (tmp_path / "exp" / "teacher2" / "model.safetensors").is_file()
    # A rerun of the training stages finds every sentinel and does no work.
    p2 = run_recipe(tmp_path, "--stage", "1", "--stop-stage", "4", "--num-teachers", "2")
    assert p2.stdout.count("done before, skipping") == 5
    # A changed option reruns its step and everything after it, never reports a stale model.
    exp = tmp_path / "exp"
    teacher_mtime = (exp / "teacher1" / "model.safetensors").stat().st_mtime_ns
    before = student_scores(exp / "rescore" / "dev.student.jsonl.gz")
    p3 = run_recipe(tmp_path, "--stage", "4", "--num-teachers", "2", "--trust", "margin")
    assert "baseline: done before, skipping" in p3.stdout
    assert "student: made with other options or inputs (--trust none -> margin)" in p3.stdout
    cfg = json.loads((exp / "student" / "config.json").read_text())
    assert cfg["kd"]["trust"] == "margin"
    assert (exp / "teacher1" / "model.safetensors").stat().st_mtime_ns == teacher_mtime
    assert "student: distilled: alpha 0.5, tau 2.0, trust margin (beta 1.0), teacher" in \
        (exp / "report" / "report.md").read_text()
    # ... and the lists are rescored with the new student, not left from the old one.
    assert student_scores(exp / "rescore" / "dev.student.jsonl.gz") != before
    # --decode consensus: tune and score use consensus decoding and the report's rows say so.
    p4 = run_recipe(tmp_path, "--stage", "8", "--num-teachers", "2", "--decode", "consensus")
    for s in ("first_pass", "teacher", "baseline", "student"):
        w = json.loads((exp / "score" / s / "weights.json").read_text())
        assert w["decode"] == "consensus" and w["posterior_scale"] >= 0
        for part in ("dev", "eval"):
            sc = json.loads((exp / "score" / s / f"{part}.json").read_text())
            assert sc["decode"] == "consensus" and 0 <= sc["wer"] <= 100
    assert "| student (consensus, scale " in p4.stdout


@pytest.mark.slow  # runs recipes/wsj/run.sh
def test_recipe_seeds_report_means_ranges_and_pooled_tests(tmp_path):
    p = run_recipe(tmp_path, "--mini-words", "3000", "--mini-utts", "8", "--mini-nbest", "5",
                   "--seeds", "2", "--seed", "5")
    exp = tmp_path / "exp"
    for r, seed in ((1, 5), (2, 1005)):  # each run: its own models, seed and report
        cfg = json.loads((exp / f"seed{r}" / "student" / "config.json").read_text())
        assert cfg["seed"] == seed
        assert (exp / f"seed{r}" / "report" / "results.json").is_file()
    res = json.loads((exp / "report" / "results.json").read_text())
    assert res["runs"] == 2
    runs = [json.loads((exp / f"seed{r}" / "report" / "results.json").read_text())
            for r in (1, 2)]
    for k, row in enumerate(res["systems"]):
        for st in ("dev", "eval"):
            wers = [run["systems"][k][st]["wer"] for run in runs]
            assert row[st]["wers"] == wers
            assert row[st]["wer"] == pytest.approx(sum(wers) / 2)
            assert row[st]["wer_min"] == min(wers) and row[st]["wer_max"] == max(wers)
    assert res["systems"][3]["seeds"] == [5, 1005]
    assert len(res["comparisons"]) == 10 and all(c["runs"] == 2 for c in res["comparisons"])
    # The pooled test's WERs are the runs' mean WERs (same references in every run).
    c = next(c for c in res["comparisons"] if (c["set"], c["a"], c["b"]) ==
             ("eval", "baseline", "student"))
    assert c["wer_b"] == pytest.approx(res["systems"][3]["eval"]["wer"])
    md = (exp / "report" / "report.md").read_text()
    assert "means over the runs" in md and "student: distilled" in md
    assert "Report of the 2 runs" in p.stdout


def student_scores(path):
    import gzip

    with gzip.open(path, "rt") as f:
        return [h["scores"]["lm:student"] for line in f for h in json.loads(line)["hyps"]]


@pytest.mark.slow  # runs recipes/wsj/run.sh
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


def _fake_shared(root, rng):
    """A tiny stand-in for ../shared/data: PTB-style text and HyPoradise lists (with repeats)."""
    import json as _json

    words = "the market rose fell sharply today yesterday stocks bonds prices".split()
    sents = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 8))) for _ in range(500)]
    (root / "ptb").mkdir(parents=True)
    for name, part in (("train", sents[:400]), ("valid", sents[400:440]), ("test", sents[440:480])):
        (root / "ptb" / f"ptb.{name}.txt").write_text("\n".join(part) + "\n")
    (root / "hyporadise").mkdir()
    for name, scored in (("chime4_dev", False), ("wsj_dev", True)):
        items = []
        for i, ref in enumerate(sents[480:500] + sents[:20]):
            w = ref.split()
            w[rng.randrange(len(w))] = rng.choice(words)
            bad = " ".join(w)
            hyps = [bad, ref, bad, bad, bad] if i % 2 else [ref, bad, ref, ref, ref]
            item = {"id": f"{name}{i:03d}", "input": hyps, "output": ref}
            if scored:
                item["score"] = [-0.1 * (k + 1) for k in range(5)]
            items.append(item)
        (root / "hyporadise" / f"{name}.json").write_text(_json.dumps(items))
    return root


@pytest.mark.slow  # runs recipes/wsj/run.sh
def test_recipe_whisper_task_data_stage(tmp_path):
    """--task wsj-whisper, stage 0: the scored list is split by id and its repeats dropped."""
    import random

    from asr_kd.nbest import read_nbest

    shared = _fake_shared(tmp_path / "shared", random.Random(1))
    # (half of the fake lists' references are PTB sentences: past the leakage guard's limits)
    run_recipe(tmp_path, "--task", "wsj-whisper", "--shared", str(shared), "--stop-stage", "0",
               "--lm-data", str(tmp_path / "lmdata"), "--lm-exp", str(tmp_path / "lmexp"),
               "--allow-overlap", "true")
    dev = read_nbest(tmp_path / "data" / "dev.nbest.jsonl.gz")
    evl = read_nbest(tmp_path / "data" / "eval.nbest.jsonl.gz")
    assert len(dev) + len(evl) == 40 and max(len(u.hyps) for u in dev) == 2
    assert all("score" in h.scores for u in dev for h in u.hyps)
    assert (tmp_path / "lmdata" / "lm" / "valid.txt").read_text() == \
        (shared / "ptb" / "ptb.valid.txt").read_text()


@pytest.mark.slow  # runs recipes/wsj/run.sh
def test_recipe_whisper_task_end_to_end(tmp_path):
    """--task chime4 on HyPoradise lists: split by id, repeats dropped, first pass exact, OOV feature."""
    import random

    from asr_kd.nbest import read_nbest

    task = "chime4"
    shared = _fake_shared(tmp_path / "shared", random.Random(1))
    p = run_recipe(tmp_path, "--task", task, "--shared", str(shared),
                   "--lm-data", str(tmp_path / "lmdata"), "--lm-exp", str(tmp_path / "lmexp"),
                   "--text-filter", "lowercase", "--topk", "4", "--allow-overlap", "true")
    check_report(tmp_path, p)
    exp = tmp_path / "exp"
    dev = read_nbest(tmp_path / "data" / "dev.nbest.jsonl.gz")
    evl = read_nbest(tmp_path / "data" / "eval.nbest.jsonl.gz")
    assert len(dev) + len(evl) == 40 and not {u.utt for u in dev} & {u.utt for u in evl}
    assert max(len(u.hyps) for u in dev) == 2  # 5 slots, 2 distinct texts: repeats dropped
    fp = json.loads((exp / "score" / "first_pass" / "weights.json").read_text())
    assert fp == {("rank" if task == "chime4" else "score"): 1.0}
    # first pass: the top hypothesis, whose WER is known from the construction
    n_err = sum(u.hyps[0].text != u.ref for u in evl)
    assert json.loads((exp / "score" / "first_pass" / "eval.json").read_text())["ser"] == \
        pytest.approx(100.0 * n_err / len(evl))
    st = json.loads((exp / "score" / "student" / "weights.json").read_text())
    assert "oov:student" in st and "lm:student" in st and "wip" in st
    for mode in ("stream", "sentence"):
        assert json.loads((exp / "ppl" / f"teacher.test.{mode}.json").read_text())["ppl"] > 1
    assert (tmp_path / "lmexp" / "teacher2" / "model.safetensors").is_file()
    assert (tmp_path / "lmexp" / "teacher_cache" / "manifest.json").is_file()


@pytest.mark.slow  # runs recipes/wsj/run.sh
def test_atis_recipe_end_to_end_with_heldout_eval(tmp_path):
    """recipes/atis/run.sh: LM text from the list's own references minus dev/eval, by id."""
    import json as _json
    import random

    from asr_kd.nbest import read_nbest

    rng = random.Random(2)
    words = "show me flights from boston to denver on monday list fares".split()
    items = []
    for i in range(400):
        ref = " ".join(rng.choice(words) for _ in range(rng.randint(3, 8)))
        w = ref.split()
        k = rng.randrange(len(w))
        w[k] = rng.choice([x for x in words if x != w[k]])  # the top hypothesis is wrong
        items.append({"id": f"q{i:04d}", "input": [" ".join(w), ref, ref, ref, ref], "output": ref,
                      "am_score": [-0.5, -0.6, -0.6, -0.6, -0.6]})
    (tmp_path / "atis.json").write_text(_json.dumps(items[:360]))
    (tmp_path / "heldout.json").write_text(_json.dumps(items[360:]))
    for name, d in (("teacher", 24), ("student", 8)):
        (tmp_path / f"{name}.yaml").write_text(TINY.format(d=d))
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"],
               OMP_NUM_THREADS="1")
    atis = os.path.join(ROOT, "recipes", "atis", "run.sh")
    common = ["--atis-json", str(tmp_path / "atis.json"), "--data", str(tmp_path / "data"),
              "--exp", str(tmp_path / "exp"), "--teacher-conf", str(tmp_path / "teacher.yaml"),
              "--student-conf", str(tmp_path / "student.yaml"), "--device", "cpu"]
    p = subprocess.run(["bash", atis, *common], capture_output=True, text=True, env=env,
                       timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    check_report(tmp_path, p)
    lm = set((tmp_path / "data" / "lm" / "train.txt").read_text().splitlines()) | \
        set((tmp_path / "data" / "lm" / "valid.txt").read_text().splitlines())
    held = read_nbest(tmp_path / "data" / "dev.nbest.jsonl.gz").utts + \
        read_nbest(tmp_path / "data" / "eval.nbest.jsonl.gz").utts
    n_lm = len((tmp_path / "data" / "split" / "lm.txt").read_text().splitlines())
    assert n_lm + len(held) == 360  # every utterance in exactly one part
    fp = json.loads((tmp_path / "exp" / "score" / "first_pass" / "eval.json").read_text())
    assert fp["ser"] == pytest.approx(100.0)  # the top hypothesis is always the wrong one
    # A held-out list: same models (no retraining), reported instead of bucket 1.
    p = subprocess.run(["bash", atis, *common, "--nbest-eval", str(tmp_path / "heldout.json")],
                       capture_output=True, text=True, env=env, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert p.stdout.count("done before, skipping") >= 5
    assert {u.utt for u in read_nbest(tmp_path / "data" / "eval.nbest.jsonl.gz")} == \
        {f"q{i:04d}" for i in range(360, 400)}
    assert lm  # the LM text is not empty
