"""Distillation loss on CUDA: cuBLAS GEMMs per row block + fused Triton row kernels.

Same maths as :mod:`asr_kd.ops.kd_reference` (read its docstring for the loss,
the trust modes and the top-K bucket/temperature definition); same arguments
and result as ``kd_loss_reference`` / ``kd_loss_chunked``. Real rows only (the
dispatcher removes ignored rows).

Scheme ("row-block, gradients in forward"). The rows are walked in blocks of R
rows (R from the scratch budget, see below). For one block:

1. GEMMs (torch -> cuBLAS, float32 output even for bf16 inputs):
   ``S = h_blk @ W^T`` (R, V) and, for a logits teacher, ``T = g_blk @ U^T``
   (R, V) (logit ensembles: the mean of the members' GEMMs). Biases are not
   added here; the kernels add them on load.
2. ``_stats_kernel`` (one program per row, loop over vocab tiles of BLOCK_V):
   one read of S and T; online log-sum-exp in float32 for s, s/tau, t, t/tau
   (one running max per stream serves both temperatures since tau > 0), the
   target logits s_y, t_y, the teacher max, and an online softmax-weighted sum
   of (t - s)/tau, so ``KL = sum_v p^tau_v (t_v - s_v)/tau - LSE(t/tau) +
   LSE(s/tau)`` comes out of the single pass. ``_count_kernel`` (trust="rank"
   only) then counts the words with t_v > t_y (v != y), t_y read from the same
   tile values so it is consistent.
3. Trust weight w per row: torch, through :func:`asr_kd.ops.trust.trust_weight`
   (one formula shared with the other implementations), from per-row stats.
4. ``_grad_kernel``: second read of S and T, writes
   ``G = dL/ds = [(1 - alpha w)(q^1 - onehot) + alpha w tau (q^tau - p^tau)] / n``
   in the input dtype, over S itself when S has that dtype (half inputs).
5. GEMMs: ``grad_h[blk] = G @ W`` (rows owned by the block, written once) and
   ``[grad_W grad_b] += G^T @ [h_blk 1]`` (one float32 (V, d + pad)
   accumulator, cuBLAS ``addmm(out_dtype=float32)`` when available; the ones
   column gives grad_b = G.sum(0) without another read of G).

Why the gradients are computed in forward (as Liger's fused linear CE does)
and not recomputed in backward: the loss is a scalar, so backward only
multiplies the stored gradients by grad_output. That costs exactly the GEMMs
any exact method must do (student forward, teacher forward, G @ W, G^T @ h),
whereas a recompute-in-backward scheme redoes both the student and the
(D/d = 3x larger) teacher GEMM: 10 student-GEMM units instead of 6, i.e. >=
1.67x the GEMM floor even at cuBLAS speed, while the target is 1.3x. How
grad_W is done: accumulated over row blocks into one float32 (V, d) buffer by
cuBLAS (column ownership would need the final row LSEs before any column of G
is known, i.e. a second sweep with recomputed GEMMs; atomics per tile would
be slower than cuBLAS' GEMM-with-accumulate).

Memory: no (N, V) tensor. Scratch per block is R x V x (e [S] + e [T] + g [G])
bytes, e = 2 for bf16/fp16 inputs (logits kept in the input dtype, G written
over S: g = 0) and e = 4, g = 4 for fp32 inputs; plus the float32 (V, d + pad)
gradient accumulator and the stored gradients (freed by backward). R is chosen
so the scratch fits ``ASR_KD_TRITON_SCRATCH_MB`` (default 1024 MiB, R >= 16,
multiple of 16, and R <= N/2 once N >= 32, so a block is never all N rows),
or set ``ASR_KD_TRITON_ROWS``. R trades memory for time: each
block re-reads and re-writes the (V, d) float32 accumulator and pays its own
launches, so small R is slow (H100, V = 131072: 64 MiB 184 ms, 1024 MiB 39 ms,
4096 MiB 35 ms; benchmarks/RESULTS.md). ``ASR_KD_TRITON_LOGITS=float32``
keeps float32 logits for half inputs (slower; default ``auto``). The keyword
arguments ``rows``, ``scratch_mb``, ``logits_dtype`` of :func:`kd_loss_triton`
override these (benchmarks).

Top-K teacher: only the student GEMM. The student's logits at the cached ids
and at y are gathered in torch, the ids are overwritten with -inf in S so the
stats kernel's LSE of the row *is* the tail bucket's LSE (exact, no
cancellation), the (R, K+1) bucket algebra is the torch code shared with the
reference (``topk_teacher_buckets``, ``topk_trust_stats``), the grad kernel
writes the tail part ``c_tail * exp(s - lse_tail)`` plus the hard part, and a
torch scatter writes the K id columns.

Fallbacks (transparent, same result type): a probability-averaged ensemble of
several members (``ensemble="prob"``: log p^tau needs every member's final LSE
per element, which does not fit the single-pass stats) and float64 inputs
(the kernels compute in float32) go to :func:`kd_loss_chunked`.

Under ``TRITON_INTERPRET=1`` the kernels run on CPU tensors (tests); the
kernels use only loads/stores with masks, tl.where, reductions and exp/log.
"""
from __future__ import annotations

