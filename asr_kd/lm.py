"""The one interface every language model implements: :class:`LanguageModel`.

:class:`~asr_kd.models.LstmLM`, :class:`~asr_kd.models.TeacherEnsemble` and
:class:`~asr_kd.export.OnnxLM` all subclass :class:`LanguageModel`, so the
teacher cache, rescoring and perplexity call the same methods and never ask
which kind of model they hold.  It holds what scoring needs and nothing more;
training reaches further into the one model it trains (an ``LstmLM``: its
``output_weight``, ``forward``), and distillation adapts a teacher itself
(:func:`asr_kd.distill.teacher_logits`).

A model is run in two halves: ``hidden`` (the recurrent body, carrying a state)
and ``logprobs`` (the output side).  What passes between them, ``H``, is
whatever the output side needs: an LSTM's last hidden states, an ensemble's list
of per-member hidden states, an exported graph's log-probabilities.  Callers
never look inside ``H`` or ``state``; they only cut them by rows with
:func:`map_tensors`, under this layout contract:

* ``H``: a tensor, or a list/tuple of tensors, each with the batch on dim 0 and
  time on dim 1: (B, T, ...);
* ``state``: a tensor or nested tuples/lists of tensors, each with the batch on
  dim 1: (layers, B, ...), as ``torch.nn.LSTM``'s (h, c).

Scores are natural-log probabilities.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

import torch
import torch.nn as nn


class LanguageModel(nn.Module, ABC):
    """What rescoring, perplexity and the teacher cache need of an LM (as ESPnet's
    ``AbsLM``): an ``nn.Module`` (so ``eval``, ``to`` and ``parameters``) with the
    methods below; ``token_logprobs`` is written here once from the others."""

    @property
    @abstractmethod
    def vocab_size(self) -> int:
        """V, the size of the vocabulary the model predicts over."""

    @abstractmethod
    def init_state(self, batch_size: int, device=None) -> Any:
        """The zero state for ``batch_size`` rows (batch on dim 1 of each tensor)."""

    @abstractmethod
    def hidden(self, inputs: torch.Tensor, state=None) -> tuple[Any, Any]:
        """inputs (B, T) token ids -> (H, new state); ``state=None`` starts from zero.

        H has the batch on dim 0 and time on dim 1 (see the module docstring).
        """

    @abstractmethod
    def logits(self, H) -> torch.Tensor | list[torch.Tensor]:
        """Unnormalised float32 scores of ``H`` (B, T, V) whose log_softmax are the
        log-probabilities (an ensemble: one such tensor per member)."""

    @abstractmethod
    def logprobs(self, H) -> torch.Tensor:
        """(..., V) float32 natural-log probabilities of the next token, from ``H``."""

    @abstractmethod
    def num_params(self) -> int:
        """Number of trained parameters (0 when they live outside PyTorch)."""

    def token_logprobs(self, inputs: torch.Tensor, targets: torch.Tensor,
                       state=None) -> tuple[torch.Tensor, Any]:
        """log p(target_t | inputs_<=t): (B, T), 0 where the target is ignored (< 0),
        and the new state."""
        H, state = self.hidden(inputs, state)
        return target_logprobs(self.logprobs(H), targets), state


def target_logprobs(lp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """lp (B, T, V), targets (B, T) -> lp at each target (B, T); 0 where target < 0."""
    out = lp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return out.masked_fill(targets < 0, 0.0)


def map_tensors(fn: Callable[[torch.Tensor], torch.Tensor], x):
    """``fn`` applied to every tensor of ``x``, a tensor or nested tuples/lists of them
    (the shape of ``H`` and ``state``); the nesting and its types are kept."""
    if isinstance(x, torch.Tensor):
        return fn(x)
    return type(x)(map_tensors(fn, y) for y in x)
