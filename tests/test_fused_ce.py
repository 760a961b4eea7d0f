"""The blocked linear + cross-entropy loss, the fused training path and CPU bf16 options."""
import math
import os

import pytest
import torch
import yaml

import asr_kd.ops.fused_ce as fce
from asr_kd.config import TrainConfig, load_config, split_config
from asr_kd.corpus import pad_batch
from asr_kd.device import cpu_bf16_native, resolve_cpu_bf16
from asr_kd.errors import InputError
from asr_kd.models import LMConfig, LstmLM
from asr_kd.ops.fused_ce import fused_linear_ce
from asr_kd.train import LMObjective, _use_bf16, make_optimizer


def _inputs(n=37, d=8, v=53, dtype=torch.float64, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g, dtype=dtype).requires_grad_()
    w = torch.randn(v, d, generator=g, dtype=dtype).requires_grad_()
    b = torch.randn(v, generator=g, dtype=dtype).requires_grad_() if bias else None
    y = torch.randint(0, v, (n,), generator=g)
    return h, w, b, y


def _reference(h, w, b, y, ignore_index=-100):
    z = h @ w.T + (b if b is not None else 0)
    return torch.nn.functional.cross_entropy(z, y, ignore_index=ignore_index, reduction="sum")


def _grads(loss, ts):
    return torch.autograd.grad(loss, [t for t in ts if t is not None])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("block_logits", [1, 200, 1 << 22])
def test_matches_cross_entropy_in_float64(monkeypatch, bias, block_logits):
    # block_logits 1 -> blocks of _MIN_ROWS rows (several blocks, a ragged last one)
    monkeypatch.setattr(fce, "_CPU_BLOCK_LOGITS", block_logits)
    monkeypatch.setattr(fce, "_MIN_ROWS", 5)
    h, w, b, y = _inputs(bias=bias)
    ref = _reference(h, w, b, y)
    got = fused_linear_ce(h, w, b, y)
    assert got.dtype == torch.float64
    assert torch.allclose(got, ref, rtol=1e-12, atol=1e-10)
    for a, c in zip(_grads(got, (h, w, b)), _grads(ref, (h, w, b))):
        assert torch.allclose(a, c, rtol=1e-10, atol=1e-10)


def test_ignored_rows_are_skipped_and_grad_output_scales():
    h, w, b, y = _inputs()
    y = y.clone()
    y[::3] = -100
    ref = _reference(h, w, b, y) * 0.25
    got = fused_linear_ce(h, w, b, y) * 0.25
    assert torch.allclose(got, ref, rtol=1e-12)
    gh, gw, gb = _grads(got, (h, w, b))
    rh, rw, rb = _grads(ref, (h, w, b))
    assert torch.allclose(gh, rh, atol=1e-12) and torch.allclose(gw, rw, atol=1e-12)
    assert torch.allclose(gb, rb, atol=1e-12)
    assert float(gh[::3].abs().max()) == 0.0   # an ignored row gets no gradient


def test_all_rows_ignored_gives_zero_loss_and_zero_grads():
    h, w, b, y = _inputs()
    loss = fused_linear_ce(h, w, b, torch.full_like(y, -100))
    assert float(loss.detach()) == 0.0
    gh, gw, gb = _grads(loss, (h, w, b))
    assert float(gh.abs().sum() + gw.abs().sum() + gb.abs().sum()) == 0.0


def test_bad_shapes_are_refused():
    h, w, b, y = _inputs()
    with pytest.raises(ValueError, match="hidden"):
        fused_linear_ce(h, w[:, :3], b, y)
    with pytest.raises(ValueError, match="targets"):
        fused_linear_ce(h, w, b, y[:5])


def test_bfloat16_hidden_states_keep_float32_statistics():
    h, w, b, y = _inputs(n=64, d=32, v=300, dtype=torch.float32, seed=3)
    ref = _reference(h.double(), w.double(), b.double(), y)
    hb = h.detach().bfloat16().requires_grad_()
    got = fused_linear_ce(hb, w, b, y)
    assert got.dtype == torch.float32
    assert abs(float(got.detach()) - float(ref.detach())) / float(ref.detach()) < 1e-2
    gh, gw, gb = _grads(got, (hb, w, b))
    assert gh.dtype == torch.bfloat16 and gw.dtype == torch.float32
    rh, rw, rb = torch.autograd.grad(ref, (h, w, b))
    for a, c in ((gh, rh), (gw, rw), (gb, rb)):
        err = float((a.double() - c).norm() / c.norm())
        assert err < 2e-2, err


def _tiny_model(seed=0):
    torch.manual_seed(seed)
    return LstmLM(LMConfig(vocab_size=40, embed_dim=12, hidden_dim=12, num_layers=2,
                           dropout=0.0))


def _batch():
    g = torch.Generator().manual_seed(5)
    seqs = [[0] + torch.randint(3, 40, (n,), generator=g).tolist() + [1] for n in (3, 7, 5, 9)]
    return pad_batch(seqs)