import os

import torch
import triton
import triton.language as tl
from torch.autograd.function import once_differentiable

from .kd_chunked import kd_loss_chunked
from .kd_reference import topk_teacher_buckets, topk_trust_stats
from .kd_types import KDConfig, KDParts, TeacherLogits, TeacherTopK
from .trust import trust_weight

# coef columns handed to the grad kernel
_NCOEF = 8
_C_LSE1, _C_LSET_S, _C_LSET_T, _C_HARD, _C_SOFT, _C_LSE_TAIL, _C_TAIL = range(7)
# stats columns written by the stats kernel
_NSTAT = 8
_S_LSE1, _S_LSET, _S_SY, _T_LSE1, _T_LSET, _T_TY, _T_MAX, _KL = range(8)
# The same layout for the kernels: a @triton.jit function may read a module global
# only when it is a tl.constexpr instance (a plain int, or one annotated
# `: tl.constexpr`, is refused), so each column above has a constexpr twin here.
(_K_NCOEF, _K_C_LSE1, _K_C_LSET_S, _K_C_LSET_T, _K_C_HARD, _K_C_SOFT, _K_C_LSE_TAIL,
 _K_C_TAIL) = map(tl.constexpr, (_NCOEF, _C_LSE1, _C_LSET_S, _C_LSET_T, _C_HARD, _C_SOFT,
                                 _C_LSE_TAIL, _C_TAIL))
(_K_NSTAT, _K_S_LSE1, _K_S_LSET, _K_S_SY, _K_T_LSE1, _K_T_LSET, _K_T_TY, _K_T_MAX,
 _K_KL) = map(tl.constexpr, (_NSTAT, _S_LSE1, _S_LSET, _S_SY, _T_LSE1, _T_LSET, _T_TY,
                             _T_MAX, _KL))


# ----------------------------------------------------------------- kernels

