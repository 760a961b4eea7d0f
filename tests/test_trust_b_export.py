"""Exported folders whose config.json does not describe their model.onnx are refused
on loading, naming the mismatch, instead of failing inside onnxruntime."""
from __future__ import annotations

import json

import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from asr_kd.cli import main  # noqa: E402
from test_export import make_model_dir  # noqa: E402  (tests/ is on sys.path)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export_shapes")
    make_model_dir(root / "lm")
    assert main(["export", "--model", str(root / "lm"), "--format", "int8",
                 "--out", str(root / "int8")]) == 0
    (root / "text").write_text("w1 w2 w3\nw4 w5\n")
    return root


@pytest.mark.parametrize("key,value,named", [
    ("hidden_dim", 64, "hidden_dim 64"), ("num_layers", 3, "num_layers 3")])
def test_config_disagreeing_with_graph_is_one_line(exported, tmp_path, capsys, key, value, named):
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(exported / "int8", bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["model"][key] = value
    (bad / "config.json").write_text(json.dumps(cfg))
    capsys.readouterr()
    assert main(["ppl", "--model", str(bad), "--text", str(exported / "text")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith("asr-kd ppl: error: ") and str(bad / "model.onnx") in err
    assert named in err and "(2, batch, 48)" in err


def test_matching_config_still_loads(exported, capsys):
    assert main(["ppl", "--model", str(exported / "int8"), "--text",
                 str(exported / "text")]) == 0
