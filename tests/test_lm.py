"""The one LM interface (asr_kd.lm): every model implements it, and one model gives one set of
numbers whichever path scores it (rescoring trie, token_logprobs, teacher cache, KD reference)."""
from __future__ import annotations

import random

import pytest
import torch

from asr_kd.distill import teacher_logits
from asr_kd.lm import LanguageModel, map_tensors, target_logprobs
from asr_kd.models import LMConfig, LstmLM, TeacherEnsemble, score_sentences
from asr_kd.ops.kd_reference import _full_teacher_logprobs
from asr_kd.rescore import score_trie
from asr_kd.teacher_cache import _teacher_logprobs

V = 30


def make_model(seed, **kw) -> LstmLM:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, embed_dim=8, hidden_dim=12, init_range=0.5)
    cfg.update(kw)
    return LstmLM(LMConfig(**cfg)).eval()


def ensemble(mode: str, n: int = 2) -> TeacherEnsemble:
    return TeacherEnsemble([make_model(10 + i, hidden_dim=8 + i) for i in range(n)], mode).eval()


# ------------------------------------------------------------- interface --

@pytest.mark.parametrize("model", [make_model(0), make_model(1, proj_dim=6), ensemble("prob")],
                         ids=["lstm", "lstmp", "ensemble"])
def test_models_implement_the_protocol(model):
    assert isinstance(model, LanguageModel)
    assert model.vocab_size == V
    x = torch.randint(0, V, (3, 5))
    with torch.no_grad():
        H, state = model.hidden(x, model.init_state(3))
        lp = model.logprobs(H)
    assert lp.shape == (3, 5, V) and lp.dtype == torch.float32
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 5))
    tl = teacher_logits(model, H)
    assert all(t.hidden.shape[0] == 15 and t.weight.shape[0] == V for t in tl)
    assert len(tl) == (len(model.members) if isinstance(model, TeacherEnsemble) else 1)


def test_target_logprobs_and_map_tensors():
    lp = torch.log_softmax(torch.randn(2, 3, V), -1)
    y = torch.tensor([[1, 2, -100], [0, -1, 4]])
    out = target_logprobs(lp, y)
    assert out[0, 2] == 0 and out[1, 1] == 0 and out[1, 2] == lp[1, 2, 4]
    state = [(torch.arange(6.).view(1, 3, 2), torch.zeros(1, 3, 2))]
    cut = map_tensors(lambda t: t[:, torch.tensor([2, 0])], state)
    assert isinstance(cut, list) and isinstance(cut[0], tuple)
    assert cut[0][0].tolist() == [[[4., 5.], [0., 1.]]]


# ------------------------------------------- one model, one set of numbers --

@pytest.mark.parametrize("mode", ["prob", "logit"])
def test_ensemble_scores_agree_across_trie_token_logprobs_and_cache(mode):
    ens = ensemble(mode, 3)
    rng = random.Random(0)
    seqs = [[rng.randrange(3, V) for _ in range(rng.randint(0, 8))] for _ in range(20)]
    trie, _ = score_trie(ens, seqs, 0, 1, row_chunk=7)
    padded = score_sentences(ens, seqs, 0, 1, "cpu")
    assert max(abs(a - b) for a, b in zip(trie, padded)) < 1e-4
    # the teacher cache's path is the token_logprobs path, bit for bit
    x = torch.randint(0, V, (4, 6))
    y = torch.randint(0, V, (4, 6))
    with torch.no_grad():
        lp, _ = _teacher_logprobs(ens, x, ens.init_state(4))
        tok, _ = ens.token_logprobs(x, y)
    assert torch.equal(lp.gather(-1, y.unsqueeze(-1)).squeeze(-1), tok)


@pytest.mark.parametrize("mode", ["prob", "logit"])
def test_ensemble_matches_the_kd_reference_teacher_at_tau_1(mode):
    ens = ensemble(mode, 3)
    x = torch.randint(0, V, (2, 7))
    with torch.no_grad():
        H, _ = ens.hidden(x)
        lp = ens.logprobs(H).reshape(-1, V)
        ref1, ref_tau1 = _full_teacher_logprobs(teacher_logits(ens, H), mode, 1.0, torch.float32)
    torch.testing.assert_close(ref1, lp, rtol=0, atol=1e-5)
    assert torch.equal(ref1, ref_tau1)


def test_single_model_scores_through_the_protocol_as_before():
    """LstmLM's token_logprobs is log_softmax of its forward logits, bit for bit."""
    m = make_model(3)
    x = torch.randint(0, V, (2, 6))
    y = torch.randint(0, V, (2, 6))
    with torch.no_grad():
        got, _ = m.token_logprobs(x, y)
        z, _ = m(x)
    want = torch.log_softmax(z.float(), -1).gather(-1, y.unsqueeze(-1)).squeeze(-1)
    assert torch.equal(got, want)


def test_exported_model_implements_the_protocol_for_scoring(tmp_path):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from asr_kd.cli import main
    from asr_kd.export import OnnxLM
    from asr_kd.modeldir import load_models, save_model
    from asr_kd.vocab import WordVocab

    save_model(make_model(4), WordVocab(["<s>", "</s>", "<unk>"] + [f"w{i}" for i in range(V - 3)]),
               str(tmp_path / "lm"))
    assert main(["export", "--model", str(tmp_path / "lm"), "--format", "onnx",
                 "--out", str(tmp_path / "x")]) == 0
    onnx, _ = load_models([str(tmp_path / "x")], allow_exported=True)
    assert isinstance(onnx, OnnxLM) and isinstance(onnx, LanguageModel) and onnx.vocab_size == V
    x = torch.randint(0, V, (2, 5))
    H, _ = onnx.hidden(x)
    assert onnx.logprobs(H) is H          # the graph's output is already log-probabilities
    tok, _ = onnx.token_logprobs(x, x)
    assert torch.equal(tok, target_logprobs(H, x))
    with pytest.raises(TypeError, match="cannot be a distillation teacher"):
        teacher_logits(onnx, H)
