"""`asr-kd train-lm` and `asr-kd ppl` end to end on a tiny generated corpus."""
from __future__ import annotations

import csv
import json
import math
import random

import pytest
import torch

from asr_kd.cli import main
from asr_kd.modeldir import load_model, read_config
from asr_kd.models import score_sentences

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = ["the", "a", "cat", "dog", "bird", "runs", "eats", "sleeps", "fast", "now", "and"]


def corpus(n, seed):
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 7))) for _ in range(n)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    (d / "train.txt").write_text("\n".join(corpus(120, 0)) + "\n", encoding="utf-8")
    (d / "valid.txt").write_text("\n".join(corpus(20, 1)) + "\n", encoding="utf-8")
    (d / "conf.yaml").write_text("embed_dim: 16\nnum_layers: 1\nbatch_size: 8\n"
                                 "optimizer: adamw\nlr: 0.01\nepochs: 3\n", encoding="utf-8")
    return d


def train_args(d, out, *extra):
    return ["train-lm", "--config", str(d / "conf.yaml"), "--train", str(d / "train.txt"),
            "--valid", str(d / "valid.txt"), "--out", str(out), "--quiet", "--device", "cpu",
            *extra]


@pytest.fixture(scope="module")
def model_dir(data):
    out = data / "model"
    assert main(train_args(data, out, "--epochs", "1", "--hidden-dim", "16")) == 0
    return out


def one_line_error(capsys, prefix, logs_before=False):
    """The error is one line; train-lm may log progress lines before it."""
    err = capsys.readouterr().err
    lines = [ln for ln in err.split("\n") if ln]
    assert "Traceback" not in err
    if logs_before:
        assert all(" INFO " in ln or " WARNING " in ln for ln in lines[:-1]), err
        lines = lines[-1:]
    assert len(lines) == 1, err
    assert lines[0].startswith(prefix), err
    return lines[0]


