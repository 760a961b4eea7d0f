"""Training commands refuse an unusable KD loss implementation before any work, and a
failed train-lm / distill leaves no --out folder holding only a log."""
from __future__ import annotations

import os

import pytest
import torch

import asr_kd.cli.distill
from asr_kd.cli import main
from asr_kd.modeldir import save_model
from asr_kd.models import LMConfig, LstmLM
from asr_kd.vocab import WordVocab
from test_distill import WORDS, make_text  # tests/ is on sys.path


@pytest.fixture
def setup(tmp_path, monkeypatch):
    tr, va = make_text(tmp_path / "train.txt", 20, 0), make_text(tmp_path / "valid.txt", 5, 1)
    torch.manual_seed(0)
    vocab = WordVocab(["<s>", "</s>", "<unk>"] + WORDS)
    save_model(LstmLM(LMConfig(vocab_size=vocab.size, embed_dim=8, hidden_dim=8, num_layers=1)),
               vocab, str(tmp_path / "teacher"))

    def no_training(*a, **k):
        raise AssertionError("training started")

    monkeypatch.setattr(asr_kd.cli.distill, "train", no_training)
    return tmp_path, ["--train", tr, "--valid", va, "--teacher", str(tmp_path / "teacher"),
                      "--epochs", "1", "--hidden-dim", "8", "--embed-dim", "8", "--quiet",
                      "--device", "cpu"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err, err
    return err


def test_triton_on_cpu_refused_before_training(setup, capsys):
    root, args = setup
    out = root / "student"
    assert main(["distill", "--out", str(out), "--kd-impl", "triton"] + args) == 2
    err = _one_error_line(capsys)
    assert err.startswith("asr-kd distill: error: ") and "CUDA" in err and "--kd-impl torch" in err
    assert not out.exists()


def test_triton_from_config_refused_before_training(setup, capsys):
    root, args = setup
    conf = root / "student.yaml"
    conf.write_text("kd:\n  impl: triton\n")
    out = root / "student"
    assert main(["distill", "--config", str(conf), "--out", str(out)] + args) == 2
    assert "CUDA" in _one_error_line(capsys)
    assert not out.exists()


def test_failed_train_lm_leaves_no_log_only_folder(tmp_path, capsys):
    va = make_text(tmp_path / "valid.txt", 5, 1)
    out = tmp_path / "lm"
    assert main(["train-lm", "--train", str(tmp_path / "missing.txt"), "--valid", va,
                 "--out", str(out), "--quiet"]) == 2
    assert "missing.txt" in _one_error_line(capsys)
    assert not out.exists()
    # a folder the user made stays, empty; one with other files is left as it was
    out.mkdir()
    assert main(["train-lm", "--train", str(tmp_path / "missing.txt"), "--valid", va,
                 "--out", str(out), "--quiet"]) == 2
    assert os.listdir(out) == []
    (out / "notes.txt").write_text("mine\n")
    assert main(["train-lm", "--train", str(tmp_path / "missing.txt"), "--valid", va,
                 "--out", str(out), "--quiet"]) == 2
    assert sorted(os.listdir(out)) == ["notes.txt", "train.log"]


def test_failed_distill_leaves_no_log_only_folder(setup, capsys):
    root, args = setup
    out = root / "student"
    assert main(["distill", "--out", str(out), "--alpha", "1.5"] + args) == 2
    assert "--alpha" in _one_error_line(capsys)
    assert not out.exists()
