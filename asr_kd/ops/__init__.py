"""Distillation-loss kernels (the contract: :mod:`asr_kd.ops.dispatch`; the maths:
:mod:`asr_kd.ops.kd_reference`).

``kd_loss`` is the one entry point; ``impl`` picks the plain reference, the
chunked torch implementation or (CUDA, when present) the Triton one.
"""
from .dispatch import kd_loss, triton_available
from .kd_types import KDConfig, KDParts, TeacherLogits, TeacherTopK
from .trust import TRUST_MODES, trust_weight

__all__ = ["kd_loss", "triton_available", "KDConfig", "KDParts", "TeacherLogits",
           "TeacherTopK", "TRUST_MODES", "trust_weight"]
