"""The LM interface (asr_kd.lm.LanguageModel) is an nn.Module base holding what scoring
needs and nothing more; distillation adapts a teacher itself (asr_kd.distill.teacher_logits)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from asr_kd.distill import teacher_logits
from asr_kd.lm import LanguageModel
from asr_kd.models import LMConfig, LstmLM, TeacherEnsemble

SCORING = {"vocab_size", "init_state", "hidden", "logits", "logprobs", "token_logprobs",
           "num_params"}


def _lm(seed: int, **kw) -> LstmLM:
    torch.manual_seed(seed)
    return LstmLM(LMConfig(vocab_size=13, embed_dim=4, hidden_dim=5, num_layers=1, **kw))


def test_the_base_declares_the_scoring_members_only():
    own = {k for k in vars(LanguageModel) if not k.startswith("_")}
    assert own == SCORING
    assert LanguageModel.__abstractmethods__ == SCORING - {"token_logprobs"}
    assert issubclass(LanguageModel, nn.Module)
    for cls in (LstmLM, TeacherEnsemble):
        assert issubclass(cls, LanguageModel) and not hasattr(cls, "teacher_logits")


def test_a_model_missing_a_member_cannot_be_made():
    class NoLogprobs(LanguageModel):
        vocab_size = 3

        def init_state(self, batch_size, device=None):
            return None

        def hidden(self, inputs, state=None):
            return inputs, state

        def logits(self, H):
            return H

        def num_params(self):
            return 0

    with pytest.raises(TypeError, match="logprobs"):
        NoLogprobs()


def test_teacher_logits_of_a_model_and_an_ensemble():
    a, b = _lm(1), _lm(2)
    x = torch.randint(0, 13, (2, 3))
    H, _ = a.hidden(x)
    (t,) = teacher_logits(a, H)
    assert t.hidden.shape == (6, H.shape[-1]) and t.weight is a.output_weight
    assert torch.allclose(a.logprobs(H).reshape(6, -1),
                          torch.log_softmax(t.hidden @ t.weight.T
                                            + (0 if t.bias is None else t.bias), -1), atol=1e-6)
    ens = TeacherEnsemble([a, b])
    Hs, _ = ens.hidden(x)
    ts = teacher_logits(ens, Hs)
    assert len(ts) == 2 and ts[0].weight is a.output_weight and ts[1].weight is b.output_weight
    with pytest.raises(TypeError, match="cannot be a distillation teacher"):
        teacher_logits(object(), H)