@triton.jit
def _stats_kernel(S, T, BS, BT, Y, OUT, V, inv_tau,
                  HAS_T: tl.constexpr, HAS_BS: tl.constexpr, HAS_BT: tl.constexpr,
                  TAU_MODE: tl.constexpr, BLOCK_V: tl.constexpr):
    """Per row: LSE(s), LSE(s/tau), s_y [, LSE(t), LSE(t/tau), t_y, max t, KL].

    TAU_MODE 2 (tau == 2): exp(x) = exp(x/2)^2, one exp per element and stream
    instead of two; 1 (tau == 1): the two temperatures coincide; 0: generic.
    (Measured on an H100: 2-5 % faster end to end; the passes are bound by
    memory traffic more than by the exps.)"""
    row = tl.program_id(0).to(tl.int64)
    y = tl.load(Y + row).to(tl.int64)
    s_row = S + row * V
    t_row = T + row * V
    m_s = float("-inf")
    l1_s = 0.0
    lt_s = 0.0
    s_y = 0.0
    m_t = float("-inf")
    l1_t = 0.0
    lt_t = 0.0
    acc = 0.0
    t_y = 0.0
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        mask = cols < V
        s = tl.load(s_row + cols, mask=mask, other=float("-inf")).to(tl.float32)
        if HAS_BS:
            s += tl.load(BS + cols, mask=mask, other=0.0).to(tl.float32)
        # safe running max: a tile (or row) may be all -inf (top-K tail rows)
        m_new = tl.maximum(m_s, tl.max(s, 0))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        d = s - m_safe
        if TAU_MODE == 2:
            e = tl.exp(d * 0.5)
            r = tl.exp((m_s - m_safe) * 0.5)
            l1_s = l1_s * (r * r) + tl.sum(e * e, 0)
            lt_s = lt_s * r + tl.sum(e, 0)
        elif TAU_MODE == 1:
            l1_s = l1_s * tl.exp(m_s - m_safe) + tl.sum(tl.exp(d), 0)
            lt_s = l1_s
        else:
            l1_s = l1_s * tl.exp(m_s - m_safe) + tl.sum(tl.exp(d), 0)
            lt_s = lt_s * tl.exp((m_s - m_safe) * inv_tau) + tl.sum(tl.exp(d * inv_tau), 0)
        m_s = m_new
        s_y += tl.sum(tl.where(cols == y, s, 0.0), 0)
        if HAS_T:
            t = tl.load(t_row + cols, mask=mask, other=float("-inf")).to(tl.float32)
            if HAS_BT:
                t += tl.load(BT + cols, mask=mask, other=0.0).to(tl.float32)
            mt_new = tl.maximum(m_t, tl.max(t, 0))
            a_t = tl.exp((m_t - mt_new) * inv_tau)
            e_t = tl.exp((t - mt_new) * inv_tau)
            if TAU_MODE == 2:
                l1_t = l1_t * (a_t * a_t) + tl.sum(e_t * e_t, 0)
            elif TAU_MODE == 1:
                l1_t = l1_t * a_t + tl.sum(e_t, 0)
            else:
                l1_t = l1_t * tl.exp(m_t - mt_new) + tl.sum(tl.exp(t - mt_new), 0)
            lt_t = lt_t * a_t + tl.sum(e_t, 0)
            acc = acc * a_t + tl.sum(tl.where(mask, e_t * ((t - s) * inv_tau), 0.0), 0)
            m_t = mt_new
            t_y += tl.sum(tl.where(cols == y, t, 0.0), 0)
    ms_safe = tl.where(m_s == float("-inf"), 0.0, m_s)
    lse1_s = ms_safe + tl.log(l1_s)
    lset_s = ms_safe * inv_tau + tl.log(lt_s)
    o = OUT + row * _K_NSTAT
    tl.store(o + _K_S_LSE1, lse1_s)
    tl.store(o + _K_S_LSET, lset_s)
    tl.store(o + _K_S_SY, s_y)
    if HAS_T:
        lset_t = m_t * inv_tau + tl.log(lt_t)
        tl.store(o + _K_T_LSE1, m_t + tl.log(l1_t))
        tl.store(o + _K_T_LSET, lset_t)
        tl.store(o + _K_T_TY, t_y)
        tl.store(o + _K_T_MAX, m_t)
        tl.store(o + _K_KL, acc / lt_t - lset_t + lset_s)


@triton.jit
def _count_kernel(T, BT, Y, STATS, OUT, V, HAS_BT: tl.constexpr, BLOCK_V: tl.constexpr):
    """Per row: number of words v != y with t_v > t_y (trust="rank")."""
    row = tl.program_id(0).to(tl.int64)
    y = tl.load(Y + row).to(tl.int64)
    t_y = tl.load(STATS + row * _K_NSTAT + _K_T_TY)
    t_row = T + row * V
    cnt = 0
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        mask = cols < V
        t = tl.load(t_row + cols, mask=mask, other=float("-inf")).to(tl.float32)
        if HAS_BT:
            t += tl.load(BT + cols, mask=mask, other=0.0).to(tl.float32)
        cnt += tl.sum(((t > t_y) & (cols != y) & mask).to(tl.int32), 0)
    tl.store(OUT + row, cnt)


