"""Distillation settings that were silently dropped: cache-teacher's combine rule from
the student config, and distill --resume with other settings or teachers."""
from __future__ import annotations

import json
import os

import pytest

from asr_kd.cli import main

from test_distill import make_text

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def two_teachers(tmp_path_factory):
    d = tmp_path_factory.mktemp("teachers")
    tr, va = make_text(d / "train.txt", 30, 0), make_text(d / "valid.txt", 8, 1)
    teachers = []
    for seed in (0, 1):
        out = str(d / f"t{seed}")
        assert main(["train-lm", "--train", tr, "--valid", va, "--out", out, "--epochs", "1",
                     "--hidden-dim", "8", "--embed-dim", "8", "--num-layers", "1",
                     "--seed", str(seed), "--quiet"]) == 0
        teachers.append(out)
    return d, tr, va, teachers


def student_conf(path, kd: str = "") -> str:
    path.write_text("embed_dim: 8\nhidden_dim: 8\nnum_layers: 1\nepochs: 1\n" + kd)
    return str(path)


def test_cache_teacher_takes_the_config_ensemble_and_distill_records_it(two_teachers, tmp_path,
                                                                         capsys):
    d, tr, va, teachers = two_teachers
    conf = student_conf(tmp_path / "s.yaml", "kd:\n  ensemble: logit\n")
    cache = str(tmp_path / "cache")
    assert main(["cache-teacher", "--teacher", *teachers, "--text", tr, "--topk", "4",
                 "--out", cache, "--config", conf, "--quiet"]) == 0
    with open(os.path.join(cache, "manifest.json")) as f:
        assert json.load(f)["ensemble"] == "logit"
    # a config without kd.ensemble: the student records the cache's rule
    plain = student_conf(tmp_path / "p.yaml")
    out = str(tmp_path / "student")
    assert main(["distill", "--config", plain, "--train", tr, "--valid", va, "--out", out,
                 "--teacher-cache", cache, "--quiet"]) == 0
    with open(os.path.join(out, "config.json")) as f:
        assert json.load(f)["kd"]["ensemble"] == "logit"
    # a rule that contradicts the cache: refused before training
    capsys.readouterr()
    rc = main(["distill", "--config", plain, "--train", tr, "--valid", va, "--out",
               str(tmp_path / "s2"), "--teacher-cache", cache, "--ensemble", "prob", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2 and "combined with ensemble 'logit'" in err and "--ensemble" in err
    assert not os.path.exists(os.path.join(tmp_path, "s2", "config.json"))


def test_distill_resume_refuses_changed_settings(two_teachers, tmp_path, capsys):
    d, tr, va, teachers = two_teachers
    conf = student_conf(tmp_path / "s.yaml")
    out = str(tmp_path / "student")
    base = ["distill", "--config", conf, "--train", tr, "--valid", va, "--out", out, "--quiet"]
    assert main(base + ["--teacher", teachers[0], "--alpha", "0.5"]) == 0
    assert os.path.isfile(os.path.join(out, "train_state.pt"))
    capsys.readouterr()
    rc = main(base + ["--teacher", teachers[0], "--alpha", "0.3", "--resume"])
    err = capsys.readouterr().err
    assert rc == 2 and "kd.alpha 0.5 -> 0.3" in err and "fresh --out" in err
    rc = main(base + ["--teacher", teachers[1], "--alpha", "0.5", "--resume"])
    err = capsys.readouterr().err
    assert rc == 2 and "teacher" in err and "Traceback" not in err
    # the same settings go on (a finished run: nothing to do)
    assert main(base + ["--teacher", teachers[0], "--alpha", "0.5", "--resume",
                        "--kd-impl", "reference"]) == 0
