"""Choosing the torch device a command runs on (training, rescoring, ppl, caching, export)."""
from __future__ import annotations

import torch

from . import dist
from .errors import DeviceError


def pick_device(name: str = "auto") -> torch.device:
    """The device for ``--device NAME`` (``auto``, ``cpu`` or ``cuda``).

    ``auto`` is CUDA when available, else the CPU; ``cuda`` without a CUDA device
    is a :class:`DeviceError`.  Under torchrun (WORLD_SIZE > 1) ``cuda`` is this
    worker's GPU, ``cuda:LOCAL_RANK``, made the current device.
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    elif name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda asked for, but no CUDA device is available")
    if name == "cuda" and dist.env_world() > 1:
        # under torchrun: one GPU per process, LOCAL_RANK picks it
        torch.cuda.set_device(dist.local_rank())
        return torch.device("cuda", dist.local_rank())
    return torch.device(name)


def cpu_bf16_native() -> bool:
    """Whether this CPU has native bfloat16 matrix instructions (AMX-BF16 or AVX512-BF16).

    Without them torch emulates bf16 and a bf16 step is slower than float32, so
    ``cpu_bf16: auto`` turns bf16 on only where this is true.
    """
    try:
        return bool(torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported())
    except AttributeError:   # a torch without these probes: read the kernel's flags
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                flags = next((ln for ln in f if ln.startswith("flags")), "").split()
        except OSError:
            return False
        return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_cpu_bf16(setting: str) -> bool:
    """``cpu_bf16`` (off | auto | on) -> whether CPU training runs under bf16 autocast."""
    if setting == "on":
        return True
    return setting == "auto" and cpu_bf16_native()