def test_train_lm_cli(model_dir):
    cfg = read_config(str(model_dir))
    assert cfg["model"]["hidden_dim"] == 16 and cfg["model"]["embed_dim"] == 16
    assert cfg["model"]["num_layers"] == 1
    assert cfg["train"]["epochs"] == 1 and cfg["train"]["optimizer"] == "adamw"
    assert cfg["kind"] == "lm" and cfg["best_epoch"] == 1
    assert cfg["tokenizer"]["size"] == len(WORDS) + 3
    with open(model_dir / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and float(rows[0]["valid_ppl"]) == cfg["valid_ppl"]
    assert (model_dir / "train.log").is_file()
    model, tok, _ = load_model(str(model_dir))
    assert model.num_params() == cfg["num_params"]


def test_train_lm_prints_summary_and_resumes(data, tmp_path, capsys):
    out = tmp_path / "m"
    assert main(train_args(data, out, "--epochs", "1", "--hidden_dim=8", "--seed", "3")) == 0
    assert "done: 1 epochs" in capsys.readouterr().out
    # --resume with more epochs continues from the checkpoint
    assert main(train_args(data, out, "--epochs", "2", "--hidden-dim", "8", "--seed", "3",
                           "--resume")) == 0
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    # the same as two epochs in one go
    out2 = tmp_path / "m2"
    assert main(train_args(data, out2, "--epochs", "2", "--hidden-dim", "8", "--seed", "3")) == 0
    a, _, _ = load_model(str(out))
    b, _, _ = load_model(str(out2))
    with open(out2 / "metrics.csv", newline="") as f:
        rows2 = list(csv.DictReader(f))
    assert [r["valid_ppl"] for r in rows] == [r["valid_ppl"] for r in rows2]
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


@pytest.mark.parametrize("args,what", [
    (["--hiden-dim", "16"], "unknown option --hiden-dim"),
    (["--hidden-dim"], "needs a value"),
    (["--batching", "chunks"], "batching must be one of"),
    (["--tie", "yes", "--hidden-dim", "8"], "tie=yes"),
    (["--lr", "-1"], "lr must be > 0"),
    (["stray"], "unexpected argument"),
])
def test_train_lm_bad_options(data, tmp_path, capsys, args, what):
    rc = main(train_args(data, tmp_path / "m", "--epochs", "1", *args))
    assert rc == 2
    assert what in one_line_error(capsys, "asr-kd train-lm: error:", logs_before=True)
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_train_lm_bad_config_and_inputs(data, tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("hidden_dim: 8\nhiden_dim: 9\n", encoding="utf-8")
    args = ["train-lm", "--config", str(bad), "--train", str(data / "train.txt"),
            "--valid", str(data / "valid.txt"), "--out", str(tmp_path / "m"), "--quiet"]
    assert main(args) == 2
    msg = one_line_error(capsys, "asr-kd train-lm: error:")
    assert str(bad) in msg and "hiden_dim" in msg
    bad.write_text("hidden_dim: [8\n", encoding="utf-8")
    assert main(args) == 2
    assert f"{bad}:" in one_line_error(capsys, "asr-kd train-lm: error:")
    args[2] = str(tmp_path / "missing.yaml")
    assert main(args) == 2
    assert "missing.yaml" in one_line_error(capsys, "asr-kd train-lm: error:")
    # a missing training text and a corrupt checkpoint on --resume name the file
    missing = tmp_path / "no-train.txt"
    assert main(["train-lm", "--train", str(missing), "--valid", str(data / "valid.txt"),
                 "--out", str(tmp_path / "m"), "--quiet"]) == 2
    assert str(missing) in one_line_error(capsys, "asr-kd train-lm: error:")
    out = tmp_path / "r"
    out.mkdir()
    (out / "train_state.pt").write_bytes(b"\x00garbage")
    assert main(train_args(data, out, "--epochs", "1", "--resume")) == 2
    msg = one_line_error(capsys, "asr-kd train-lm: error:", logs_before=True)
    assert str(out / "train_state.pt") in msg
    # stream batching with more streams than the validation text can fill
    assert main(train_args(data, tmp_path / "s", "--batching", "stream", "--batch-size",
                           "500")) == 2
    assert "too small" in one_line_error(capsys, "asr-kd train-lm: error:", logs_before=True)


def _ppl_json(capsys, model_dir, text, *extra):
    assert main(["ppl", "--model", str(model_dir), "--text", str(text), "--json", "--quiet",
                 "--device", "cpu", *extra]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_ppl_json_sentence_and_stream(model_dir, tmp_path, capsys):
    sents = ["the cat runs", "a dog", "zebra the unicorn eats", "now"]
    text = tmp_path / "t.txt"
    text.write_text("\n".join(sents) + "\n\n", encoding="utf-8")
    model, tok, _ = load_model(str(model_dir))
    n_tokens = sum(len(s.split()) for s in sents) + len(sents)      # words + one </s> each

    res = {m: _ppl_json(capsys, model_dir, text, "--mode", m) for m in ("sentence", "stream")}
    for mode, r in res.items():
        assert set(r) >= {"ppl", "tokens", "oov", "sentences", "mode"}
        assert r["mode"] == mode and r["tokens"] == n_tokens == 14
        assert r["oov"] == 2 and r["sentences"] == 4
        assert 1 < r["ppl"] < 1000

    # sentence mode: exp of the mean of the sentence scores (fresh state per sentence)
    scores = score_sentences(model, [tok.encode(s) for s in sents], tok.bos, tok.eos)
    assert res["sentence"]["ppl"] == pytest.approx(math.exp(-sum(scores) / n_tokens), rel=1e-4)
    # stream mode: one pass over <s> s1 </s> s2 </s> ..., state carried
    stream = [tok.bos]
    for s in sents:
        stream += tok.encode(s) + [tok.eos]
    x = torch.tensor([stream[:-1]])
    y = torch.tensor([stream[1:]])
    with torch.no_grad():
        lp, _ = model.token_logprobs(x, y)
    assert res["stream"]["ppl"] == pytest.approx(math.exp(-float(lp.sum()) / n_tokens), rel=1e-4)
    assert res["stream"]["ppl"] != pytest.approx(res["sentence"]["ppl"], rel=1e-6)

    # Kaldi text is read by its words only; the default output is one human line
    kaldi = tmp_path / "text"
    kaldi.write_text("".join(f"utt{i:03d} {s}\n" for i, s in enumerate(sents)), encoding="utf-8")
    assert _ppl_json(capsys, model_dir, kaldi, "--mode", "sentence") == res["sentence"]
    assert main(["ppl", "--model", str(model_dir), "--text", str(text), "--quiet",
                 "--device", "cpu"]) == 0
    out = capsys.readouterr().out.strip()
    assert "stream ppl" in out and "14 tokens" in out and "\n" not in out


def test_ppl_long_text_stream_windows(model_dir, tmp_path, capsys):
    """Longer than one bptt window (256): windows must chain without losing tokens."""
    from asr_kd.perplexity import perplexity

    model, tok, _ = load_model(str(model_dir))
    sents = corpus(150, 5)
    a = perplexity(model, tok, sents, "stream", bptt=256)
    b = perplexity(model, tok, sents, "stream", bptt=7)
    n = sum(len(s.split()) + 1 for s in sents)
    assert a["tokens"] == b["tokens"] == n > 256
    assert a["ppl"] == pytest.approx(b["ppl"], rel=1e-5)
    c = perplexity(model, tok, sents, "sentence", batch_size=7)
    d = perplexity(model, tok, sents, "sentence", batch_size=64)
    assert c["tokens"] == n and c["ppl"] == pytest.approx(d["ppl"], rel=1e-5)
    with pytest.raises(ValueError):
        perplexity(model, tok, sents, "chunks")


def test_ppl_errors(model_dir, tmp_path, capsys):
    assert main(["ppl", "--model", str(model_dir), "--text", str(tmp_path / "none.txt")]) == 2
    assert "none.txt" in one_line_error(capsys, "asr-kd ppl: error:")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    assert main(["ppl", "--model", str(model_dir), "--text", str(empty)]) == 2
    assert str(empty) in one_line_error(capsys, "asr-kd ppl: error:")
    assert main(["ppl", "--model", str(tmp_path / "nomodel"), "--text", str(empty)]) == 2
    assert "nomodel" in one_line_error(capsys, "asr-kd ppl: error:")


def test_ppl_of_an_ensemble(model_dir, tmp_path, capsys):
    """Several --model folders: the ensemble's perplexity (identical members: the member's)."""
    text = tmp_path / "t.txt"
    text.write_text("the cat runs\na dog\n", encoding="utf-8")
    for mode in ("sentence", "stream"):
        one = _ppl_json(capsys, model_dir, text, "--mode", mode)
        assert main(["ppl", "--model", str(model_dir), str(model_dir), "--text", str(text),
                     "--json", "--quiet", "--device", "cpu", "--mode", mode,
                     "--ensemble", "logit"]) == 0
        two = json.loads(capsys.readouterr().out)
        assert two["ppl"] == pytest.approx(one["ppl"], rel=1e-5) and two["tokens"] == one["tokens"]
