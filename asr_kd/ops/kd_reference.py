"""The distillation loss written plainly: the spec the fast kernels are tested against.

The types every implementation shares (teacher descriptions, :class:`KDConfig`,
:class:`KDParts`) are in :mod:`asr_kd.ops.kd_types`; the helpers here (bucket
reduction, accumulation dtype) are shared too, so the kernels depend on this
module and never on each other.

Maths, per real target position with true next word y:

    L = (1 - alpha*w) * CE(y, q^1) + alpha*w * tau^2 * KL(p^tau || q^tau)

averaged over real (non-ignored) tokens. ``x^tau`` means softmax(logits / tau).

Teacher ensembles (a list of :class:`TeacherLogits`) combine members either by
``"prob"``: p^tau = mean_m softmax(z_m / tau) (at every temperature, i.e. the
members are tempered first and then averaged; p^1 used for trust is the plain
probability average), or by ``"logit"``: p^tau = softmax(mean_m z_m / tau).

Top-K teacher (:class:`TeacherTopK`, an offline cache of log p^1) with
temperature -- our definition. Both distributions are first reduced at tau = 1
to the same K + 1 buckets: the K cached ids and one tail bucket "every other
word". Teacher: buckets ``a = [log p^1(id_1..id_K), log(1 - sum_i p^1(id_i))]``
(tail clamped at 0 and forced to 0 when K = V). Student: ``[log q^1(id_1..id_K),
log q^1(every word not in ids)]``. Each bucket distribution is then tempered as
a whole, P^tau = softmax(a / tau), Q^tau likewise (which also renormalises a
cache whose K probabilities sum a hair above 1), and the soft term is
tau^2 * KL(P^tau || Q^tau) over the K + 1 buckets (the tail simply disappears
when K = V). Why this and not "student q^tau over V, summed into buckets":
tempering both sides by the same rule makes the soft term zero exactly when the
student's buckets match the teacher's at tau = 1 (the cache's own
distribution), whereas summing tempered student probabilities against a tail
tempered as one bucket would pull the student away from the teacher for any
tau != 1. For K = V both definitions equal the full loss. Trust with top-K:
``prob`` uses exp(target_logprob - max(logprobs)), ``rank`` counts cached
log-probs strictly above target_logprob (so trust_k <= K), ``margin`` uses
target_logprob.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from .ensemble import combine_logprobs
from .kd_types import KDConfig, KDParts, TeacherLogits, TeacherTopK
from .trust import trust_weight


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Accumulation dtype: float64 for float64 inputs, float32 otherwise."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def topk_teacher_buckets(logprobs: torch.Tensor, tau: float,
                         has_tail: bool) -> torch.Tensor:
    """Teacher's tempered bucket log-probs log P^tau, (N, K+1) or (N, K).

    logprobs: (N, K) cached log p^1. has_tail: False when K = V (no word is
    outside the ids, the tail column is dropped).
    """
    if not has_tail:
        return F.log_softmax(logprobs / tau, dim=1)
    lse = torch.logsumexp(logprobs, dim=1)
    # log(1 - sum p) without cancellation; the tail is 0 when the cache sums to >= 1.
    log_tail = torch.where(lse < 0, torch.log(-torch.expm1(lse.clamp(max=0))),
                           torch.full_like(lse, -math.inf))
    a = torch.cat([logprobs, log_tail[:, None]], dim=1)
    return F.log_softmax(a / tau, dim=1)


def topk_trust_stats(teacher: TeacherTopK, targets: torch.Tensor, cdt: torch.dtype):
    """(logp_y, logp_max, n_greater) of a top-K teacher, each (N,)."""
    lp = teacher.logprobs.to(cdt)
    logp_y = teacher.target_logprob.to(cdt)
    # y's own cached entry never counts as ranked above y.
    above = (lp > logp_y[:, None]) & (teacher.ids != targets[:, None])
    return logp_y, lp.max(dim=1).values, above.sum(dim=1)


def _full_teacher_logprobs(members: Sequence[TeacherLogits], ensemble: str,
                           tau: float, cdt: torch.dtype):
    """(log p^1, log p^tau), each (N, V), of a teacher or ensemble (rule: :mod:`.ensemble`)."""
    zs = [m.hidden.to(cdt) @ m.weight.to(cdt).T
          + (0 if m.bias is None else m.bias.to(cdt)) for m in members]
    return combine_logprobs(zs, ensemble, 1.0), combine_logprobs(zs, ensemble, tau)


def kd_loss_reference(hidden: torch.Tensor, weight: torch.Tensor,
                      bias: torch.Tensor | None, targets: torch.Tensor,
                      teacher: tuple[TeacherLogits, ...] | TeacherTopK,
                      cfg: KDConfig) -> KDParts:
    """Plain, (N, V)-materialising loss with autograd.

    hidden (N, d), weight (V, d), bias (V,) or None, targets (N,) long, all
    rows real (the dispatcher has removed ignored rows, N >= 1). ``teacher`` is
    a tuple of :class:`TeacherLogits` (ensemble of one or more) or a
    :class:`TeacherTopK`. Computes in float32 (float64 for float64 inputs).
    """
    cdt = compute_dtype(hidden.dtype)
    tau = cfg.tau
    s = hidden.to(cdt) @ weight.to(cdt).T
    if bias is not None:
        s = s + bias.to(cdt)
    logq1 = F.log_softmax(s, 1)
    logq_y = logq1.gather(1, targets[:, None])[:, 0]
    hard = -logq_y

    with torch.no_grad():
        if isinstance(teacher, TeacherTopK):
            V, K = s.shape[1], teacher.ids.shape[1]
            logP = topk_teacher_buckets(teacher.logprobs.to(cdt), tau, K < V)
            logp_y, logp_max, n_greater = topk_trust_stats(teacher, targets, cdt)
        else:
            logp1, logp = _full_teacher_logprobs(teacher, cfg.ensemble, tau, cdt)
            logp_y = logp1.gather(1, targets[:, None])[:, 0]
            logp_max = logp1.max(1).values
            above = logp1 > logp_y[:, None]
            above.scatter_(1, targets[:, None], False)
            n_greater = above.sum(1)
        w = trust_weight(cfg.trust, logp_y=logp_y, logp_max=logp_max,
                         n_greater=n_greater, logq_y=logq_y.detach(),
                         k=cfg.trust_k, beta=cfg.trust_beta)

    if isinstance(teacher, TeacherTopK):
        ids = teacher.ids
        u = s.gather(1, ids)
        if K < V:
            outside = torch.ones_like(s, dtype=torch.bool).scatter_(1, ids, False)
            u = torch.cat([u, torch.logsumexp(s.masked_fill(~outside, -math.inf), 1)[:, None]], 1)
        logq = F.log_softmax(u / tau, 1)
        # an empty teacher tail (P = 0, log P = -inf) contributes 0, not NaN.
        kl = torch.where(logP > -math.inf, logP.exp() * (logP - logq), 0.0).sum(1)
    else:
        logq = F.log_softmax(s / tau, 1)
        kl = (logp.exp() * (logp - logq)).sum(1)
    soft = tau * tau * kl
    a = cfg.alpha
    loss = ((1 - a * w) * hard + a * w * soft).mean()
    return KDParts(loss, hard.detach().mean(), soft.detach().mean(), w.mean())
