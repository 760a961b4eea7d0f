"""Blocked linear + cross-entropy for hard labels, gradients computed with the forward pass.

``fused_linear_ce(h, W, b, y)`` is ``F.cross_entropy(h @ W.T + b, y, reduction="sum")``
(ignored rows skipped) without an (N, V) logits tensor, its log-softmax or its
gradient ever existing: rows are walked in blocks of R rows over the whole
vocabulary (R x V about 2^22 logits on a CPU), and for each block

    z = h_b W^T + b,  lse = logsumexp(z),  loss += sum(lse - z_y)
    G = softmax(z) - onehot(y)            (in place over z)
    grad_h[b] = G W,  grad_W += G^T h_b,  grad_b += sum_rows G

so every logit is computed once and the (N, V) gradient is never zero-filled,
stored or read back.  The unfused step (logits GEMM, log_softmax, its backward, a zero-filled
(N, V) gradient, two more GEMMs) streams the (N, V) tensor through memory about
six times; on a 2-core CPU that memory traffic, not the GEMMs, was most of the
output layer's time (benchmarks/RESULTS.md, "Time to a strong LM").

``matmul_dtype=torch.bfloat16`` (the default for bfloat16 hidden states, i.e.
under bf16 autocast) runs the three GEMMs in bfloat16 (float32
accumulation inside the GEMM; the block's softmax, the loss and the gradient
sums stay float32).  It pays on CPUs with AMX or AVX512-BF16 (see
:func:`asr_kd.device.cpu_bf16_native`), where a bf16 GEMM at these shapes ran
3-25x faster than float32 (benchmarks/RESULTS.md); it changes the numbers at bf16
rounding (about 1e-3 relative per logit), like any bf16 autocast.

The same arithmetic as the distillation kernels (:mod:`asr_kd.ops.kd_chunked`)
with alpha = 0, written for the one case that needs no teacher.
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

# About 2^22 logits (16 MiB in float32) per block: smaller blocks make thin GEMMs that
# ran slower on the reference CPU (2^19: 1.3x the time of the whole step's output
# layer at 2^22, V = 10000), larger ones gain nothing and cost memory.
_CPU_BLOCK_LOGITS = 1 << 22
_MIN_ROWS = 32
_GPU_BLOCK_LOGITS = 1 << 24


def block_rows(n: int, v: int, cpu: bool) -> int:
    """Rows per block for n rows over a vocabulary of v."""
    target = _CPU_BLOCK_LOGITS if cpu else _GPU_BLOCK_LOGITS
    return max(1, min(n, max(_MIN_ROWS, target // max(v, 1))))


class _FusedLinearCE(torch.autograd.Function):
    """Forward: summed CE and (when needed) the gradients for grad_output = 1;
    backward scales them by grad_output."""

    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, matmul_dtype):
        acc = torch.float64 if hidden.dtype == torch.float64 else torch.float32
        # bf16 hidden states (bf16 autocast) keep the GEMMs in bf16
        mdt = matmul_dtype or (torch.bfloat16 if hidden.dtype == torch.bfloat16 else acc)
        h = hidden.detach().to(mdt)
        w = weight.detach().to(mdt)
        b = None if bias is None else bias.detach().to(acc)
        y = targets.long()
        n, V = h.shape[0], w.shape[0]
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        need_b = need_b and b is not None
        grad_h = torch.empty((n, h.shape[1]), dtype=acc, device=h.device) if need_h else None
        grad_w = torch.zeros(w.shape, dtype=acc, device=w.device) if need_w else None
        grad_b = torch.zeros(V, dtype=acc, device=w.device) if need_b else None
        loss = torch.zeros((), dtype=acc, device=h.device)
        r = block_rows(n, V, h.device.type == "cpu")
        for r0 in range(0, n, r):
            r1 = min(n, r0 + r)
            hb, yb = h[r0:r1], y[r0:r1]
            z = (hb @ w.T).to(acc)
            if b is not None:
                z += b
            m = z.max(dim=1, keepdim=True).values
            z_y = z.gather(1, yb[:, None])
            z.sub_(m).exp_()
            s = z.sum(dim=1, keepdim=True)
            loss += (s.log() + m - z_y).sum()
            if need_h or need_w or need_b:
                z.div_(s)                                   # softmax
                z.scatter_add_(1, yb[:, None], torch.full_like(z_y, -1.0))
                G = z.to(mdt)
                if need_h:
                    grad_h[r0:r1] = G @ w
                if need_w:
                    if mdt == acc:
                        grad_w.addmm_(G.T, hb)
                    else:   # a bf16 GEMM returns bf16: sum the blocks in float32.
                        # A transposed bf16 operand took the slow path (2x the time
                        # of copying it contiguous first).
                        grad_w += G.T.contiguous() @ hb
                if need_b:
                    grad_b += z.sum(0)
            del z
        ctx.dtypes = (hidden.dtype, weight.dtype, None if bias is None else bias.dtype)
        ctx.save_for_backward(grad_h, grad_w, grad_b)
        return loss

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        out = []
        for gr, dt in zip(ctx.saved_tensors, ctx.dtypes):
            out.append(None if gr is None else (gr * g.to(gr.dtype)).to(dt))
        return (*out, None, None)


def fused_linear_ce(hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                    targets: torch.Tensor, ignore_index: int = -100,
                    matmul_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Summed cross-entropy of ``hidden @ weight.T + bias`` against ``targets``.

    hidden (N, d) float, weight (V, d), bias (V,) or None, targets (N,) integer ids
    (``ignore_index`` rows are skipped).  Returns a float32 scalar (float64 for float64
    inputs) with autograd to hidden, weight and bias; 0 with zero gradients when every
    row is ignored.  ``matmul_dtype``: None (the inputs' precision) or torch.bfloat16.
    """
    if hidden.dim() != 2 or weight.dim() != 2 or hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"fused_linear_ce: hidden (N, d) and weight (V, d) expected, got "
                         f"{tuple(hidden.shape)} and {tuple(weight.shape)}")
    if targets.shape != hidden.shape[:1]:
        raise ValueError(f"fused_linear_ce: targets must be ({hidden.shape[0]},), "
                         f"got {tuple(targets.shape)}")
    real = targets != ignore_index
    if not bool(real.all()):
        rows = real.nonzero()[:, 0]
        hidden, targets = hidden[rows], targets[rows]
    if hidden.shape[0] == 0:
        zero = hidden.sum() * 0 + weight.sum() * 0
        return zero + (bias.sum() * 0 if bias is not None else 0)
    return _FusedLinearCE.apply(hidden, weight, bias, targets, matmul_dtype)
