"""A model folder is never destroyed by a write of another kind, a kill, or a second writer.

* ``export --out`` a trained model folder, and ``train-lm`` / ``distill --out`` an
  exported one, are refused by name (exit 2), the folder byte for byte as it was;
* an export replaces an earlier one whole: killed after any of its renames
  (deterministic, ``faultkill``), the folder is the earlier export or the new one,
  never a mix; no staging folder is left in the system temp folder, and the next
  export removes the killed one's staging folder beside ``--out``;
* a second writer of the same folder is refused while the first holds its lock.
"""
from __future__ import annotations

import os
import tempfile

import pytest
import torch

import faultkill as fk
import killharness as kh
from asr_kd.cli import main
from asr_kd.modeldir import save_model
from asr_kd.models import LMConfig, LstmLM
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")


def snapshot(folder) -> dict[str, bytes]:
    """Every file under ``folder`` (hidden ones too) with its bytes."""
    out = {}
    for d, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(d, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = fh.read()
    return out


def make_model(path, words, seed=0):
    torch.manual_seed(seed)
    tok = WordVocab(["<s>", "</s>", "<unk>"] + words)
    save_model(LstmLM(LMConfig(vocab_size=tok.size, embed_dim=8, hidden_dim=8, num_layers=1)),
               tok, str(path))
    return str(path)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    a = make_model(root / "a", [f"a{i}" for i in range(20)], seed=1)
    b = make_model(root / "b", [f"b{i}" for i in range(30)], seed=2)
    return root, a, b


def error_line(capsys, command):
    err = capsys.readouterr().err.strip().splitlines()
    assert err and err[-1].startswith(f"asr-kd {command}: error: "), err
    return err[-1]


def test_export_refuses_a_trained_model_folder(models, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    _, a, b = models
    trained = make_model(tmp_path / "trained", ["x", "y"])
    before = snapshot(trained)
    assert main(["export", "--model", b, "--format", "onnx", "--out", trained]) == 2
    line = error_line(capsys, "export")
    assert trained in line and "holds a trained model" in line and "orphan" in line
    assert snapshot(trained) == before
    # a folder of a killed training run (checkpoint only) is a trained model too
    ckpt = tmp_path / "killed_training"
    ckpt.mkdir()
    (ckpt / "train_state.pt").write_bytes(b"state")
    assert main(["export", "--model", b, "--format", "onnx", "--out", str(ckpt)]) == 2
    assert "holds a trained model" in error_line(capsys, "export")
    assert sorted(os.listdir(ckpt)) == ["train_state.pt"]


@pytest.mark.parametrize("command", ["train-lm", "distill"])
@pytest.mark.parametrize("resume", [False, True])
def test_training_refuses_an_exported_folder(models, tmp_path, capsys, command, resume):
    pytest.importorskip("onnxruntime")
    root, a, _ = models
    ws = kh.make_workspace(str(tmp_path / "ws"), scale=0.1)
    exported = str(tmp_path / "exported")
    assert main(["export", "--model", a, "--format", "onnx", "--out", exported]) == 0
    before = snapshot(exported)
    argv = [command, "--config", ws.config, "--train", ws.train, "--valid", ws.valid,
            "--out", exported, "--quiet", "--device", "cpu"]
    if command == "distill":
        argv += ["--teacher", ws.teacher]
    capsys.readouterr()
    assert main(argv + (["--resume"] if resume else [])) == 2
    line = error_line(capsys, command)
    assert exported in line and "holds an exported model" in line
    assert snapshot(exported) == before  # not even a log file


def test_export_replaces_an_earlier_export_whole_and_refuses_foreign_files(models, tmp_path,
                                                                          capsys):
    pytest.importorskip("onnxruntime")
    _, a, b = models
    out = str(tmp_path / "out")
    assert main(["export", "--model", a, "--format", "onnx", "--out", out]) == 0
    assert main(["export", "--model", b, "--format", "onnx", "--out", out]) == 0
    ref = str(tmp_path / "ref_b")
    assert main(["export", "--model", b, "--format", "onnx", "--out", ref]) == 0
    assert snapshot(out) == snapshot(ref)
    assert sorted(os.listdir(tmp_path)) == ["out", "ref_b"]  # no staging, no lock file left
    with open(os.path.join(out, "notes.txt"), "w") as f:
        f.write("mine")
    before = snapshot(out)
    capsys.readouterr()
    assert main(["export", "--model", a, "--format", "onnx", "--out", out]) == 2
    assert "notes.txt" in error_line(capsys, "export")
    assert snapshot(out) == before


@pytest.mark.slow  # faultkill: killed at every step
def test_killed_export_over_an_earlier_one_leaves_it_or_the_new_one(models, tmp_path,
                                                                    monkeypatch):
    pytest.importorskip("onnxruntime")
    _, a, b = models
    refs = {}
    for name, src in (("a", a), ("b", b)):
        assert main(["export", "--model", src, "--format", "onnx",
                     "--out", str(tmp_path / f"ref_{name}")]) == 0
        refs[name] = snapshot(tmp_path / f"ref_{name}")
    assert refs["a"] != refs["b"]
    systmp = tmp_path / "systmp"
    systmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(systmp))
    work = tmp_path / "work"
    work.mkdir()
    out = str(work / "out")
    argv = ["export", "--model", b, "--format", "onnx", "--out", out]
    seen = []

    def check(k):
        now = snapshot(out)
        state = "a" if now == refs["a"] else "b" if now == refs["b"] else None
        assert state, f"kill after rename {k}: {out} is neither export: {sorted(now)}"
        seen.append(state)
        assert os.listdir(systmp) == [], f"kill after rename {k}: left in the temp folder"
        # the same export again finishes, and removes the killed one's staging folder
        assert fk.run_killed_after(argv, None) == 0
        assert snapshot(out) == refs["b"]
        assert sorted(os.listdir(work)) == ["out"], f"kill after rename {k}: leftovers"
        assert fk.run_killed_after(["export", "--model", a, "--format", "onnx",
                                    "--out", out], None) == 0  # the earlier one, again

    assert main(["export", "--model", a, "--format", "onnx", "--out", out]) == 0
    kills = fk.kill_at_every_step(argv, check)
    assert kills >= 2 and seen[0] == "a" and seen[-1] == "b", seen


def test_second_writer_of_a_folder_is_refused(models, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from asr_kd.fileio import output_lock

    _, a, _ = models
    out = str(tmp_path / "out")
    ws = kh.make_workspace(str(tmp_path / "ws"), scale=0.1)
    student = str(tmp_path / "student")
    with output_lock(out), output_lock(student):
        assert main(["export", "--model", a, "--format", "onnx", "--out", out]) == 2
        line = error_line(capsys, "export")
        assert out in line and f"(pid {os.getpid()})" in line and "writing" in line
        assert main(["train-lm", "--config", ws.config, "--train", ws.train, "--valid",
                     ws.valid, "--out", student, "--quiet", "--device", "cpu"]) == 2
        assert "(pid" in error_line(capsys, "train-lm")
    assert not os.path.exists(out) and not os.path.exists(student)
    assert main(["export", "--model", a, "--format", "onnx", "--out", out]) == 0
