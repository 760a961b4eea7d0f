"""The training loop: learning, exact resume, metrics, bad checkpoints, non-finite steps."""
from __future__ import annotations

import csv
import math
import os
import random

import pytest
import torch

from asr_kd.config import TrainConfig
from asr_kd.errors import AsrKdError, InputError
from asr_kd.models import LMConfig, LstmLM
from asr_kd.train import (CHECKPOINT_FILE, LMObjective, TrainingError, evaluate, make_batches,
                          train)
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")

DET = ["the", "a", "one", "every"]
NOUN = ["cat", "dog", "bird", "fish", "horse", "mouse"]
VERB = ["runs", "eats", "sleeps", "jumps", "sings"]
ADV = ["fast", "slowly", "now", "again", "today"]


def grammar(n, seed):
    """Sentences det noun verb [adv] [and det noun verb]: easy to learn, V = 24."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        s = [rng.choice(DET), rng.choice(NOUN), rng.choice(VERB)]
        if rng.random() < 0.5:
            s.append(rng.choice(ADV))
        if rng.random() < 0.3:
            s += ["and", rng.choice(DET), rng.choice(NOUN), rng.choice(VERB)]
        out.append(" ".join(s))
    return out


TRAIN_S, VALID_S = grammar(160, 0), grammar(40, 1)
TOK = WordVocab.build(TRAIN_S)
TRAIN_IDS = [TOK.encode(s) for s in TRAIN_S]
VALID_IDS = [TOK.encode(s) for s in VALID_S]


def new_model(seed=1, dropout=0.0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=TOK.size, embed_dim=16, hidden_dim=16, num_layers=2,
               dropout=dropout)
    cfg.update(kw)
    return LstmLM(LMConfig(**cfg))


def tcfg(**kw):
    base = dict(batching="sentence", batch_size=8, bptt=10, epochs=2, optimizer="adamw",
                lr=0.05, lr_schedule="constant", eval_batch_size=32, clip=1.0)
    base.update(kw)
    return TrainConfig(**base)


def valid_ppl(model, cfg):
    nll, n = evaluate(model, make_batches(VALID_IDS, TOK, cfg, 0, train=False), torch.device("cpu"))
    return math.exp(nll / n)


def run(out, cfg, *, init_seed=1, dropout=0.0, objective=None, **kw):
    model = new_model(init_seed, dropout)
    hist = train(model, objective or LMObjective(), TOK, TRAIN_IDS, VALID_IDS, cfg, str(out),
                 seed=7, quiet=True, **kw)
    return model, hist


@pytest.mark.parametrize("batching", ["sentence", "stream"])
def test_training_lowers_validation_loss(tmp_path, batching):
    cfg = tcfg(batching=batching, epochs=3)
    before = valid_ppl(new_model(), cfg)
    assert before > TOK.size * 0.7               # an untrained model is near uniform
    model, hist = run(tmp_path, cfg)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    after = valid_ppl(model, cfg)
    assert after < 0.5 * before
    assert hist[-1]["valid_ppl"] == pytest.approx(after, rel=1e-3)
    assert hist[-1]["valid_ppl"] < hist[0]["valid_ppl"]
    assert all(h["skipped_steps"] == 0 and h["tokens"] > 0 for h in hist)
    # sentence mode predicts every word and </s>; stream mode drops < B tokens
    ntok = sum(len(s) + 1 for s in TRAIN_IDS)
    if batching == "sentence":
        assert hist[0]["tokens"] == ntok
    else:
        assert ntok - cfg.batch_size < hist[0]["tokens"] <= ntok
    for f in ("model.safetensors", "config.json", "words.txt", CHECKPOINT_FILE, "metrics.csv"):
        assert os.path.isfile(tmp_path / f), f


def test_metrics_csv_one_row_per_epoch(tmp_path):
    _, hist = run(tmp_path, tcfg(epochs=3))
    with open(tmp_path / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    for r, h in zip(rows, hist):
        assert float(r["valid_ppl"]) == pytest.approx(h["valid_ppl"])
        assert float(r["valid_ppl"]) > 1
        assert {"train_ppl", "lr", "tokens_per_s", "skipped_steps"} <= set(r)
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tmp-")]


def test_best_model_is_saved(tmp_path):
    from asr_kd.modeldir import load_model, read_config

    _, hist = run(tmp_path, tcfg(epochs=2))
    cfg = read_config(str(tmp_path))
    best = min(hist, key=lambda h: h["valid_ppl"])
    assert cfg["best_epoch"] == best["epoch"] and cfg["valid_ppl"] == best["valid_ppl"]
    assert cfg["train"]["epochs"] == 2 and cfg["seed"] == 7
    m, tok, _ = load_model(str(tmp_path))
    assert valid_ppl(m, tcfg()) == pytest.approx(best["valid_ppl"], rel=1e-3)


def _assert_same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def _strip_time(hist):
    return [{k: v for k, v in h.items() if k not in ("seconds", "tokens_per_s")} for h in hist]


RESUME_CASES = {
    # name: (config, stops)
    "sentence": (dict(batching="sentence", optimizer="sgd", lr=0.5, momentum=0.9,
                      lr_schedule="plateau"), [3, 9]),
    "stream": (dict(batching="stream", batch_size=8, bptt=7), [5, 11]),
    "sentence-ckpt": (dict(batching="sentence", checkpoint_every=4), [6]),
    "stream-ckpt": (dict(batching="stream", batch_size=8, bptt=7, checkpoint_every=4), [7]),
}


@pytest.mark.parametrize("case", list(RESUME_CASES))
def test_resume_gives_identical_weights(tmp_path, case):
    over, stops = RESUME_CASES[case]
    cfg = tcfg(epochs=2, **over)
    n_batches = len(make_batches(TRAIN_IDS, TOK, cfg, 7, train=True))
    assert all(0 < s < 2 * n_batches for s in stops) and n_batches not in stops
    full, full_hist = run(tmp_path / "full", cfg, dropout=0.3)

    out = tmp_path / "parts"
    for i, k in enumerate(stops):
        # interrupted runs: each call stops after k optimizer steps with a checkpoint;
        # a resumed call starts from a differently initialised model (weights come
        # from the checkpoint)
        model, _ = run(out, cfg, dropout=0.3, max_steps=k, init_seed=1 if i == 0 else 100 + k,
                       resume=i > 0)
        assert os.path.isfile(out / CHECKPOINT_FILE)
        with pytest.raises(AssertionError):
            _assert_same_weights(model, full)
    model, hist = run(out, cfg, dropout=0.3, resume=True, init_seed=99)
    _assert_same_weights(model, full)
    assert _strip_time(hist) == _strip_time(full_hist)
    assert (out / "model.safetensors").read_bytes() == (tmp_path / "full" / "model.safetensors").read_bytes()
    # the checkpoints agree too
    a = torch.load(out / CHECKPOINT_FILE, weights_only=True)
    b = torch.load(tmp_path / "full" / CHECKPOINT_FILE, weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])


class _Crash(RuntimeError):
    pass


class CrashAt(LMObjective):
    """Raise (like a killed process) when asked for the loss of call ``n``."""

    def __init__(self, n):
        self.n, self.calls = n, 0

    def loss(self, model, batch, state):
        self.calls += 1
        if self.calls == self.n:
            raise _Crash
        return super().loss(model, batch, state)


@pytest.mark.parametrize("batching", ["sentence", "stream"])
def test_crash_resumes_from_last_periodic_checkpoint(tmp_path, batching):
    cfg = tcfg(epochs=1, batching=batching, batch_size=8, checkpoint_every=3)
    full, _ = run(tmp_path / "full", cfg, dropout=0.3)
    out = tmp_path / "crash"
    with pytest.raises(_Crash):
        run(out, cfg, dropout=0.3, objective=CrashAt(6))
    ckpt = torch.load(out / CHECKPOINT_FILE, weights_only=True)
    assert ckpt["position"]["step_in_epoch"] == 3 and ckpt["position"]["global_step"] == 3
    obj = CrashAt(-1)
    model, hist = run(out, cfg, dropout=0.3, resume=True, objective=obj, init_seed=5)
    n_batches = len(make_batches(TRAIN_IDS, TOK, cfg, 7, train=True))
    assert obj.calls == n_batches - 3          # steps 4.. redone, 1..3 not
    _assert_same_weights(model, full)
    assert len(hist) == 1


def test_resume_without_state_starts_fresh_and_finished_run_is_a_no_op(tmp_path):
    cfg = tcfg(epochs=1)
    a, _ = run(tmp_path / "a", cfg)
    b, _ = run(tmp_path / "b", cfg, resume=True)
    _assert_same_weights(a, b)
    obj = CrashAt(-1)
    c, hist = run(tmp_path / "b", cfg, resume=True, objective=obj, init_seed=3)
    assert obj.calls == 0 and len(hist) == 1
    _assert_same_weights(a, c)


@pytest.mark.parametrize("content", [b"", b"garbage, not a checkpoint", None])
def test_corrupt_train_state(tmp_path, content):
    cfg = tcfg(epochs=1)
    run(tmp_path, cfg, max_steps=2)
    path = tmp_path / CHECKPOINT_FILE
    if content is None:                       # truncated real checkpoint
        content = path.read_bytes()[:200]
    path.write_bytes(content)
    with pytest.raises(InputError) as e:
        run(tmp_path, cfg, resume=True)
    assert str(e.value).startswith(f"{path}: ")
    assert "checkpoint" in str(e.value) and "\n" not in str(e.value)


def test_checkpoint_of_another_model_is_refused(tmp_path):
    run(tmp_path, tcfg(epochs=1), max_steps=1)
    model = new_model(hidden_dim=8)
    with pytest.raises(InputError, match="incompatible") as e:
        train(model, LMObjective(), TOK, TRAIN_IDS, VALID_IDS, tcfg(epochs=1), str(tmp_path),
              quiet=True, resume=True)
    assert str(tmp_path / CHECKPOINT_FILE) in str(e.value)


class NanAt(LMObjective):
    """Return a NaN loss on the given (1-based) calls."""

    def __init__(self, bad):
        self.bad, self.calls = bad, 0

    def loss(self, model, batch, state):
        self.calls += 1
        loss, parts, state = super().loss(model, batch, state)
        if self.bad is True or self.calls in self.bad:
            loss = loss * float("nan")
        return loss, parts, state


@pytest.mark.parametrize("batching", ["sentence", "stream"])
def test_nan_steps_are_skipped_and_counted(tmp_path, batching):
    cfg = tcfg(epochs=2, batching=batching, batch_size=8, max_bad_steps=3)
    n = len(make_batches(TRAIN_IDS, TOK, cfg, 7, train=True))
    obj = NanAt({2, 3, n + 1})
    model, hist = run(tmp_path, cfg, objective=obj)
    assert obj.calls == 2 * n
    assert [h["skipped_steps"] for h in hist] == [2, 1]
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert hist[-1]["valid_ppl"] < TOK.size


def test_nan_step_does_not_move_weights(tmp_path):
    cfg = tcfg(epochs=1, optimizer="sgd", momentum=0.9)
    model, _ = run(tmp_path, cfg, objective=NanAt({1}), max_steps=1)
    _assert_same_weights(model, new_model())
    model, _ = run(tmp_path / "x", cfg, objective=NanAt(set()), max_steps=1)
    with pytest.raises(AssertionError):
        _assert_same_weights(model, new_model())


def test_too_many_nan_steps_in_a_row(tmp_path):
    cfg = tcfg(epochs=1, max_bad_steps=4)
    obj = NanAt(True)
    with pytest.raises(TrainingError) as e:
        run(tmp_path, cfg, objective=obj)
    assert obj.calls == 4
    assert "4 non-finite steps in a row" in str(e.value) and "\n" not in str(e.value)
    assert isinstance(e.value, AsrKdError)
    assert os.path.isfile(tmp_path / CHECKPOINT_FILE)
    # non-finite steps that are not consecutive never stop training
    obj = NanAt({1, 2, 3, 5, 6, 7, 9, 10, 11, 13, 14, 15})
    _, hist = run(tmp_path / "ok", cfg, objective=obj)
    assert hist[0]["skipped_steps"] == 12


def test_stream_text_too_small_is_an_input_error(tmp_path):
    cfg = tcfg(batching="stream", batch_size=64)
    with pytest.raises(InputError, match="validation text is too small"):
        train(new_model(), LMObjective(), TOK, TRAIN_IDS, VALID_IDS[:2], cfg, str(tmp_path),
              quiet=True)
