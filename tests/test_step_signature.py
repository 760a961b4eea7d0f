"""recipes/utils/step_signature.py: what a recipe step's sentinel records."""
from __future__ import annotations

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_spec = importlib.util.spec_from_file_location(
    "step_signature", os.path.join(ROOT, "recipes", "utils", "step_signature.py"))
sig = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sig)


def test_sign_keeps_options_and_inputs_not_runner_outputs_or_threads(tmp_path):
    text = tmp_path / "train.txt"
    text.write_text("a b c\n")
    model = tmp_path / "teacher"
    model.mkdir()
    (model / "model.safetensors").write_bytes(b"x" * 10)
    (model / "train.log").write_text("noise")
    out = tmp_path / "student"
    out.mkdir()
    (out / "config.json").write_text("{}")
    words = ["../utils/run_local.sh", str(tmp_path / "x.log"), "asr-kd", "distill", "--train",
             str(text), "--teacher", str(model), "--out", str(out), "--trust", "none",
             "--threads", "2", "--resume", "--quiet"]
    lines = sig.sign(words)
    assert lines[0] == "arg asr-kd"
    assert "arg --trust" in lines and "arg none" in lines
    assert not any(w in ln for ln in lines for w in ("--threads", "--resume", "--quiet",
                                                         "run_local", "x.log"))
    ins = [ln for ln in lines if ln.startswith("in ")]
    assert any(ln.startswith(f"in {text}\tmd5:") for ln in ins)
    assert any(ln.startswith(f"in {model}\tmodel.safetensors:md5:") for ln in ins)
    assert not any("train.log" in ln or str(out) in ln for ln in ins)  # logs, outputs
    # The same bytes written again are the same input; the thread count is not an option.
    text.write_text("a b c\n")
    assert sig.sign(words[:-4] + ["--threads", "1"]) == lines
    text.write_text("a b d\n")
    changed = sig.sign(words)
    assert changed != lines
    assert sig.diff(lines, changed) == f"inputs changed: {text}"


def test_diff_names_the_changed_option():
    a = ["arg asr-kd", "arg distill", "arg --trust", "arg none", "arg --alpha", "arg 0.5"]
    b = ["arg asr-kd", "arg distill", "arg --trust", "arg margin", "arg --alpha", "arg 0.5",
         "arg --trust-k", "arg 5"]
    assert sig.diff(a, b) == "--trust none -> margin; --trust-k (unset) -> 5"
    assert sig.diff(a, a) == "no difference"


def test_words_only_without_asr_kd(tmp_path):
    f = tmp_path / "in.txt"
    f.write_text("x")
    assert sig.sign(["rescore_sharded", str(f), "--nbest", str(f)]) == [
        "arg rescore_sharded", f"arg {f}", "arg --nbest", f"arg {f}"]
