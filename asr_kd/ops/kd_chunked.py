"""Chunked-vocabulary distillation loss in plain torch with a hand-written backward.

Same maths as :mod:`asr_kd.ops.kd_reference` (read its docstring for the loss,
ensembles and the top-K definition), but no (N, V) tensor ever exists: the
vocabulary is walked in chunks of ``chunk_size`` columns, with all N rows at
once, so the extra memory is O(N * chunk_size) whatever V is. Logits are
recomputed chunk by chunk in backward; only per-row statistics are saved.

Passes over the vocabulary (each pass = one student matmul per chunk, plus one
teacher matmul per member for a logits teacher):

- logits teacher, forward: pass 1 gathers online log-sum-exps (student at 1
  and tau, teacher stream(s) at 1 and tau) and the target logits; pass 2,
  with those known, sums KL = sum_v p^tau (log p^tau - log q^tau) and the trust
  statistics (max p^1, words ranked above y). Two passes rather than one
  online pass with rescaling because the probability-averaged ensemble's
  log p^tau_v = log mean_m exp(z_mv/tau - lse_m) needs every member's final
  LSE before any term of the sum can be formed; one code path serves all
  teacher kinds.
- top-K teacher, forward: one pass (student LSE, tail LSE over words outside
  the ids, the student's logits at the ids); the bucket KL is (N, K+1) work.
- backward: one pass. Per token, divided by the number of real tokens and
  times grad_output, with q^1 = softmax(s), q^tau = softmax(s / tau):
      dL/ds_v = (1 - alpha*w) * (q^1_v - [v = y]) + alpha*w*tau * (q^tau_v - p^tau_v)
  (top-K: the soft part is tau * (Q_b - P_b) at a cached id b, and
  tau * (Q_tail - P_tail) * softmax over the tail of s at the other words),
  then grad_hidden += G @ W_c, grad_weight[c] = G^T @ hidden, grad_bias[c] = sum_rows G.

Accumulation is float32 (float64 for float64 inputs); gradients come back in
the inputs' dtypes. The loss is float32 (float64).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.autograd.function import once_differentiable

from .kd_reference import (KDConfig, KDParts, TeacherLogits, TeacherTopK,
                           compute_dtype, topk_teacher_buckets, topk_trust_stats)
from .trust import trust_weight


class _OnlineLSE:
    """Running log-sum-exp over column chunks of an (N, V) matrix, per row."""

    def __init__(self, n: int, dtype: torch.dtype, device: torch.device):
        self.m = torch.full((n,), -math.inf, dtype=dtype, device=device)
        self.l = torch.zeros(n, dtype=dtype, device=device)

    def update(self, x: torch.Tensor) -> None:
        new_m = torch.maximum(self.m, x.max(dim=1).values)
        # rows whose entries are all -inf so far (masked tail) keep l = 0, not NaN.
        safe = torch.where(torch.isinf(new_m), torch.zeros_like(new_m), new_m)
        # exp in place: one chunk-sized temporary, not two.
        self.l = self.l * torch.exp(self.m - safe) + (x - safe[:, None]).exp_().sum(dim=1)
        self.m = new_m

    def value(self) -> torch.Tensor:
        safe = torch.where(torch.isinf(self.m), torch.zeros_like(self.m), self.m)
        return torch.log(self.l) + safe


def _chunks(v: int, size: int):
    for c0 in range(0, v, size):
        yield c0, min(c0 + size, v)


def _logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None,
            c0: int, c1: int, cdt: torch.dtype) -> torch.Tensor:
    """(N, c1-c0) logits of columns c0:c1; h is already in ``cdt``."""
    s = h @ w[c0:c1].to(cdt).T
    if b is not None:
        s += b[c0:c1].to(cdt)
    return s


def _gather_chunk(x: torch.Tensor, idx: torch.Tensor, c0: int, out: torch.Tensor) -> torch.Tensor:
    """Where ``idx`` (N,) or (N, K) falls in this chunk take x's entry, else keep ``out``."""
    local = idx - c0
    inside = (local >= 0) & (local < x.shape[1])
    col = local.clamp(0, x.shape[1] - 1)
    if idx.dim() == 1:
        return torch.where(inside, x.gather(1, col[:, None])[:, 0], out)
    return torch.where(inside, x.gather(1, col), out)


