"""Distillation: the KD objective for the shared training loop.

Per target position (the maths, ensembles and the top-K definition:
:mod:`asr_kd.ops.kd_reference`)::

    L = (1 - alpha*w) * CE(y, q^1) + alpha*w * tau^2 * KL(p^tau || q^tau)

computed by :func:`asr_kd.ops.kd_loss` from the student's hidden states and
output layer, and the teacher either run live (one model or an ensemble,
hidden states + output layer, never full logits stored) or read from an
offline top-K cache (:mod:`asr_kd.teacher_cache`).  The trust weight ``w`` is
our definition (``none``, ``prob``, ``rank``, ``margin``; see
:mod:`asr_kd.ops.trust`): the published paper's exact trust formula could not
be obtained.

A live teacher runs in eval mode under ``no_grad``, frozen; its ``hidden`` comes
from the :class:`asr_kd.lm.LanguageModel` base and :func:`teacher_logits` gives
one TeacherLogits per member, so one model and an ensemble take the same path
(an exported model cannot be a teacher).  In stream mode the teacher's recurrent
state is carried beside the student's (state ``{"s": ..., "t": ...}``); a cache
is read by the batch's canonical target ``positions``.  The student always uses
the teacher's tokenizer.  The settings are one KDConfig: its defaults < the
config's ``kd:`` section < the ``distill`` flags (:func:`asr_kd.config.kd_config`);
``KDConfig.validate`` is the one check, and the config goes whole to ``kd_loss``
and into the student's ``config.json`` as ``kd``.
"""
from __future__ import annotations

import torch

from .ops import KDConfig, TeacherLogits, TeacherTopK, kd_loss


def check_impl(cfg: KDConfig, device) -> None:
    """Refuse, before any work, a loss implementation that cannot run on ``device``:
    ``impl="triton"`` needs a CUDA device and Triton installed (``"auto"`` falls back
    to the torch implementation by itself)."""
    from .errors import DependencyError, DeviceError
    from .ops import triton_available

    if cfg.impl != "triton":
        return
    if torch.device(device).type != "cuda":
        raise DeviceError(f"the Triton KD loss (--kd-impl / kd.impl triton) needs a CUDA device, "
                          f"but this run is on {torch.device(device).type}: use --kd-impl torch "
                          "(or auto, which picks Triton on CUDA)")
    if not triton_available():
        raise DependencyError("the Triton KD loss (--kd-impl / kd.impl triton) needs Triton: "
                              "pip install 'asr_kd[gpu]', or use --kd-impl torch")


def cache_ensemble(cfg: KDConfig, cached: str | None, given: str | None,
                   cache_dir: str) -> KDConfig:
    """``cfg`` with the combine rule a teacher cache was built with (``cached``, from its
    manifest; None for one teacher or a cache that does not record it: unchanged), so that the
    student's config.json states it.  A rule set explicitly (``given`` names where:
    ``"--ensemble"`` or ``"kd.ensemble"``; None: the default) that differs is an
    InputError naming ``cache_dir``: the cache holds the other one."""
    import dataclasses

    from .errors import InputError

    if cached is None or cached == cfg.ensemble:
        return cfg
    if given:
        raise InputError(f"the cache's teachers were combined with ensemble {cached!r}, "
                         f"{given} says {cfg.ensemble!r}: rebuild the cache with "
                         f"cache-teacher --ensemble {cfg.ensemble} (or --config this "
                         "file), or drop the setting", cache_dir)
    return dataclasses.replace(cfg, ensemble=cached)


def teacher_logits(teacher, H) -> list[TeacherLogits]:
    """A teacher's output side as ``kd_loss`` takes it, from its ``hidden`` output ``H``:
    one :class:`TeacherLogits` per member (an ensemble's in member order), hidden
    (B*T, D_m) rows aligned with the flattened (B, T) positions, and the member's
    output weight and bias.  An exported model cannot be a teacher (TypeError): its
    output layer is inside the graph."""
    from .models import LstmLM, TeacherEnsemble

    if isinstance(teacher, TeacherEnsemble):
        return [t for m, h in zip(teacher.members, H) for t in teacher_logits(m, h)]
    if isinstance(teacher, LstmLM):
        return [TeacherLogits(H.reshape(-1, H.shape[-1]), teacher.output_weight,
                              teacher.output_bias)]
    raise TypeError("an exported (ONNX) model cannot be a distillation teacher: its output "
                    "layer is inside the graph; use the PyTorch model folder")


class KDObjective:
    """Training objective: KD loss against a live teacher or a top-K cache.

    State is ``{"s": student state, "t": teacher state}`` so stream mode carries
    both recurrent states across windows.
    """

    def __init__(self, settings: KDConfig, teacher=None, cache=None):
        if (teacher is None) == (cache is None):
            raise ValueError("give exactly one of teacher or cache")
        self.s = settings
        self.teacher = teacher
        self.cache = cache
        if teacher is not None:
            teacher.eval()
            for p in teacher.parameters():
                p.requires_grad_(False)

    def init_state(self, model, batch_size, device):
        t = self.teacher.init_state(batch_size, device) if self.teacher is not None else None
        return {"s": model.init_state(batch_size, device), "t": t}

    def _teacher(self, batch, t_state):
        if self.cache is not None:
            pos = batch.positions.reshape(-1).clamp(min=0)
            ids, lps, tgt = self.cache.lookup(pos)
            return TeacherTopK(ids, lps, tgt), None
        with torch.no_grad():
            self.teacher.eval()
            h, t_state = self.teacher.hidden(batch.inputs, t_state)
            return teacher_logits(self.teacher, h), t_state

    def loss(self, model, batch, state):
        state = state or {"s": None, "t": None}
        h, s_state = model.hidden(batch.inputs, state["s"])
        teacher, t_state = self._teacher(batch, state["t"])
        parts = kd_loss(h.reshape(-1, h.shape[-1]), model.output_weight, model.output_bias,
                        batch.targets.reshape(-1), teacher=teacher, cfg=self.s,
                        return_parts=True)
        n = batch.num_tokens
        stats = {"hard": float(parts.hard) * n, "soft": float(parts.soft) * n,
                 "trust": float(parts.trust) * n}
        return parts.loss * n, stats, {"s": s_state, "t": t_state}
