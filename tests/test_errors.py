"""Error types: each meaning its own type, one base the CLI reports as one line with exit 2."""
from __future__ import annotations

import pytest
import torch

from asr_kd.cli import main
from asr_kd.device import pick_device
from asr_kd.errors import AsrKdError, DependencyError, DeviceError, InputError, TrainingError


def test_types_differ_by_meaning_and_share_the_base():
    for cls in (InputError, TrainingError, DeviceError, DependencyError):
        assert issubclass(cls, AsrKdError)
    assert not issubclass(TrainingError, InputError)
    assert not issubclass(DeviceError, InputError)
    assert not issubclass(DependencyError, InputError)
    from asr_kd.export import ExportCheckError
    assert issubclass(ExportCheckError, AsrKdError) and not issubclass(ExportCheckError, InputError)
    e = TrainingError("diverged", "out/train_state.pt", 3)
    assert str(e) == "out/train_state.pt:3: diverged" and e.detail == "diverged"


def test_missing_cuda_is_a_device_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError,
                       match="^--device cuda asked for, but no CUDA device is available$"):
        pick_device("cuda")
    assert pick_device("auto") == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")


def test_cli_reports_a_device_error_on_one_line(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    text = tmp_path / "t.txt"
    text.write_text("a b\n")
    rc = main(["ppl", "--model", str(tmp_path), "--text", str(text), "--device", "cuda"])
    assert rc == 2
    assert capsys.readouterr().err == (
        "asr-kd ppl: error: --device cuda asked for, but no CUDA device is available\n")


def test_cli_reports_a_training_error_on_one_line(monkeypatch, tmp_path, capsys):
    import asr_kd.cli.train_lm as train_lm

    def diverge(*a, **kw):
        raise TrainingError("20 non-finite steps in a row at epoch 1: lower the learning rate")

    monkeypatch.setattr(train_lm, "train", diverge)
    text = tmp_path / "t.txt"
    text.write_text("the cat runs\nthe dog sleeps\n")
    rc = main(["train-lm", "--train", str(text), "--valid", str(text), "--out",
               str(tmp_path / "m"), "--device", "cpu", "--quiet", "--epochs", "1"])
    assert rc == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == ("asr-kd train-lm: error: 20 non-finite steps in a row at epoch 1: "
                       "lower the learning rate")


def test_missing_onnxruntime_is_a_dependency_error(monkeypatch):
    import builtins

    from asr_kd import export

    real_import = builtins.__import__

    def no_ort(name, *a, **kw):
        if name == "onnxruntime":
            raise ImportError("no onnxruntime")
        return real_import(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_ort)
    with pytest.raises(DependencyError, match=r"^onnxruntime is not installed: pip install"):
        export._need_ort()