def _id_mask(ids: torch.Tensor, c0: int, width: int):
    """(N, width) bool mask of the cached ids inside this chunk, plus ids' local
    column (clamped) and whether each id is inside, both (N, K)."""
    local = ids - c0
    inside = (local >= 0) & (local < width)
    local = local.clamp(0, width - 1)
    # scatter_add, not scatter_: clamped outside ids share a column with real ones.
    hits = torch.zeros(ids.shape[0], width, dtype=torch.int32, device=ids.device)
    hits.scatter_add_(1, local, inside.to(torch.int32))
    return hits > 0, local, inside


class _Teacher:
    """A logits teacher as S "streams" whose probabilities are averaged.

    One stream for a single teacher or a logit-averaged ensemble (the stream is
    the mean logit), M streams for a probability-averaged ensemble. log p^t of
    a chunk = logsumexp_s(z_s / t - lse_t[s]) - log S.
    """

    def __init__(self, members: Sequence[TeacherLogits], ensemble: str, cdt: torch.dtype):
        self.hs = [m.hidden.detach().to(cdt) for m in members]
        self.ws = [m.weight.detach() for m in members]
        self.bs = [None if m.bias is None else m.bias.detach() for m in members]
        self.average_logits = len(members) > 1 and ensemble == "logit"
        self.cdt = cdt

    @property
    def n_streams(self) -> int:
        return 1 if self.average_logits else len(self.hs)

    def streams(self, c0: int, c1: int) -> list[torch.Tensor]:
        if not self.average_logits:
            return [_logits(h, w, b, c0, c1, self.cdt) for h, w, b in zip(self.hs, self.ws, self.bs)]
        z = None   # summed in place: two slabs alive, not M + 1
        for h, w, b in zip(self.hs, self.ws, self.bs):
            zm = _logits(h, w, b, c0, c1, self.cdt)
            z = zm if z is None else z.add_(zm)
        return [z.div_(len(self.hs))]

    @staticmethod
    def logp(zs: list[torch.Tensor], lses: torch.Tensor, t: float) -> torch.Tensor:
        """log p^t, shape of zs[0] ((N, C)); lses is (S, N) at temperature t."""
        acc = zs[0] / t - lses[0][:, None]
        for z, l in zip(zs[1:], lses[1:]):
            acc = torch.logaddexp(acc, z / t - l[:, None])
        return acc - math.log(len(zs)) if len(zs) > 1 else acc


def _forward_full(h, w, b, y, teacher: _Teacher, cfg: KDConfig):
    """Statistics of a logits teacher: returns (lse_s1, lse_stau, s_y, t_lse1,
    t_lsetau, kl, logp_y, logp_max, n_greater), per row."""
    n, cdt, dev, tau = h.shape[0], h.dtype, h.device, cfg.tau
    V = w.shape[0]
    s1, st = _OnlineLSE(n, cdt, dev), _OnlineLSE(n, cdt, dev)
    t1 = [_OnlineLSE(n, cdt, dev) for _ in range(teacher.n_streams)]
    tt = [_OnlineLSE(n, cdt, dev) for _ in range(teacher.n_streams)]
    s_y = torch.zeros(n, dtype=cdt, device=dev)
    z_y = torch.zeros(teacher.n_streams, n, dtype=cdt, device=dev)
    for c0, c1 in _chunks(V, cfg.chunk_size):                     # pass 1: LSEs
        s = _logits(h, w, b, c0, c1, cdt)
        s1.update(s)
        st.update(s / tau)
        s_y = _gather_chunk(s, y, c0, s_y)
        for i, z in enumerate(teacher.streams(c0, c1)):
            t1[i].update(z)
            tt[i].update(z / tau)
            z_y[i] = _gather_chunk(z, y, c0, z_y[i])
        del s
    lse_s1, lse_st = s1.value(), st.value()
    t_lse1 = torch.stack([a.value() for a in t1])
    t_lset = torch.stack([a.value() for a in tt])
    logp_y = _Teacher.logp(list(z_y[:, :, None]), t_lse1, 1.0)[:, 0]

    need_rank = cfg.trust in ("prob", "rank")
    kl = torch.zeros(n, dtype=cdt, device=dev)
    logp_max = torch.full((n,), -math.inf, dtype=cdt, device=dev)
    n_greater = torch.zeros(n, dtype=torch.long, device=dev)
    for c0, c1 in _chunks(V, cfg.chunk_size):                     # pass 2: KL, trust
        s = _logits(h, w, b, c0, c1, cdt)
        zs = teacher.streams(c0, c1)
        logp = _Teacher.logp(zs, t_lset, tau)
        logq = s.div_(tau).sub_(lse_st[:, None])
        kl += (logp - logq).mul_(logp.exp()).sum(1)
        del s, logq, logp
        if need_rank:
            logp1 = _Teacher.logp(zs, t_lse1, 1.0)
            logp_max = torch.maximum(logp_max, logp1.max(1).values)
            n_greater += (logp1 > logp_y[:, None]).sum(1)
            # y itself never counts as ranked above y (rounding could say so);
            # no boolean indexing here, which would sync a GPU every chunk.
            own = _gather_chunk(logp1, y, c0, torch.full_like(logp_y, -math.inf))
            n_greater -= (own > logp_y).long()
    return lse_s1, lse_st, s_y, t_lse1, t_lset, kl, logp_y, logp_max, n_greater


