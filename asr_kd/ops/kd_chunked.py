"""Blocked distillation loss in plain torch, gradients computed with the forward pass.

Same maths as :mod:`asr_kd.ops.kd_reference` (read its docstring for the loss,
ensembles and the top-K definition), but no (N, V) tensor ever exists: the
rows are walked in blocks of R = max(1, N * chunk_size // V) rows over the
whole vocabulary, so each block holds R x V <= N x chunk_size logits and the
extra memory is O(N * chunk_size) whatever V is (a handful of block-sized
buffers). On a CPU blocks are further cut to about 2M logits, which is faster.

One pass over the rows, each logit computed once (the floor's GEMMs: student
logits, teacher logits, grad_hidden = G W, grad_weight = G^T h): with a whole
vocabulary row in hand, every log-sum-exp is exact at once, so a block's
statistics, loss terms and gradient coefficients G come from the same logits.
When a gradient is wanted (grad mode on and an input that requires it), the
block's G is turned into its share of grad_hidden / grad_weight / grad_bias
right away and only those (sizes of the inputs) are kept for backward, which
scales them by grad_output. Per token, divided by the number of real tokens,
with q^1 = softmax(s), q^tau = softmax(s / tau):

    dL/ds_v = (1 - alpha*w) * (q^1_v - [v = y]) + alpha*w*tau * (q^tau_v - p^tau_v)

(top-K: the soft part is tau * (Q_b - P_b) at a cached id b, and
tau * (Q_tail - P_tail) * softmax over the tail of s at the other words).

Why gradients in the forward pass: a column-chunked scheme needs each row's
log-sum-exps before any term, so it computes every student and teacher logit
three times (two forward passes and the backward), which on a CPU costs about
3x the floor of a distillation step (teacher forward + student step);
see benchmarks/RESULTS.md, "Distillation cost on the 2-core CPU". The loss and
gradients are the same up to float rounding.

Accumulation is float32 (float64 for float64 inputs); gradients come back in
the inputs' dtypes. The loss is float32 (float64).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch.autograd.function import once_differentiable

from .kd_reference import compute_dtype, topk_teacher_buckets, topk_trust_stats
from .kd_types import KDConfig, KDParts, TeacherLogits, TeacherTopK
from .trust import trust_weight


def _lse(x: torch.Tensor, scratch: torch.Tensor | None = None,
         m: torch.Tensor | None = None) -> torch.Tensor:
    """Row-wise log-sum-exp of x (R, V); ``scratch`` (same shape) takes the temporary.

    m: the row maxima of x when known (x / tau has exactly max(x) / tau: rounding
    is monotonic). Rows whose entries are all -inf give -inf (not NaN)."""
    if m is None:
        m = x.max(dim=1).values
    safe = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    e = torch.sub(x, safe[:, None], out=scratch) if scratch is not None else x - safe[:, None]
    return e.exp_().sum(dim=1).log_().add_(safe)


# On a CPU, blocks of about 2M logits (8 MiB in float32) are fastest: larger ones fall
# out of the caches and their buffers come back from the allocator as fresh pages;
# smaller ones make thin GEMMs (hence at least 64 rows). Measured with
# benchmarks/bench_distill_cpu.py (V = 10000: 114-229 rows best at N = 1120 and 2240).
_CPU_BLOCK_LOGITS = 1 << 21
_CPU_MIN_ROWS = 64


def _row_blocks(n: int, v: int, chunk_size: int, cpu: bool = False):
    """Row ranges of at most max(1, n * chunk_size // v) rows: block x V <= n x chunk_size;
    on a CPU also at most max(64, 2^21 // v) rows."""
    r = max(1, (n * chunk_size) // v)
    if cpu:
        r = max(1, min(r, max(_CPU_MIN_ROWS, _CPU_BLOCK_LOGITS // v)))
    for r0 in range(0, n, r):
        yield r0, min(r0 + r, n)


def _logits(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
    """(R, V) logits in the bias' dtype (the compute dtype; float32 without a bias when
    h is bfloat16); h and w in the GEMM dtype (the compute dtype, or bfloat16)."""
    if b is not None and b.dtype == h.dtype:
        return torch.addmm(b, h, w.T)
    z = h @ w.T
    if h.dtype == torch.bfloat16:   # a bf16 GEMM returns bf16: statistics in float32
        z = z.float()
    return z if b is None else z.add_(b)


class _Teacher:
    """A logits teacher as S "streams" whose probabilities are averaged.

    One stream for a single teacher or a logit-averaged ensemble (the stream is
    the mean logit), M streams for a probability-averaged ensemble. log p^t of
    a block = logsumexp_s(z_s / t - lse_t[s]) - log S.
    """

    def __init__(self, members: Sequence[TeacherLogits], ensemble: str, cdt: torch.dtype,
                 mdt: torch.dtype):
        self.hs = [m.hidden.detach().to(mdt) for m in members]
        self.ws = [m.weight.detach().to(mdt) for m in members]
        self.bs = [None if m.bias is None else m.bias.detach().to(cdt) for m in members]
        self.average_logits = len(members) > 1 and ensemble == "logit"

    def streams(self, r0: int, r1: int) -> list[torch.Tensor]:
        """Fresh (R, V) logits of rows r0:r1, one per stream."""
        if not self.average_logits:
            return [_logits(h[r0:r1], w, b) for h, w, b in zip(self.hs, self.ws, self.bs)]
        z = None   # summed in place: two slabs alive, not M + 1
        for h, w, b in zip(self.hs, self.ws, self.bs):
            zm = _logits(h[r0:r1], w, b)
            z = zm if z is None else z.add_(zm)
        return [z.div_(len(self.hs))]

    @staticmethod
    def logp(zs: list[torch.Tensor], lses: torch.Tensor, t: float) -> torch.Tensor:
        """log p^t, shape of zs[0]; lses is (S, R) at temperature t."""
        acc = zs[0] / t - lses[0][:, None]
        for z, l in zip(zs[1:], lses[1:]):
            acc = torch.logaddexp(acc, z / t - l[:, None])
        return acc - math.log(len(zs)) if len(zs) > 1 else acc


def _exp_shifted(x, m, out):
    """exp(x - m[:, None]) into ``out`` and its row sums; m: row maxima of x (a row of
    all -inf gets shift 0, so its sum is 0, not NaN)."""
    safe = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    e = torch.sub(x, safe[:, None], out=out).exp_()
    return e, e.sum(dim=1), safe


def _block_full(s, y, teacher: _Teacher, r0, r1, cfg: KDConfig, scratch):
    """One row block, logits teacher. ``s`` (R, V) student logits (overwritten).

    Returns (lse_s1, s_y, kl, logp_y, logp_max, n_greater, coefficient maker) where
    the maker turns (c_hard, c_soft) into the block's G (in a block buffer).
    Three exps per logit (student at 1 and tau, teacher at tau; at tau = 2 the
    student's exp at 1 is the square of the one at tau), kept for the gradient."""
    tau = cfg.tau
    m_s = s.max(dim=1).values
    s_y = s.gather(1, y[:, None])[:, 0]
    logq = torch.div(s, tau)                                      # s / tau
    e_st, l_st, sh_st = _exp_shifted(logq, m_s / tau, torch.empty_like(s))
    lse_st = l_st.log() + sh_st
    if tau == 2.0:   # exp(s - m) = exp(s / 2 - m / 2)^2
        e_s1 = torch.mul(e_st, e_st, out=scratch)
        sh_s1 = torch.where(torch.isinf(m_s), torch.zeros_like(m_s), m_s)
        l_s1 = e_s1.sum(dim=1)
    else:
        e_s1, l_s1, sh_s1 = _exp_shifted(s, m_s, scratch)
    lse_s1 = l_s1.log() + sh_s1
    logq.sub_(lse_st[:, None])                                    # log q^tau
    zs = teacher.streams(r0, r1)
    m_z = [z.max(dim=1).values for z in zs]
    n = s.shape[0]
    logp_max = torch.full((n,), -math.inf, dtype=s.dtype, device=s.device)
    n_greater = torch.zeros(n, dtype=torch.long, device=s.device)
    if cfg.trust == "none":   # no teacher statistic at tau = 1 is needed (w = 1)
        logp_y = logp_max
    else:
        t_lse1 = torch.stack([_lse(z, s, m) for z, m in zip(zs, m_z)])   # (s: free now)
        z_y = torch.stack([z.gather(1, y[:, None])[:, 0] for z in zs])
        logp_y = _Teacher.logp(list(z_y[:, :, None]), t_lse1, 1.0)[:, 0]
    if cfg.trust in ("prob", "rank"):
        logp1 = _Teacher.logp(zs, t_lse1, 1.0)
        logp_max = logp1.max(1).values
        above = logp1 > logp_y[:, None]
        above.scatter_(1, y[:, None], False)   # y itself never counts as ranked above y
        n_greater = above.sum(1)
        del logp1, above
    for z in zs:
        z.div_(tau)
    if len(zs) == 1:
        # p^tau = exp(z / tau - m / tau) / sum, log p^tau = z / tau - lse, both in place
        p, l_t, sh_t = _exp_shifted(zs[0], m_z[0] / tau, s)
        lse_t = l_t.log() + sh_t
        p.div_(l_t[:, None])
        logp = zs[0].sub_(lse_t[:, None])
    else:
        t_lset = torch.stack([_lse(z, s, m / tau) for z, m in zip(zs, m_z)])
        logp = _Teacher.logp(zs, t_lset, 1.0)
        p = torch.exp(logp, out=s)
    del zs
    kl = logp.sub_(logq).mul_(p).sum(1)
    del logp, logq

    def make_g(c_hard, c_soft):
        # soft: tau * (q^tau - p^tau); hard: q^1 (- [v = y] below)
        g = e_st.mul_(c_soft / l_st[:, None])
        g.addcmul_(p, c_soft, value=-1.0)
        g.addcmul_(e_s1, c_hard / l_s1[:, None])
        return g
    return lse_s1, s_y, kl, logp_y, logp_max, n_greater, make_g


def _block_topk(s, y, ids, teacher: TeacherTopK, cfg: KDConfig, scratch):
    """One row block, top-K teacher (rows of ``teacher`` already cut to the block).
    Same results as :func:`_block_full`.

    One exp per logit: e = exp(s - max) gives the softmax's sum, and e with the
    cached ids zeroed gives the tail's sum (a copy, no second exp), so the tail's
    log-sum-exp is log(tail sum) + max.  Rows whose whole tail underflows there
    (tail logits ~87 nats below the max in float32) get the exact tail lse from
    the masked logits instead, so the tail bucket's log Q stays finite."""
    tau = cfg.tau
    V, K = s.shape[1], ids.shape[1]
    has_tail = K < V
    m = s.max(dim=1).values
    safe = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    s_y = s.gather(1, y[:, None])[:, 0]
    s_ids = s.gather(1, ids)
    e = torch.sub(s, safe[:, None], out=scratch).exp_()          # exp(s - max)
    l1 = e.sum(dim=1)
    lse_s1 = l1.log() + safe
    if has_tail:
        tail_e = e.clone().scatter_(1, ids, 0.0)                  # exp(s - max) off the ids
        l_tail = tail_e.sum(dim=1)
        lse_tail = l_tail.log() + safe
        rows = (l_tail == 0).nonzero()[:, 0]
        if rows.numel():
            masked = s[rows].scatter_(1, ids[rows], -math.inf)
            lse_tail[rows] = _lse(masked)
        u = torch.cat([s_ids, lse_tail[:, None]], 1)
    else:
        lse_tail, u = None, s_ids
    logQ = torch.log_softmax(u / tau, 1)
    logP = topk_teacher_buckets(teacher.logprobs.to(s.dtype), tau, has_tail)
    P = logP.exp()
    # an empty teacher tail (P = 0) contributes 0, not 0 * -inf.
    kl = torch.where(P > 0, P * (logP - logQ), torch.zeros_like(P)).sum(1)
    dsoft = logQ.exp() - P
    logp_y, logp_max, n_greater = topk_trust_stats(teacher, y, s.dtype)

    def make_g(c_hard, c_soft):
        # soft: tau * (Q_b - P_b) at the ids, tau * (Q_tail - P_tail) * softmax over the
        # tail elsewhere (c_soft carries tau); hard: q^1 (the -[v = y] is added later)
        if has_tail:
            coef = dsoft[:, -1:] * c_soft / l_tail[:, None].clamp(min=torch.finfo(s.dtype).tiny)
            if rows.numel():   # tail exps underflowed: its softmax from the exact lse
                tail_e[rows] = s[rows].sub_(lse_tail[rows, None]).exp_().scatter_(
                    1, ids[rows], 0.0)
                coef[rows] = dsoft[rows, -1:] * c_soft[rows]
            g = tail_e.mul_(coef)
        else:
            g = torch.zeros_like(e)
        g.scatter_(1, ids, dsoft[:, :K] * c_soft)
        g.addcmul_(e, c_hard / l1[:, None])
        return g
    return lse_s1, s_y, kl, logp_y, logp_max, n_greater, make_g


class _BlockedKD(torch.autograd.Function):
    """Autograd node: the forward computes the loss and (when ``grad``) the gradients
    for grad_output = 1; the backward scales them. The teacher is a plain argument
    (never differentiated)."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, teacher, cfg, grad):
        cdt = compute_dtype(hidden.dtype)
        # bf16 hidden states (bf16 autocast) keep the GEMMs in bf16, where AMX-class
        # CPUs and GPUs are many times faster; everything else is float32
        mdt = torch.bfloat16 if hidden.dtype == torch.bfloat16 else cdt
        h = hidden.detach().to(mdt)
        w = weight.detach().to(mdt)
        b = None if bias is None else bias.detach().to(cdt)
        y = targets.long()
        n, V = h.shape[0], w.shape[0]
        tau, a = cfg.tau, cfg.alpha
        topk = isinstance(teacher, TeacherTopK)
        if topk:
            ids_all = teacher.ids.long()
        else:
            tch = _Teacher(teacher, cfg.ensemble, cdt, mdt)
        need_h, need_w, need_b = (grad and x for x in ctx.needs_input_grad[:3])
        need_b = need_b and b is not None
        grad_h = torch.empty(h.shape, dtype=cdt, device=h.device) if need_h else None
        grad_w = torch.zeros(w.shape, dtype=cdt, device=w.device) if need_w else None
        grad_b = torch.zeros(V, dtype=cdt, device=w.device) if need_b else None
        g = torch.ones((), dtype=cdt, device=h.device) / n   # grad_output = 1, mean over rows
        hards, softs, wts = [], [], []
        scratch = None
        for r0, r1 in _row_blocks(n, V, cfg.chunk_size, h.device.type == "cpu"):
            hb, yb = h[r0:r1], y[r0:r1]
            s = _logits(hb, w, b)
            if scratch is None or scratch.shape != s.shape:
                scratch = torch.empty_like(s)
            if topk:
                tb = TeacherTopK(teacher.ids[r0:r1], teacher.logprobs[r0:r1],
                                 teacher.target_logprob[r0:r1])
                stats = _block_topk(s, yb, ids_all[r0:r1], tb, cfg, scratch)
            else:
                stats = _block_full(s, yb, tch, r0, r1, cfg, scratch)
            lse_s1, s_y, kl, logp_y, logp_max, n_greater, make_g = stats
            logq_y = s_y - lse_s1
            wt = trust_weight(cfg.trust, logp_y=logp_y, logp_max=logp_max,
                              n_greater=n_greater, logq_y=logq_y,
                              k=cfg.trust_k, beta=cfg.trust_beta)
            hards.append(-logq_y)
            softs.append(tau ** 2 * kl)
            wts.append(wt)
            if need_h or need_w or need_b:
                c_hard = ((1 - a * wt) * g)[:, None]
                c_soft = (a * wt * tau * g)[:, None]
                G = make_g(c_hard, c_soft)
                G.scatter_add_(1, yb[:, None], -c_hard)            # the -[v = y] of the hard part
                Gm = G.to(mdt)
                if need_h:
                    grad_h[r0:r1] = Gm @ w
                if need_w:
                    if mdt == cdt:
                        grad_w.addmm_(G.T, hb)
                    else:   # bf16 GEMM result, summed over blocks in float32
                        grad_w += Gm.T.contiguous() @ hb   # (transposed bf16: slow path)
                if need_b:
                    grad_b += G.sum(0)
                del Gm
                del G
            del s, make_g, stats
        del scratch
        hard, soft, wt = torch.cat(hards), torch.cat(softs), torch.cat(wts)
        loss = ((1 - a * wt) * hard + a * wt * soft).mean()
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        parts = (hard.mean(), soft.mean(), wt.mean())
        ctx.mark_non_differentiable(*parts)
        return (loss, *parts)

    @staticmethod
    @once_differentiable   # the hand-written backward is not itself differentiable
    def backward(ctx, g_loss, *_):
        grads = ctx.saved_tensors
        out = []
        for gr, dt in zip(grads, ctx.dtypes):
            out.append(None if gr is None else (gr * g_loss.to(gr.dtype)).to(dt))
        return (*out, None, None, None, None)


def _detached(teacher):
    if isinstance(teacher, TeacherTopK):
        return TeacherTopK(teacher.ids, teacher.logprobs.detach(), teacher.target_logprob.detach())
    return tuple(TeacherLogits(m.hidden.detach(), m.weight.detach(),
                               None if m.bias is None else m.bias.detach()) for m in teacher)


def kd_loss_chunked(hidden: torch.Tensor, weight: torch.Tensor,
                    bias: torch.Tensor | None, targets: torch.Tensor,
                    teacher: tuple[TeacherLogits, ...] | TeacherTopK,
                    cfg: KDConfig) -> KDParts:
    """Blocked loss; same arguments and result as ``kd_loss_reference``.

    hidden (N, d), weight (V, d), bias (V,) or None, targets (N,) long, all rows
    real (N >= 1); extra memory O(N * cfg.chunk_size) plus, when a gradient is
    wanted, the gradients themselves (held from forward to backward).
    """
    grad = torch.is_grad_enabled() and any(
        t is not None and t.requires_grad for t in (hidden, weight, bias))
    loss, hard, soft, trust = _BlockedKD.apply(hidden, weight, bias, targets,
                                               _detached(teacher), cfg, grad)
    return KDParts(loss, hard, soft, trust)