@triton.jit
def _grad_kernel(S, T, BS, BT, Y, COEF, G, V, inv_tau,
                 HAS_T: tl.constexpr, TAIL: tl.constexpr, HAS_BS: tl.constexpr,
                 HAS_BT: tl.constexpr, TAU_MODE: tl.constexpr, BLOCK_V: tl.constexpr):
    """G = c_hard (q^1 - onehot) [+ c_soft (q^tau - p^tau)] [+ c_tail exp(s - lse_tail)]."""
    row = tl.program_id(0).to(tl.int64)
    y = tl.load(Y + row).to(tl.int64)
    c = COEF + row * _K_NCOEF
    lse1 = tl.load(c + _K_C_LSE1)
    lset_s = tl.load(c + _K_C_LSET_S)
    lset_t = tl.load(c + _K_C_LSET_T)
    c_hard = tl.load(c + _K_C_HARD)
    c_soft = tl.load(c + _K_C_SOFT)
    lse_tail = tl.load(c + _K_C_LSE_TAIL)
    c_tail = tl.load(c + _K_C_TAIL)
    s_row = S + row * V
    t_row = T + row * V
    g_row = G + row * V
    # q^tau = exp((s - lse1)/tau) * exp(lse1/tau - lse(s/tau)); for tau = 2 the
    # first factor is the square root of q^1, so q^1 and q^tau share one exp
    if HAS_T:
        k_tau = tl.exp(lse1 * inv_tau - lset_s)
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        mask = cols < V
        s = tl.load(s_row + cols, mask=mask, other=float("-inf")).to(tl.float32)
        if HAS_BS:
            s += tl.load(BS + cols, mask=mask, other=0.0).to(tl.float32)
        if TAU_MODE == 2:
            a = tl.exp((s - lse1) * 0.5)
            q1 = a * a
        else:
            q1 = tl.exp(s - lse1)
        g = c_hard * (q1 - tl.where(cols == y, 1.0, 0.0))
        if HAS_T:
            if TAU_MODE == 2:
                q_tau = a * k_tau
            elif TAU_MODE == 1:
                q_tau = q1 * k_tau
            else:
                q_tau = tl.exp(s * inv_tau - lset_s)
            t = tl.load(t_row + cols, mask=mask, other=float("-inf")).to(tl.float32)
            if HAS_BT:
                t += tl.load(BT + cols, mask=mask, other=0.0).to(tl.float32)
            g += c_soft * (q_tau - tl.exp(t * inv_tau - lset_t))
        if TAIL:
            g += c_tail * tl.exp(s - lse_tail)
        tl.store(g_row + cols, g.to(G.dtype.element_ty), mask=mask)


# ----------------------------------------------------------------- helpers

def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _block_v(V: int) -> int:
    """Vocabulary tile of the row kernels (``ASR_KD_TRITON_BLOCK_V`` overrides, a power of 2)."""
    cap = int(os.environ.get("ASR_KD_TRITON_BLOCK_V", 2048))
    return min(triton.next_power_of_2(cap), triton.next_power_of_2(max(V, 16)))


def _warps(block_v: int) -> dict:
    if _interpreting():
        return {}
    if os.environ.get("ASR_KD_TRITON_WARPS"):
        return {"num_warps": int(os.environ["ASR_KD_TRITON_WARPS"])}
    return {"num_warps": 8 if block_v >= 2048 else 4}


_MM_OUT_DTYPE = [None]   # None = not probed yet; True/False = torch.mm(out_dtype=) works