def _forward_topk(h, w, b, y, teacher: TeacherTopK, cfg: KDConfig):
    """Statistics of a top-K teacher: returns (lse_s1, s_y, lse_tail, dsoft, kl,
    logp_y, logp_max, n_greater); dsoft (N, K[+1]) = Q^tau - P^tau per bucket."""
    n, cdt, dev, tau = h.shape[0], h.dtype, h.device, cfg.tau
    V, K = w.shape[0], teacher.ids.shape[1]
    has_tail = K < V
    s1, tail = _OnlineLSE(n, cdt, dev), _OnlineLSE(n, cdt, dev)
    s_y = torch.zeros(n, dtype=cdt, device=dev)
    s_ids = torch.zeros(n, K, dtype=cdt, device=dev)
    for c0, c1 in _chunks(V, cfg.chunk_size):
        s = _logits(h, w, b, c0, c1, cdt)
        s1.update(s)
        s_y = _gather_chunk(s, y, c0, s_y)
        s_ids = _gather_chunk(s, teacher.ids, c0, s_ids)
        if has_tail:
            mask, _, _ = _id_mask(teacher.ids, c0, c1 - c0)
            tail.update(s.masked_fill_(mask, -math.inf))
        del s
    lse_tail = tail.value() if has_tail else None
    u = torch.cat([s_ids, lse_tail[:, None]], 1) if has_tail else s_ids
    logQ = torch.log_softmax(u / tau, 1)
    logP = topk_teacher_buckets(teacher.logprobs.to(cdt), tau, has_tail)
    P = logP.exp()
    # an empty teacher tail (P = 0) contributes 0, not 0 * -inf.
    kl = torch.where(P > 0, P * (logP - logQ), torch.zeros_like(P)).sum(1)
    dsoft = logQ.exp() - P
    logp_y, logp_max, n_greater = topk_trust_stats(teacher, y, cdt)
    return s1.value(), s_y, lse_tail, dsoft, kl, logp_y, logp_max, n_greater


