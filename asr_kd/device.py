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