def _mm(a: torch.Tensor, b: torch.Tensor, out_dtype: torch.dtype) -> torch.Tensor:
    """a @ b with a float32 (or ``out_dtype``) result, accumulation in float32."""
    if a.dtype == out_dtype and b.dtype == out_dtype:
        return a @ b
    if a.is_cuda and a.dtype == b.dtype and out_dtype == torch.float32 \
            and a.dtype in (torch.bfloat16, torch.float16) and _MM_OUT_DTYPE[0] is not False:
        try:
            r = torch.mm(a, b, out_dtype=torch.float32)
            _MM_OUT_DTYPE[0] = True
            return r
        except (TypeError, RuntimeError, NotImplementedError):
            _MM_OUT_DTYPE[0] = False
    if out_dtype == torch.float32:
        return a.float() @ b.float()
    return (a.to(out_dtype) @ b.to(out_dtype))


_ADDMM_OUT_DTYPE = [None]


def _addmm_f32_(acc: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> None:
    """acc (float32) += a @ b, a and b in the input dtype."""
    if a.dtype == torch.float32 and b.dtype == torch.float32:
        acc.addmm_(a, b)
        return
    if a.is_cuda and a.dtype == b.dtype and a.dtype in (torch.bfloat16, torch.float16) \
            and _ADDMM_OUT_DTYPE[0] is not False:
        try:
            torch.addmm(acc, a, b, out_dtype=torch.float32, out=acc)
            _ADDMM_OUT_DTYPE[0] = True
            return
        except (TypeError, RuntimeError, NotImplementedError):
            _ADDMM_OUT_DTYPE[0] = False
    acc.add_(_mm(a, b, torch.float32))


def _rows_per_block(N: int, V: int, bytes_per_row: int, rows, scratch_mb) -> int:
    if rows is None and os.environ.get("ASR_KD_TRITON_ROWS"):
        rows = int(os.environ["ASR_KD_TRITON_ROWS"])
    if rows is None:
        mb = float(scratch_mb if scratch_mb is not None
                   else os.environ.get("ASR_KD_TRITON_SCRATCH_MB", 1024))
        rows = int(mb * 2 ** 20) // max(bytes_per_row, 1)
        rows = max(16, rows // 16 * 16)
        # at least two blocks once N >= 32: a row block is never the whole (N, V)
        if N >= 32:
            rows = min(rows, max(16, (N + 1) // 2 // 16 * 16))
    return max(1, min(int(rows), N))


def _logits_dtype(logits_dtype, in_dtype: torch.dtype) -> torch.dtype:
    """Scratch dtype of the logits. "auto" (default): the inputs' dtype when it is
    bf16/fp16 (the GEMM rounds to it, as eager torch does; measured within the
    1e-2 bf16 bound and 1.2-1.6x faster at V >= 32768 on an H100, see
    benchmarks/RESULTS.md), float32 otherwise."""
    name = str(logits_dtype or os.environ.get("ASR_KD_TRITON_LOGITS", "auto"))
    half = in_dtype in (torch.bfloat16, torch.float16)
    if name == "auto":
        return in_dtype if half else torch.float32
    dt = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
          "bf16": torch.bfloat16}.get(name.replace("torch.", ""))
    if dt is None:
        raise ValueError(f"ASR_KD_TRITON_LOGITS must be auto, float32 or bfloat16, got {name!r}")
    # half-precision scratch only makes sense for half-precision inputs
    return in_dtype if (half and dt != torch.float32) else torch.float32


# ----------------------------------------------------------------- the forward sweep

def _sweep(h, w, b, y, teacher, cfg: KDConfig, need, rows=None, scratch_mb=None,
           logits_dtype=None):
    """Walk row blocks; return per-row (hard, soft, w) and the unscaled
    gradients (grad_h, grad_w float32, grad_b float32) for grad_output = 1."""
    N, d = h.shape
    V = w.shape[0]
    dev, tau, alpha = h.device, float(cfg.tau), float(cfg.alpha)
    inv_tau = 1.0 / tau
    tau_mode = 2 if tau == 2.0 else (1 if tau == 1.0 else 0)
    need_h, need_w, need_b = need
    topk = isinstance(teacher, TeacherTopK)
    ldt = _logits_dtype(logits_dtype, h.dtype)
    gdt = h.dtype
    esz = torch.empty((), dtype=ldt).element_size()
    # G overwrites S in place when they share a dtype (half inputs, half logits)
    g_inplace = ldt == gdt
    per_row = V * (esz * (1 if topk else 2)
                   + (0 if g_inplace else torch.empty((), dtype=gdt).element_size()))
    R = _rows_per_block(N, V, per_row, rows, scratch_mb)
    BV = _block_v(V)
    kw = _warps(BV)
    f32 = torch.float32

    hard = torch.empty(N, dtype=f32, device=dev)
    soft = torch.empty(N, dtype=f32, device=dev)
    wt = torch.empty(N, dtype=f32, device=dev)
    grad_h = torch.empty(N, d, dtype=h.dtype, device=dev) if need_h else None
    # grad_b rides in the grad_W GEMM: h gets a column of ones (padded to a
    # multiple of 8 columns for tensor cores), so G^T [h 1] yields G.sum(0) in
    # its column d without another read of G.
    fold_b = need_w and need_b
    d_acc = ((d + 1 + 7) // 8) * 8 if fold_b else d
    grad_wb = torch.zeros(V, d_acc, dtype=f32, device=dev) if need_w else None
    grad_b = None
    if need_b and not fold_b:
        grad_b = torch.zeros(V, dtype=f32, device=dev)
    h_aug = None
    if fold_b:
        h_aug = torch.zeros(min(R, N), d_acc, dtype=h.dtype, device=dev)
        h_aug[:, d] = 1
    any_grad = need_h or need_w or need_b
    if w.dtype != h.dtype:          # mixed-precision student: GEMMs in hidden's dtype
        w = w.to(h.dtype)
    wT = w.t()
    has_bs = b is not None
    bs = b if has_bs else torch.zeros(1, dtype=f32, device=dev)

    if not topk:
        members = teacher
        gs = [m.hidden.detach() for m in members]
        UT = [m.weight.detach().t() for m in members]
        tb = [m.bias.detach().to(f32) for m in members if m.bias is not None]
        has_bt = bool(tb)
        bt = (torch.stack(tb).sum(0) / len(members)) if has_bt else bs
    else:
        K = teacher.ids.shape[1]
        has_tail = K < V
        ids_all = teacher.ids.long()
        logP_all = topk_teacher_buckets(teacher.logprobs.to(f32), tau, has_tail)
        P_all = logP_all.exp()
        logp_y_all, logp_max_all, n_greater_all = topk_trust_stats(teacher, y, f32)

    for r0 in range(0, N, R):
        r1 = min(r0 + R, N)
        n = r1 - r0
        hb, yb = h[r0:r1], y[r0:r1].contiguous()
        S = _mm(hb, wT, ldt).contiguous()
        stats = torch.empty(n, _NSTAT, dtype=f32, device=dev)
        coef = torch.zeros(n, _NCOEF, dtype=f32, device=dev)
        if not topk:
            T = _mm(gs[0][r0:r1], UT[0], ldt)
            for g_m, U_m in zip(gs[1:], UT[1:]):       # logit-averaged ensemble
                T += _mm(g_m[r0:r1], U_m, ldt)
            if len(gs) > 1:
                T /= len(gs)
            T = T.contiguous()
            _stats_kernel[(n,)](S, T, bs, bt, yb, stats, V, inv_tau, HAS_T=True,
                                HAS_BS=has_bs, HAS_BT=has_bt, TAU_MODE=tau_mode, BLOCK_V=BV, **kw)
            lse1_s, lset_s, s_y = stats[:, _S_LSE1], stats[:, _S_LSET], stats[:, _S_SY]
            t_lse1 = stats[:, _T_LSE1]
            logp_y = stats[:, _T_TY] - t_lse1
            logp_max = stats[:, _T_MAX] - t_lse1
            n_greater = None
            if cfg.trust == "rank":
                n_greater = torch.empty(n, dtype=torch.int32, device=dev)
                _count_kernel[(n,)](T, bt, yb, stats, n_greater, V, HAS_BT=has_bt,
                                    BLOCK_V=BV, **kw)
            kl = stats[:, _KL]
            logq_y = s_y - lse1_s
            wb = trust_weight(cfg.trust, logp_y=logp_y, logp_max=logp_max,
                              n_greater=n_greater, logq_y=logq_y,
                              k=cfg.trust_k, beta=cfg.trust_beta)
            coef[:, _C_LSE1], coef[:, _C_LSET_S] = lse1_s, lset_s
            coef[:, _C_LSET_T] = stats[:, _T_LSET]
            coef[:, _C_SOFT] = alpha * wb * tau / N
        else:
            T = S   # unused by the kernels (HAS_T=False)
            ib = ids_all[r0:r1]
            s_ids = S.gather(1, ib).to(f32)
            s_y = S.gather(1, yb.long()[:, None])[:, 0].to(f32)
            if has_bs:
                s_ids = s_ids + b[ib].to(f32)
                s_y = s_y + b[yb.long()].to(f32)
            S.scatter_(1, ib, float("-inf"))
            _stats_kernel[(n,)](S, T, bs, bs, yb, stats, V, inv_tau, HAS_T=False,
                                HAS_BS=has_bs, HAS_BT=False, TAU_MODE=tau_mode, BLOCK_V=BV, **kw)
            lse_ids = torch.logsumexp(s_ids, 1)
            if has_tail:
                lse_tail = stats[:, _S_LSE1]
                lse1_s = torch.logaddexp(lse_tail, lse_ids)
                u = torch.cat([s_ids, lse_tail[:, None]], 1)
            else:
                lse1_s, u = lse_ids, s_ids
            logQ = torch.log_softmax(u * inv_tau, 1)
            logP, P = logP_all[r0:r1], P_all[r0:r1]
            kl = torch.where(P > 0, P * (logP - logQ), torch.zeros_like(P)).sum(1)
            dsoft = logQ.exp() - P
            logq_y = s_y - lse1_s
            wb = trust_weight(cfg.trust, logp_y=logp_y_all[r0:r1],
                              logp_max=logp_max_all[r0:r1],
                              n_greater=n_greater_all[r0:r1], logq_y=logq_y,
                              k=cfg.trust_k, beta=cfg.trust_beta)
            c_soft = alpha * wb * tau / N
            coef[:, _C_LSE1] = lse1_s
            if has_tail:
                coef[:, _C_LSE_TAIL] = lse_tail
                coef[:, _C_TAIL] = c_soft * dsoft[:, -1]
        c_hard = (1.0 - alpha * wb) / N
        coef[:, _C_HARD] = c_hard
        hard[r0:r1] = lse1_s - s_y
        soft[r0:r1] = tau * tau * kl
        wt[r0:r1] = wb
        if not any_grad:
            continue
        G = S if (g_inplace and S.dtype == gdt) else torch.empty(n, V, dtype=gdt, device=dev)
        _grad_kernel[(n,)](S, T, bs, bt if not topk else bs, yb, coef, G, V, inv_tau,
                           HAS_T=not topk, TAIL=topk and has_tail, HAS_BS=has_bs,
                           HAS_BT=(has_bt if not topk else False), TAU_MODE=tau_mode,
                           BLOCK_V=BV, **kw)
        if topk:   # the K cached-id columns: hard part + bucket soft part
            vals = (c_hard[:, None] * ((s_ids - lse1_s[:, None]).exp() - (ib == yb.long()[:, None]).to(f32))
                    + c_soft[:, None] * dsoft[:, :K])
            G.scatter_(1, ib, vals.to(gdt))
        del S, T
        if need_h:
            torch.mm(G, w, out=grad_h[r0:r1])
        if fold_b:
            h_aug[:n, :d] = hb
            _addmm_f32_(grad_wb, G.t(), h_aug[:n])
        elif need_w:
            _addmm_f32_(grad_wb, G.t(), hb)
        if grad_b is not None:
            grad_b += G.sum(0, dtype=f32)
        del G
    grad_w = None
    if need_w:
        grad_w = grad_wb[:, :d] if fold_b else grad_wb
        if fold_b:
            grad_b = grad_wb[:, d]
    return hard, soft, wt, grad_h, grad_w, grad_b


class _TritonKD(torch.autograd.Function):
    """Gradients are computed in forward (grad_output = 1) and scaled in backward."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, cfg, teacher, opts):
        on = opts.pop("grad_enabled", True)   # no gradient work under torch.no_grad()
        need = (on and ctx.needs_input_grad[0], on and ctx.needs_input_grad[1],
                on and bias is not None and ctx.needs_input_grad[2])
        h, w = hidden.detach(), weight.detach()
        b = None if bias is None else bias.detach()
        # autocast off: the sweep picks its GEMM dtypes itself (under a caller's
        # autocast the logits would come back in the autocast dtype, not the scratch's)
        with torch.autocast(device_type=h.device.type, enabled=False):
            hard, soft, wt, gh, gw, gb = _sweep(h, w, b, targets, teacher, cfg, need, **opts)
        a = cfg.alpha
        loss = ((1 - a * wt) * hard + a * wt * soft).mean()
        # .contiguous(): grad_W / grad_b may be column views of one accumulator
        ctx.grads = (gh, None if gw is None else gw.to(weight.dtype).contiguous(),
                     None if gb is None else gb.to(bias.dtype).contiguous())
        parts = (hard.mean(), soft.mean(), wt.mean())
        ctx.mark_non_differentiable(*parts)
        return (loss, *parts)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_loss, *_):
        gh, gw, gb = ctx.grads
        ctx.grads = None          # the stored gradients are scaled in place, once
        out = []
        for gr in (gh, gw, gb):
            out.append(None if gr is None else gr.mul_(g_loss.to(gr.dtype)))
        return (*out, None, None, None, None)


def kd_loss_triton(hidden: torch.Tensor, weight: torch.Tensor,
                   bias: torch.Tensor | None, targets: torch.Tensor,
                   teacher: tuple[TeacherLogits, ...] | TeacherTopK,
                   cfg: KDConfig, *, rows: int | None = None,
                   scratch_mb: float | None = None,
                   logits_dtype: str | None = None) -> KDParts:
    """Fused loss; same arguments and result as ``kd_loss_reference``.

    hidden (N, d), weight (V, d), bias (V,) or None, targets (N,), all rows
    real (N >= 1); CUDA tensors (or CPU under ``TRITON_INTERPRET=1``). A
    probability-averaged ensemble of several members and float64 inputs fall
    back to :func:`kd_loss_chunked`. ``rows`` / ``scratch_mb`` /
    ``logits_dtype`` override the row-block size, the scratch budget and the
    logits scratch dtype (see the module docstring).
    """
    if hidden.dtype == torch.float64 or weight.dtype == torch.float64 or (
            not isinstance(teacher, TeacherTopK) and len(teacher) > 1
            and cfg.ensemble == "prob"):
        return kd_loss_chunked(hidden, weight, bias, targets, teacher, cfg)
    if isinstance(teacher, TeacherLogits):
        teacher = (teacher,)
    if isinstance(teacher, TeacherTopK):
        teacher = TeacherTopK(teacher.ids.detach(), teacher.logprobs.detach(),
                              teacher.target_logprob.detach())
    opts = dict(rows=rows, scratch_mb=scratch_mb, logits_dtype=logits_dtype,
                grad_enabled=torch.is_grad_enabled())
    loss, hard, soft, trust = _TritonKD.apply(hidden, weight, bias, targets, cfg,
                                              teacher, opts)
    return KDParts(loss, hard, soft, trust)


__all__ = ["kd_loss_triton"]