class _ChunkedKD(torch.autograd.Function):
    """Autograd node; teacher tensors arrive flattened in ``tteach`` (see
    :func:`_flatten`) so that everything saved goes through save_for_backward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, cfg, spec, *tteach):
        cdt = compute_dtype(hidden.dtype)
        h = hidden.detach().to(cdt)
        w = weight.detach()
        b = None if bias is None else bias.detach()
        teacher = _unflatten(spec, tteach)
        if isinstance(teacher, TeacherTopK):
            lse_s1, s_y, lse_tail, dsoft, kl, logp_y, logp_max, n_greater = \
                _forward_topk(h, w, b, targets, teacher, cfg)
            extra = (lse_tail if lse_tail is not None else torch.empty(0), dsoft)
        else:
            tch = _Teacher(teacher, cfg.ensemble, cdt)
            lse_s1, lse_st, s_y, t_lse1, t_lset, kl, logp_y, logp_max, n_greater = \
                _forward_full(h, w, b, targets, tch, cfg)
            extra = (lse_st, t_lset)
        logq_y = s_y - lse_s1
        wt = trust_weight(cfg.trust, logp_y=logp_y, logp_max=logp_max,
                          n_greater=n_greater, logq_y=logq_y,
                          k=cfg.trust_k, beta=cfg.trust_beta)
        hard = -logq_y
        soft = cfg.tau ** 2 * kl
        a = cfg.alpha
        loss = ((1 - a * wt) * hard + a * wt * soft).mean()

        ctx.cfg, ctx.spec, ctx.has_bias = cfg, spec, bias is not None
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(h, w, b, targets, lse_s1, wt, *extra, *tteach)
        parts = (hard.mean(), soft.mean(), wt.mean())
        ctx.mark_non_differentiable(*parts)
        return (loss, *parts)

    @staticmethod
    @once_differentiable   # the hand-written backward is not itself differentiable
    def backward(ctx, g_loss, *_):
        cfg = ctx.cfg
        h, w, b, y, lse_s1, wt, ex0, ex1, *tteach = ctx.saved_tensors
        teacher = _unflatten(ctx.spec, tteach)
        n, cdt, tau, a = h.shape[0], h.dtype, cfg.tau, cfg.alpha
        V = w.shape[0]
        g = g_loss.to(cdt) / n
        c_hard = ((1 - a * wt) * g)[:, None]
        c_soft = (a * wt * tau * g)[:, None]
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros_like(h) if need_h else None
        grad_w = torch.zeros(w.shape, dtype=cdt, device=w.device) if need_w else None
        grad_b = torch.zeros(V, dtype=cdt, device=w.device) if need_b and b is not None else None
        topk = isinstance(teacher, TeacherTopK)
        if not topk:
            tch, lse_st, t_lset = _Teacher(teacher, cfg.ensemble, cdt), ex0, ex1
        else:
            lse_tail, dsoft = ex0, ex1
            has_tail = lse_tail.numel() > 0
        for c0, c1 in _chunks(V, cfg.chunk_size):
            s = _logits(h, w, b, c0, c1, cdt)
            if topk:
                mask, local, inside = _id_mask(teacher.ids, c0, c1 - c0)
                if has_tail:
                    soft = (s - lse_tail[:, None]).exp_().mul_(dsoft[:, -1:])
                    soft.masked_fill_(mask, 0.0)
                else:
                    soft = torch.zeros_like(s)
                K = teacher.ids.shape[1]
                soft.scatter_add_(1, local, dsoft[:, :K] * inside)
                G = soft.mul_(c_soft)
            else:
                logp = _Teacher.logp(tch.streams(c0, c1), t_lset, tau)
                G = (s / tau - lse_st[:, None]).exp_().sub_(logp.exp_()).mul_(c_soft)
                del logp
            G += (s - lse_s1[:, None]).exp_().mul_(c_hard)
            del s
            local_y = y - c0     # the -[v = y] of the hard part, scattered without a sync
            at = (local_y >= 0) & (local_y < c1 - c0)
            G.scatter_add_(1, local_y.clamp(0, c1 - c0 - 1)[:, None], -(c_hard * at[:, None]))
            if need_h:
                grad_h += G @ w[c0:c1].to(cdt)
            if need_w:
                grad_w[c0:c1] = G.T @ h
            if grad_b is not None:
                grad_b[c0:c1] = G.sum(0)
            del G
        dt_h, dt_w, dt_b = ctx.dtypes
        return (None if grad_h is None else grad_h.to(dt_h),
                None if grad_w is None else grad_w.to(dt_w),
                None if grad_b is None else grad_b.to(dt_b),
                None, None, None, *([None] * len(tteach)))


def _flatten(teacher):
    """Teacher -> (spec, tensors). spec: ("topk",) or ("full", has_bias per member)."""
    if isinstance(teacher, TeacherTopK):
        return ("topk",), (teacher.ids, teacher.logprobs, teacher.target_logprob)
    spec, flat = ["full"], []
    for m in teacher:
        spec.append(m.bias is not None)
        flat += [m.hidden.detach(), m.weight.detach()] + ([m.bias.detach()] if m.bias is not None else [])
    return tuple(spec), tuple(flat)


def _unflatten(spec, flat):
    if spec[0] == "topk":
        return TeacherTopK(*flat)
    members, i = [], 0
    for has_bias in spec[1:]:
        members.append(TeacherLogits(flat[i], flat[i + 1], flat[i + 2] if has_bias else None))
        i += 3 if has_bias else 2
    return tuple(members)


def kd_loss_chunked(hidden: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor | None, targets: torch.Tensor,
                    teacher: tuple[TeacherLogits, ...] | TeacherTopK,
                    cfg: KDConfig) -> KDParts:
    """Chunked loss; same arguments and result as ``kd_loss_reference``.

    hidden (N, d), weight (V, d), bias (V,) or None, targets (N,) long, all rows
    real (N >= 1); extra memory O(N * cfg.chunk_size) in forward and backward.
    """
    spec, flat = _flatten(teacher)
    loss, hard, soft, trust = _ChunkedKD.apply(hidden, weight, bias, targets, cfg, spec, *flat)
    return KDParts(loss, hard, soft, trust)
