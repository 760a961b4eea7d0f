"""The ensemble combine rule, written once.

Every place that turns several language models' outputs into one distribution
uses :func:`combine_logprobs`: the :class:`~asr_kd.models.TeacherEnsemble`
(rescoring, perplexity, the teacher cache, live distillation through it) and
the distillation reference :func:`~asr_kd.ops.kd_reference.kd_loss_reference`
(tempered).  Per-member weights would be an edit here only.

The rule, for member logits ``z_m`` (M members) and temperature ``tau``:

* ``"prob"``:  log p^tau = log( mean_m softmax(z_m / tau) )
  = logsumexp_m log_softmax(z_m / tau) - log M;
* ``"logit"``: log p^tau = log_softmax( mean_m z_m / tau ).

One member is the plain ``log_softmax(z / tau)`` in both modes.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

COMBINE_MODES = ("prob", "logit")


def combine_logprobs(logits: Sequence[torch.Tensor], mode: str = "prob",
                     tau: float = 1.0) -> torch.Tensor:
    """Natural-log probabilities (..., V) of the ensemble of ``logits``.

    logits: one (..., V) tensor per member, same shape and dtype; anything whose
        log_softmax is the member's log-probabilities (normalised log-probs are
        valid logits).  Computed in their dtype: callers cast first.
    mode:   "prob" (average the probabilities) or "logit" (average the logits).
    tau:    temperature applied to every member before combining.

    Bit-for-bit contract (the rescoring scores and the recipe report depend on
    it): ``z / tau`` is skipped at tau = 1 (``z / 1.0 == z`` exactly anyway),
    one member is ``log_softmax(z)`` itself, and ``log M`` is the Python float
    ``math.log(M)`` (in float32 that is the double rounded once; ``torch.log`` of
    a float32 M differs from it by an ulp for some M, e.g. 7).
    """
    if mode not in COMBINE_MODES:
        raise ValueError(f"unknown ensemble combine mode {mode!r}")
    if not logits:
        raise ValueError("an ensemble needs at least one member")

    def tempered(z):
        return z if tau == 1.0 else z / tau

    if len(logits) == 1:
        return F.log_softmax(tempered(logits[0]), -1)
    if mode == "logit":
        return F.log_softmax(tempered(torch.stack(list(logits)).mean(0)), -1)
    lps = torch.stack([F.log_softmax(tempered(z), -1) for z in logits])
    return torch.logsumexp(lps, 0) - math.log(len(logits))
