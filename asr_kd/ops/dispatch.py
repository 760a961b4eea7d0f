"""``kd_loss``: the one entry point for the distillation loss.

The loss is specified by :mod:`asr_kd.ops.kd_reference`; this module is the
contract every implementation meets.  It validates everything (a ValueError
starting ``kd_loss: ``: the settings through ``KDConfig.validate``, shapes,
dtypes, devices, vocabulary sizes and, on CPU only, the target and cached-id
ranges and distinct ids, since on CUDA those checks would cost a sync), removes
ignored rows (all rows ignored: loss 0 with exact zero gradients, never NaN),
normalises the teacher to a tuple of TeacherLogits or a TeacherTopK, and hands
the real rows to an implementation:

- ``"reference"``: :func:`asr_kd.ops.kd_reference.kd_loss_reference` (materialises (N, V));
- ``"torch"``: :func:`asr_kd.ops.kd_chunked.kd_loss_chunked` (row blocks of at most
  N x chunk_size logits, gradients computed with the forward pass; any device);
- ``"triton"``: ``asr_kd.ops.kd_triton.kd_loss_triton`` when that module exists
  and imports (CUDA only); it must take ``(hidden, weight, bias, targets,
  teacher, cfg)`` with real rows only, ``teacher`` a tuple of TeacherLogits or
  a TeacherTopK, ``cfg`` a KDConfig, and return a KDParts like the others;
- ``"auto"``: "triton" for CUDA inputs when available, else "torch".

``impl="triton"`` on CPU tensors is a ValueError, without Triton a RuntimeError.
Every implementation returns a KDParts whose ``loss`` has autograd to hidden,
weight and bias (never the teacher) and whose other fields are detached means;
computes in float32 (float64 for float64 inputs) and returns gradients in the
inputs' dtypes; does no gradient work under ``torch.no_grad()``; takes the trust
weight from :func:`asr_kd.ops.trust.trust_weight`.  Only ``reference`` ever
holds an (N, V) tensor.  The tests hold each to the reference on random inputs
at odd shapes, with ignored rows and ``grad_output != 1``:
``tests/test_kd_loss.py`` (``torch`` against ``reference`` in float64 to 1e-10
relative, values and gradients, every trust mode, ensembles, top-K with K = V
equal to the full teacher) and ``tests/test_kd_triton.py`` (interpreter cases;
``gpu`` cases at N = 1000, d = 300, V = 10007: relative error against float64
below 1e-5 for float32 and 1e-2 for bf16).
"""
from __future__ import annotations

import functools
from typing import Sequence

import torch

