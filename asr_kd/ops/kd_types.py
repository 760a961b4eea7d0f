"""The types every distillation-loss implementation shares: the two ways of giving a
teacher (:class:`TeacherLogits`, :class:`TeacherTopK`), :class:`KDConfig` (every
distillation setting, the ``kd:`` section of a student config) and :class:`KDParts`
(what ``kd_loss(..., return_parts=True)`` returns).  The maths is in
:mod:`asr_kd.ops.kd_reference`.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, NamedTuple, Sequence, Union

import torch

from .ensemble import COMBINE_MODES
from .trust import TRUST_MODES


@dataclass(frozen=True)
class TeacherLogits:
    """A teacher given by its last hidden states and output layer.

    hidden: (N, D) teacher hidden states, aligned row by row with the student's.
    weight: (V, D) teacher output embedding; V must equal the student's vocab.
    bias:   (V,) or None.
    No gradient ever flows into these tensors.
    """
    hidden: torch.Tensor
    weight: torch.Tensor
    bias: torch.Tensor | None = None


@dataclass(frozen=True)
class TeacherTopK:
    """A teacher given by an offline cache of its top-K predictions at tau = 1.

    ids:            (N, K) long, distinct vocabulary ids per row.
    logprobs:       (N, K) float, log p^1 of those ids.
    target_logprob: (N,) float, log p^1(y) of the true next word.
    """
    ids: torch.Tensor
    logprobs: torch.Tensor
    target_logprob: torch.Tensor


Teacher = Union[TeacherLogits, TeacherTopK, Sequence[TeacherLogits]]


IMPLS = ("auto", "reference", "torch", "triton")
ENSEMBLES = COMBINE_MODES   # (the combine rule and its modes live in ops/ensemble.py)


@dataclass(frozen=True)
class KDConfig:
    """Every distillation setting, in one place: what ``kd_loss`` takes whole, what the
    ``kd:`` section of a student YAML and the ``asr-kd distill`` flags fill in, and what a
    student's ``config.json`` records under ``"kd"``.

    alpha:      weight of the soft term, in [0, 1].
    tau:        temperature, finite and > 0.
    trust:      per-token trust mode, one of :data:`asr_kd.ops.trust.TRUST_MODES`.
    trust_k:    ``rank`` mode: top-k (integer >= 1).
    trust_beta: ``margin`` mode: slope (finite).
    ensemble:   how a list of teachers combines: "prob" or "logit".
    chunk_size: memory bound of the torch implementation (logits per row, integer >= 1).
    impl:       which implementation ``kd_loss`` runs: "auto" | "reference" | "torch" |
                "triton" (the implementations themselves ignore it).
    """
    alpha: float = 0.5
    tau: float = 2.0
    trust: str = "none"
    trust_k: int = 10
    trust_beta: float = 1.0
    ensemble: str = "prob"
    chunk_size: int = 4096
    impl: str = "auto"

    def validate(self, name: Callable[[str], str] | None = None) -> None:
        """Raise ValueError for the first bad setting (impl first, then field order).

        ``name(field)`` says how the message calls a setting: by default the field
        itself (``kd_loss`` prefixes "kd_loss: "); the CLI passes one giving "--alpha"
        or "kd.alpha" so the user reads what to fix where.
        """
        def say(field: str, plain: str | None = None) -> str:
            return name(field) if name is not None else (plain or field)

        def number(field: str):
            v = getattr(self, field)
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ValueError(f"{say(field)} must be a number, got {v!r}")
            return v

        def count(field: str) -> None:   # an integer >= 1 (a float like 3.0 passes)
            v = number(field)
            if not math.isfinite(v) or int(v) != v or v < 1:
                raise ValueError(f"{say(field)} must be an integer >= 1, got {v}")

        if self.impl not in IMPLS:
            raise ValueError(f"unknown {say('impl')} {self.impl!r}; expected one of {IMPLS}")
        if not (0.0 <= number("alpha") <= 1.0):
            raise ValueError(f"{say('alpha')} must be in [0, 1], got {self.alpha}")
        if not (number("tau") > 0 and math.isfinite(self.tau)):
            raise ValueError(f"{say('tau')} must be a finite number > 0, got {self.tau}")
        if self.trust not in TRUST_MODES:
            raise ValueError(f"unknown {say('trust', 'trust mode')} {self.trust!r}; "
                             f"expected one of {TRUST_MODES}")
        count("trust_k")
        if not math.isfinite(number("trust_beta")):
            raise ValueError(f"{say('trust_beta')} must be finite, got {self.trust_beta}")
        if self.ensemble not in ENSEMBLES:
            raise ValueError(f"unknown {say('ensemble', 'ensemble mode')} {self.ensemble!r}; "
                             f"expected one of {ENSEMBLES}")
        count("chunk_size")


class KDParts(NamedTuple):
    """Loss and detached diagnostics, each a scalar tensor.

    loss:  the training loss (with autograd).
    hard:  mean over real tokens of CE(y, q^1), unweighted.
    soft:  mean over real tokens of tau^2 * KL(p^tau || q^tau), unweighted.
    trust: mean trust weight w.
    loss = mean((1 - alpha*w) * hard_t + alpha*w * soft_t) per token t, so it is
    not in general a combination of the means when w varies.
    """
    loss: torch.Tensor
    hard: torch.Tensor
    soft: torch.Tensor
    trust: torch.Tensor
