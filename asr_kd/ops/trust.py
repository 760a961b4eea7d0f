"""Per-token trust in the teacher, ``w`` in [0, 1], computed per position without gradient.

The published paper's trust formula could not be obtained; this family is our
own definition. Every mode is computed from teacher statistics without
gradient (the student enters only through ``margin``, detached):

- ``none``:   w = 1 (plain Hinton KD);
- ``prob``:   w = p^1(y) / max_v p^1(v): the teacher's confidence in the truth
              relative to its own top guess;
- ``rank``:   w = 1 if y is among the teacher's top-k words else 0, where
              "top-k" means fewer than k words have a strictly larger p^1
              (ties with the k-th word count as inside);
- ``margin``: w = sigmoid(beta * (log p^1(y) - log q^1(y))): follow the teacher
              where it knows the truth better than the student does.

The kernels reduce the teacher to a few per-row statistics (log p^1(y), the
log of its max probability, the count of words ranked above y) and call
:func:`trust_weight`, so every implementation shares one formula.
"""
from __future__ import annotations

import torch

TRUST_MODES = ("none", "prob", "rank", "margin")


def trust_weight(mode: str, *, logp_y: torch.Tensor,
                 logp_max: torch.Tensor | None = None,
                 n_greater: torch.Tensor | None = None,
                 logq_y: torch.Tensor | None = None,
                 k: int = 10, beta: float = 1.0) -> torch.Tensor:
    """Trust weight per row, shape (N,), same dtype as ``logp_y``, no grad.

    logp_y:    (N,) teacher log p^1(y).
    logp_max:  (N,) teacher log max_v p^1(v)            (``prob``).
    n_greater: (N,) number of words with p^1 > p^1(y)    (``rank``).
    logq_y:    (N,) student log q^1(y), detached here    (``margin``).
    """
    if mode == "none":
        return torch.ones_like(logp_y)
    if mode == "prob":
        # clamp: rounding can put log p(y) a hair above the max.
        return torch.exp((logp_y - logp_max).clamp(max=0.0))
    if mode == "rank":
        return (n_greater < k).to(logp_y.dtype)
    if mode == "margin":
        return torch.sigmoid(beta * (logp_y - logq_y.detach()))
    raise ValueError(f"unknown trust mode {mode!r}; expected one of {TRUST_MODES}")