def test_fused_and_full_objectives_agree_in_loss_and_gradients():
    b = _batch()
    grads = {}
    for mode in ("fused", "full"):
        m = _tiny_model()   # (the full path computes its CE in float32)
        obj = LMObjective(mode)
        loss, parts, _ = obj.loss(m, type(b)(b.inputs, b.targets, b.reset, b.positions),
                                  obj.init_state(m, b.inputs.shape[0], "cpu"))
        loss.backward()
        grads[mode] = (float(loss), [p.grad.clone() for p in m.parameters()])
    assert math.isclose(grads["fused"][0], grads["full"][0], rel_tol=1e-6)
    for a, c in zip(grads["fused"][1], grads["full"][1]):
        assert torch.allclose(a, c, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="output_loss"):
        LMObjective("sampled")


def test_cpu_bf16_option_parses_yaml_booleans_and_is_validated(tmp_path):
    # YAML 1.1 reads off/on as booleans; both spellings mean the same setting
    p = tmp_path / "c.yaml"
    p.write_text("cpu_bf16: off\noutput_loss: full\n")
    _, train, _ = split_config(load_config(str(p), {"cpu_bf16": yaml.safe_load("on")}))
    assert (train.cpu_bf16, train.output_loss) == ("on", "full")
    _, train, _ = split_config(load_config(str(p), {}))
    assert train.cpu_bf16 == "off"
    assert TrainConfig(cpu_bf16=False).cpu_bf16 == "off"
    with pytest.raises(ValueError, match="cpu_bf16"):
        TrainConfig(cpu_bf16="always").validate()
    with pytest.raises(ValueError, match="output_loss"):
        TrainConfig(output_loss="sampled").validate()
    p.write_text("cpu_bf16: sometimes\n")
    with pytest.raises(InputError, match="cpu_bf16"):
        split_config(load_config(str(p), {}))


def test_cpu_bf16_resolution_follows_the_cpu(monkeypatch):
    import asr_kd.device as dev
    import asr_kd.train as tr
    for native in (True, False):
        monkeypatch.setattr(dev, "cpu_bf16_native", lambda native=native: native)
        monkeypatch.setattr(tr, "cpu_bf16_native", lambda native=native: native)
        monkeypatch.setattr(tr, "resolve_cpu_bf16", dev.resolve_cpu_bf16)
        cpu = torch.device("cpu")
        assert tr._use_bf16(TrainConfig(cpu_bf16="auto"), cpu) is native
        assert tr._use_bf16(TrainConfig(cpu_bf16="on"), cpu) is True
        assert tr._use_bf16(TrainConfig(cpu_bf16="off"), cpu) is False
    # CUDA keeps following `amp`
    assert _use_bf16(TrainConfig(amp=True, cpu_bf16="off"), torch.device("cuda")) is True
    assert isinstance(cpu_bf16_native(), bool)
    assert resolve_cpu_bf16("off") is False


def test_adamw_uses_the_fused_kernel_on_cpu():
    opt, _ = make_optimizer(_tiny_model(), TrainConfig(optimizer="adamw", lr=1e-3))
    assert opt.defaults.get("fused") is True


@pytest.mark.skipif(not cpu_bf16_native(), reason="CPU without AMX / AVX512-BF16")
def test_train_lm_with_cpu_bf16_trains_and_validates_in_float32(tmp_path):
    from asr_kd.train import train
    from asr_kd.vocab import WordVocab
    words = [f"w{i}" for i in range(30)]
    g = torch.Generator().manual_seed(0)
    sents = [" ".join(words[int(i)] for i in torch.randint(0, 30, (8,), generator=g))
             for _ in range(60)]
    tok = WordVocab.build(sents, max_size=40)
    ids = [tok.encode(s) for s in sents]
    cfg = TrainConfig(epochs=2, batch_size=8, optimizer="adamw", lr=3e-3, cpu_bf16="on")
    hist = train(_tiny_model(), LMObjective(), tok, ids[:50], ids[50:], cfg, str(tmp_path),
                 quiet=True)
    assert hist[1]["valid_ppl"] < hist[0]["valid_ppl"] < 40


def test_cpu_bf16_bounds_the_onednn_cache_unless_the_user_set_it(monkeypatch):
    import asr_kd.train as tr
    monkeypatch.setattr(tr, "resolve_cpu_bf16", lambda setting: setting != "off")
    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    tr._use_bf16(TrainConfig(cpu_bf16="off"), torch.device("cpu"))
    assert "ONEDNN_PRIMITIVE_CACHE_CAPACITY" not in os.environ
    tr._use_bf16(TrainConfig(cpu_bf16="on"), torch.device("cpu"))
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(tr.ONEDNN_CACHE_BF16)
    monkeypatch.setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "7")
    tr._use_bf16(TrainConfig(cpu_bf16="on"), torch.device("cpu"))
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == "7"


def test_pad_multiple_rounds_batch_lengths_and_pads_with_ignored_targets():
    from asr_kd.corpus import IGNORE_INDEX, SentenceBatches
    ids = [[5] * n for n in (1, 2, 3, 9, 10, 17)]
    plain = list(SentenceBatches(ids, 0, 1, 2, seed=3).epoch(0))
    padded = list(SentenceBatches(ids, 0, 1, 2, seed=3, pad_multiple=8).epoch(0))
    assert len(plain) == len(padded)
    for a, b in zip(plain, padded):
        T = a.inputs.shape[1]
        assert b.inputs.shape[1] == -(-T // 8) * 8
        assert torch.equal(b.targets[:, :T], a.targets)
        assert bool((b.targets[:, T:] == IGNORE_INDEX).all())
        assert a.num_tokens == b.num_tokens
