"""Bounded inputs, one-line failures: size caps on lines and documents (gzip bombs,
/dev/zero, YAML alias bombs, deep JSON, FIFOs), bounded consensus alignment and feature
padding, --threads limits and messages that name the real cause."""
from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import pytest

from asr_kd.cli import main
from asr_kd.errors import AsrKdError, InputError
from asr_kd.nbest.model import Hyp, NBest, Utterance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIMIT = 1 << 30   # address space of the limited subprocesses: 1 GiB


def _cli(args, timeout=60, limit=LIMIT):
    """``asr-kd ARGS`` in a subprocess limited to ``limit`` bytes of address space:
    (exit status, stdout, stderr)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS="1", ASR_KD_PROGRESS_SECONDS="0")
    p = subprocess.run([sys.executable, "-m", "asr_kd", *args], capture_output=True,
                       text=True, timeout=timeout, env=env, preexec_fn=cap)
    return p.returncode, p.stdout, p.stderr


def _one_line_error(rc, err, *want):
    assert rc == 2, err[-2000:]
    assert "Traceback" not in err and err.count("error:") == 1, err[-2000:]
    line = next(x for x in err.splitlines() if "error:" in x)
    assert len(line) < 600
    for w in want:
        assert w in line, line


@pytest.fixture
def plain(tmp_path):
    with open(tmp_path / "dev.jsonl", "w") as f:
        for i in range(5):
            f.write(json.dumps({"utt": f"u{i}", "ref": "a b", "hyps": [
                {"text": "a b", "scores": {"am": -1.0 - i}},
                {"text": "a c", "scores": {"am": -2.0}}]}) + "\n")
    return str(tmp_path / "dev.jsonl")


def _zero_bomb(path, gib=2):
    """A gzip file of ``gib`` GiB of zero bytes (repeated gzip members: a few MB on disk)."""
    member = gzip.compress(b"\0" * (1 << 24), 1)
    with open(path, "wb") as f:
        for _ in range(gib * 64):
            f.write(member)
    return str(path)


# ------------------------------------------------------------ 10: size caps --

def test_dev_zero_as_references_is_one_line_under_a_memory_limit(plain):
    rc, _, err = _cli(["score", "--nbest", plain, "--weight", "am=1", "--ref", "/dev/zero"])
    _one_line_error(rc, err, "/dev/zero:1", "longer than 64 MiB", "ASR_KD_MAX_LINE_MB")


@pytest.mark.parametrize("opt", ["--weights", "--noise-vocab"])
def test_gzip_bomb_as_weights_or_noise_vocab(plain, tmp_path, opt):
    bomb = _zero_bomb(tmp_path / "bomb.gz")
    args = ["score", "--nbest", plain, opt, bomb] + (["--weight", "am=1"] if opt != "--weights"
                                                     else [])
    rc, _, err = _cli(args)
    _one_line_error(rc, err, bomb, "64 MiB")


def test_gzip_bomb_as_jsonl_nbest(tmp_path):
    bomb = _zero_bomb(tmp_path / "b.jsonl.gz")
    rc, _, err = _cli(["score", "--nbest", bomb, "--weight", "am=1"])
    _one_line_error(rc, err, bomb, "line longer than")


def test_json_nbest_document_cap_is_named_and_settable(tmp_path, monkeypatch, capsys):
    doc = tmp_path / "big.json"
    doc.write_text(json.dumps([{"input": ["a b"] * 2, "output": "a b"}] * 40000))  # ~1.1 MB
    monkeypatch.setenv("ASR_KD_MAX_DOC_MB", "1")
    assert main(["score", "--nbest", str(doc), "--weight", "rank=1"]) == 2
    err = capsys.readouterr().err
    assert "larger than 1 MiB" in err and "ASR_KD_MAX_DOC_MB" in err
    monkeypatch.setenv("ASR_KD_MAX_DOC_MB", "2")
    assert main(["score", "--nbest", str(doc), "--weight", "rank=1"]) == 0


def test_line_cap_is_settable(tmp_path, monkeypatch, capsys):
    ref = tmp_path / "ref"
    ref.write_text("u0 " + "a " * 600_000 + "\n")   # a 1.2 MB line
    nb = tmp_path / "n.jsonl"
    nb.write_text(json.dumps({"utt": "u0", "hyps": [{"text": "a", "scores": {}}]}) + "\n")
    monkeypatch.setenv("ASR_KD_MAX_LINE_MB", "1")
    assert main(["score", "--nbest", str(nb), "--weight", "rank=1", "--ref", str(ref)]) == 2
    assert f"{ref}:1: line longer than 1 MiB" in capsys.readouterr().err
    monkeypatch.setenv("ASR_KD_MAX_LINE_MB", "2")
    assert main(["score", "--nbest", str(nb), "--weight", "rank=1", "--ref", str(ref)]) == 0


@pytest.mark.slow  # train-lm in a subprocess
def test_yaml_alias_bomb_is_refused_without_expanding_it(tmp_path):
    # one known key whose value holds 9^9 strings once the aliases are expanded
    levels = ["&a [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    (tmp_path / "c.yaml").write_text("batching: [" + ", ".join(levels) + "]\n")
    (tmp_path / "t.txt").write_text("a b\n")
    t = str(tmp_path / "t.txt")
    rc, out, err = _cli(["train-lm", "--config", str(tmp_path / "c.yaml"), "--train", t,
                         "--valid", t, "--out", str(tmp_path / "m")], timeout=120)
    assert len(err) < 5000
    _one_line_error(rc, err, "c.yaml", "alias")


def test_deep_json_weights_are_one_line(plain, tmp_path, capsys):
    w = tmp_path / "w.json"
    w.write_text("[" * 200_000)
    assert main(["score", "--nbest", plain, "--weights", str(w)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nested too deeply" in err and str(w) in err


def test_a_fifo_as_nbest_is_refused_at_once(tmp_path):
    fifo = tmp_path / "nbest.fifo"
    os.mkfifo(fifo)
    rc, _, err = _cli(["score", "--nbest", str(fifo), "--weight", "am=1"], timeout=30)
    _one_line_error(rc, err, str(fifo), "not a regular file")


def test_a_fifo_as_weights_is_refused_at_once(plain, tmp_path):
    fifo = tmp_path / "w.fifo"
    os.mkfifo(fifo)
    rc, _, err = _cli(["score", "--nbest", plain, "--weights", str(fifo)], timeout=30)
    _one_line_error(rc, err, str(fifo), "not a regular file")


@pytest.mark.parametrize("n", ["100000000000000000000", "1000000"])
def test_absurd_thread_counts_are_refused(plain, n, capsys):
    with pytest.raises(SystemExit) as e:
        main(["score", "--nbest", plain, "--weight", "am=1", "--threads", n])
    assert e.value.code == 2
    assert "at most 1024" in capsys.readouterr().err


# ------------------------------------------ 11: bounded alignment and padding --

def test_consensus_refuses_document_length_hypotheses(tmp_path, capsys):
    words = [f"w{i % 50}" for i in range(2100)]
    nb = tmp_path / "long.jsonl"
    nb.write_text(json.dumps({"utt": "doc1", "ref": "w1", "hyps": [
        {"text": " ".join(words), "scores": {"am": -1.0}},
        {"text": " ".join(reversed(words)), "scores": {"am": -2.0}}]}) + "\n")
    assert main(["score", "--nbest", str(nb), "--weight", "am=1", "--decode", "consensus",
                 "--posterior-scale", "1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'doc1'" in err and "consensus" in err and "cells" in err


def test_consensus_tuning_refuses_document_length_hypotheses(tmp_path, capsys):
    words = [f"w{i % 50}" for i in range(2100)]
    nb = tmp_path / "long.jsonl"
    nb.write_text("".join(json.dumps({"utt": f"doc{u}", "ref": " ".join(words[:2000]), "hyps": [
        {"text": " ".join(words), "scores": {"am": -1.0 - u, "lm0": -2.0}},
        {"text": " ".join(words[:2000]), "scores": {"am": -2.0, "lm0": -1.0 - u}}]}) + "\n"
        for u in range(3)))
    out = tmp_path / "w.json"
    assert main(["tune", "--nbest", str(nb), "--scores", "am,lm0", "--decode", "consensus",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "consensus decoding" in err and "cells" in err and "'doc" in err
    assert not out.exists()


def test_consensus_of_utterance_length_lists_still_runs(capsys, tmp_path):
    nb = tmp_path / "n.jsonl"
    nb.write_text("".join(json.dumps({"utt": f"u{i}", "ref": "a b c", "hyps": [
        {"text": "a b c", "scores": {"am": -1.0}}, {"text": "a x c", "scores": {"am": -1.5}}]})
        + "\n" for i in range(3)))
    assert main(["score", "--nbest", str(nb), "--weight", "am=1", "--decode", "consensus",
                 "--posterior-scale", "1"]) == 0
    assert "%WER 0.00" in capsys.readouterr().out


@pytest.mark.slow  # scores a huge list in a subprocess
def test_one_huge_list_does_not_pad_the_whole_set(tmp_path):
    """1500 one-hypothesis lists and one of 50,000: padding asks for 675 MB of features, under a
    1 GiB address-space limit a MemoryError before; now one line naming the list."""
    nb = tmp_path / "n.jsonl"
    with open(nb, "w") as f:
        f.write(json.dumps({"utt": "huge", "ref": "a", "hyps": [
            {"text": "a", "scores": {"am": -float(k)}} for k in range(50_000)]}) + "\n")
        for i in range(1500):
            f.write(json.dumps({"utt": f"u{i}", "ref": "a",
                                "hyps": [{"text": "a", "scores": {"am": -1.0}}]}) + "\n")
    rc, _, err = _cli(["score", "--nbest", str(nb), "--weight", "am=1"], timeout=120)
    _one_line_error(rc, err, "'huge'", "50000 hypotheses", "GiB")


def test_check_padding_allows_dense_sets():
    from asr_kd.scoring import pack_features

    nb = NBest([Utterance(f"u{i}", [Hyp("a", {"am": -1.0})] * 3) for i in range(10)])
    feats, mask = pack_features(nb, ["am"], True)
    assert feats.shape == (10, 3, 2) and mask.all()


def test_export_check_text_lines_are_cut(tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import torch

    from asr_kd import export as ex
    from asr_kd.modeldir import save_model
    from asr_kd.models import LMConfig, LstmLM
    from asr_kd.vocab import WordVocab

    torch.manual_seed(0)
    words = [f"w{i}" for i in range(20)]
    save_model(LstmLM(LMConfig(vocab_size=23, embed_dim=8, hidden_dim=8, num_layers=1)).eval(),
               WordVocab(["<s>", "</s>", "<unk>"] + words), str(tmp_path / "lm"))
    seen = []

    def spy(ref, other, sentences, bos, eos):
        seen.extend(len(s) for s in sentences)
        raise InputError("stop here")

    monkeypatch.setattr(ex, "compare_models", spy)
    with pytest.raises(InputError, match="stop here"):
        ex.export_model(str(tmp_path / "lm"), "onnx", str(tmp_path / "o"),
                        check_text=[" ".join(words * 5000), "w1 w2"])
    assert seen == [100, 2]


# ------------------------------------------------------------ 13: oversubscription --

def test_more_threads_than_cores_warns(plain, capsys):
    from asr_kd.threads import available_cores

    n = available_cores() + 1
    assert main(["score", "--nbest", plain, "--weight", "am=1", "--threads", str(n)]) == 0
    err = capsys.readouterr().err
    assert f"warning: --threads {n} is more than the {available_cores()} core" in err
    assert main(["score", "--nbest", plain, "--weight", "am=1", "--threads", "1"]) == 0
    assert "warning" not in capsys.readouterr().err


# ----------------------------------------------------------- 14: the right cause --

def test_out_of_memory_while_loading_weights_is_not_called_corrupt(tmp_path, monkeypatch):
    import safetensors

    from asr_kd import modeldir

    (tmp_path / "model.safetensors").write_bytes(b"x")

    class Oom:
        def __init__(self, *a, **k):
            raise safetensors.SafetensorError("Error while mmap: Cannot allocate memory "
                                              "(os error 12)")

    monkeypatch.setattr(safetensors, "safe_open", Oom)
    with pytest.raises(AsrKdError) as e:
        modeldir._read_weights(str(tmp_path / "model.safetensors"))
    assert "corrupt" not in str(e.value) and "out of memory" in str(e.value)


def test_onnxruntime_that_fails_to_load_is_not_called_missing(monkeypatch):
    import builtins

    from asr_kd import export as ex

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "onnxruntime":
            raise ImportError("libonnxruntime.so: failed to map segment from shared object")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    monkeypatch.delitem(sys.modules, "onnxruntime", raising=False)
    with pytest.raises(AsrKdError) as e:
        ex._need_ort()
    assert "not installed" not in str(e.value) and "cannot be loaded" in str(e.value)


def test_nan_posterior_scale_in_a_weights_file_names_the_file(plain, tmp_path, capsys):
    w = tmp_path / "w.json"
    w.write_text('{"am": 1, "decode": "consensus", "posterior_scale": NaN}')
    assert main(["score", "--nbest", plain, "--weights", str(w)]) == 2
    err = capsys.readouterr().err
    assert f"{w}: \"posterior_scale\"" in err and "--posterior-scale" not in err


def test_memory_error_anywhere_is_one_line(plain, monkeypatch, capsys):
    from asr_kd import scoring

    def boom(*a, **k):
        raise MemoryError()

    monkeypatch.setattr(scoring, "pick_best", boom)
    assert main(["score", "--nbest", plain, "--weight", "am=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of memory" in err