from .kd_chunked import kd_loss_chunked
from .kd_reference import compute_dtype
from .kd_types import KDConfig, KDParts, TeacherLogits, TeacherTopK


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when ``asr_kd.ops.kd_triton`` exists and imports (Triton installed)."""
    try:
        from . import kd_triton  # noqa: F401
    except ImportError:
        return False
    return True


def kd_loss(student_hidden: torch.Tensor, student_weight: torch.Tensor,
            student_bias: torch.Tensor | None, targets: torch.Tensor, *,
            teacher: TeacherLogits | TeacherTopK | Sequence[TeacherLogits],
            cfg: KDConfig = KDConfig(), ignore_index: int = -100,
            return_parts: bool = False) -> torch.Tensor | KDParts:
    """Mean over real tokens of
    ``(1 - alpha*w) * CE(y, q^1) + alpha*w * tau^2 * KL(p^tau || q^tau)``.

    student_hidden: (N, d) last hidden states (rows = target positions).
    student_weight: (V, d) output embedding; student_bias: (V,) or None.
    targets:        (N,) long next-word ids; ``ignore_index`` rows are skipped.
    teacher:        TeacherLogits, a list of them (ensemble combined by
                    ``cfg.ensemble``: "prob" averages member probabilities at each
                    temperature, "logit" averages logits), or TeacherTopK.
    cfg:            every distillation setting (:class:`KDConfig`; validated here):
                    alpha, tau, trust ("none" | "prob" | "rank" (top-``trust_k``) |
                    "margin" (slope ``trust_beta``); see :mod:`asr_kd.ops.trust`),
                    ensemble, impl ("auto" | "reference" | "torch" | "triton") and
                    chunk_size (memory bound of the torch impl: it works on row blocks
                    of max(1, N * chunk_size // V) rows over the whole vocabulary,
                    i.e. at most N x chunk_size logits per block buffer).

    Returns a scalar float32 (float64 for float64 inputs) tensor with autograd
    to hidden, weight and bias (never the teacher), or with ``return_parts`` a
    :class:`KDParts` (loss, mean hard CE, mean tau^2*KL, mean trust weight).
    If every row is ignored the loss is 0 with zero gradients (and the parts
    are 0), so an all-padding batch cannot poison training with NaN.
    """
    teacher = _validate(student_hidden, student_weight, student_bias, targets,
                        teacher, cfg, ignore_index)
    fn = _select(cfg.impl, student_hidden)

    real = targets != ignore_index
    if not bool(real.all()):
        rows = real.nonzero()[:, 0]
        if rows.numel() == 0:
            parts = _zero_parts(student_hidden, student_weight, student_bias)
            return parts if return_parts else parts.loss
        student_hidden, targets = student_hidden[rows], targets[rows]
        teacher = _take_rows(teacher, rows)
    parts = fn(student_hidden, student_weight, student_bias, targets, teacher, cfg)
    return parts if return_parts else parts.loss


def _select(impl: str, hidden: torch.Tensor):
    if impl == "auto":
        impl = "triton" if hidden.is_cuda and triton_available() else "torch"
    if impl == "reference":
        from .kd_reference import kd_loss_reference
        return kd_loss_reference
    if impl == "torch":
        return kd_loss_chunked
    # impl == "triton"
    if not hidden.is_cuda:
        raise ValueError("impl='triton' needs CUDA tensors; use impl='torch' on CPU")
    if not triton_available():
        raise RuntimeError("impl='triton' is not available (asr_kd.ops.kd_triton is missing "
                           "or Triton is not installed); use impl='torch' or 'auto'")
    from .kd_triton import kd_loss_triton
    return kd_loss_triton


def _take_rows(teacher, rows: torch.Tensor):
    if isinstance(teacher, TeacherTopK):
        return TeacherTopK(teacher.ids[rows], teacher.logprobs[rows], teacher.target_logprob[rows])
    return tuple(TeacherLogits(m.hidden[rows], m.weight, m.bias) for m in teacher)


class _Zero(torch.autograd.Function):
    """Scalar 0 whose gradients are exact zeros (no 0 * inf = NaN)."""

    @staticmethod
    def forward(ctx, hidden, weight, bias):
        ctx.shapes = [(None if t is None else (t.shape, t.dtype, t.device)) for t in (hidden, weight, bias)]
        return torch.zeros((), dtype=compute_dtype(hidden.dtype), device=hidden.device)

    @staticmethod
    def backward(ctx, _g):
        return tuple(None if s is None else torch.zeros(s[0], dtype=s[1], device=s[2])
                     for s in ctx.shapes)


def _zero_parts(hidden, weight, bias) -> KDParts:
    loss = _Zero.apply(hidden, weight, bias)
    z = loss.detach().clone()
    return KDParts(loss, z, z, z)


def _fail(msg: str):
    raise ValueError(f"kd_loss: {msg}")


def _validate(h, w, b, y, teacher, cfg: KDConfig, ignore_index: int):
    """Check everything; return the teacher as a tuple of TeacherLogits or a TeacherTopK."""
    try:
        cfg.validate()
    except ValueError as e:
        raise ValueError(f"kd_loss: {e}") from None

    if h.dim() != 2 or not h.is_floating_point():
        _fail(f"student_hidden must be a float (N, d) tensor, got {tuple(h.shape)} {h.dtype}")
    N, d = h.shape
    if w.dim() != 2 or w.shape[1] != d or not w.is_floating_point():
        _fail(f"student_weight must be a float (V, {d}) tensor, got {tuple(w.shape)}")
    V = w.shape[0]
    if b is not None and tuple(b.shape) != (V,):
        _fail(f"student_bias must be ({V},) or None, got {tuple(b.shape)}")
    if y.shape != (N,) or y.dtype not in (torch.int64, torch.int32):
        _fail(f"targets must be an integer ({N},) tensor, got {tuple(y.shape)} {y.dtype}")
    dev = h.device
    for name, t in (("student_weight", w), ("student_bias", b), ("targets", y)):
        if t is not None and t.device != dev:
            _fail(f"{name} is on {t.device}, student_hidden on {dev}")
    y_real = y[y != ignore_index]
    if not y.is_cuda and y_real.numel() and (y_real.min() < 0 or y_real.max() >= V):
        _fail(f"targets must be in [0, {V}) or ignore_index={ignore_index}")

    if isinstance(teacher, TeacherTopK):
        _validate_topk(teacher, N, V, dev, cfg)
        return teacher
    members = (teacher,) if isinstance(teacher, TeacherLogits) else tuple(teacher)
    if not members:
        _fail("teacher ensemble is empty")
    for i, m in enumerate(members):
        if not isinstance(m, TeacherLogits):
            _fail(f"teacher[{i}] is {type(m).__name__}; an ensemble is a list of TeacherLogits")
        if m.hidden.dim() != 2 or m.hidden.shape[0] != N:
            _fail(f"teacher[{i}].hidden must be ({N}, D), got {tuple(m.hidden.shape)}")
        if not (m.hidden.is_floating_point() and m.weight.is_floating_point()):
            _fail(f"teacher[{i}] hidden and weight must be floating point")
        D = m.hidden.shape[1]
        if m.weight.dim() != 2 or m.weight.shape[1] != D:
            _fail(f"teacher[{i}].weight must be (V, {D}), got {tuple(m.weight.shape)}")
        if m.weight.shape[0] != V:
            _fail(f"vocabulary mismatch: teacher[{i}] has V={m.weight.shape[0]}, student V={V}")
        if m.bias is not None and tuple(m.bias.shape) != (V,):
            _fail(f"teacher[{i}].bias must be ({V},) or None, got {tuple(m.bias.shape)}")
        for t in (m.hidden, m.weight, m.bias):
            if t is not None and t.device != dev:
                _fail(f"teacher[{i}] tensors are on {t.device}, student on {dev}")
    return members


def _validate_topk(t: TeacherTopK, N: int, V: int, dev, cfg: KDConfig):
    if t.ids.dim() != 2 or t.ids.shape[0] != N or t.ids.dtype not in (torch.int64, torch.int32):
        _fail(f"TeacherTopK.ids must be an integer ({N}, K) tensor, got {tuple(t.ids.shape)} {t.ids.dtype}")
    K = t.ids.shape[1]
    if not 1 <= K <= V:
        _fail(f"TeacherTopK K={K} must be in [1, V={V}]")
    if t.logprobs.shape != t.ids.shape or not t.logprobs.is_floating_point():
        _fail(f"TeacherTopK.logprobs must be a float ({N}, {K}) tensor, got {tuple(t.logprobs.shape)}")
    if t.target_logprob.shape != (N,) or not t.target_logprob.is_floating_point():
        _fail(f"TeacherTopK.target_logprob must be ({N},), got {tuple(t.target_logprob.shape)}")
    if cfg.trust == "rank" and cfg.trust_k > K:
        _fail(f"trust_k={cfg.trust_k} exceeds the cached top-K (K={K})")
    for x in (t.ids, t.logprobs, t.target_logprob):
        if x.device != dev:
            _fail(f"TeacherTopK tensors are on {x.device}, student on {dev}")
    if not t.ids.is_cuda and N:   # value checks would cost a GPU sync; CPU only
        if t.ids.min() < 0 or t.ids.max() >= V:
            _fail(f"TeacherTopK.ids must be in [0, {V})")
        srt = t.ids.sort(dim=1).values
        if K > 1 and bool((srt[:, 1:] == srt[:, :-1]).any()):
            _fail("TeacherTopK.ids must be distinct within each row")
