"""Small helpers for multi-process runs launched by ``torchrun``.

``torchrun`` sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` in every worker; a process group is initialised from them
(NCCL for CUDA devices, gloo on CPU).  Without them (or with ``WORLD_SIZE=1``)
every helper here is a no-op for one process, so the single-process code path
never needs a process group.
"""
from __future__ import annotations

import os

import torch
import torch.distributed as dist


def env_world() -> int:
    """World size torchrun announced (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def env_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else env_rank() if env_world() > 1 else 0


def world() -> int:
    return dist.get_world_size() if active() else env_world()


def is_main() -> bool:
    return rank() == 0


def setup(device: torch.device | str = "cpu") -> tuple[int, int]:
    """Initialise the process group from torchrun's environment if needed; (rank, world).

    NCCL when ``device`` is CUDA, gloo otherwise.  A caller that initialised a
    group itself (tests, notebooks) keeps it.
    """
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    if env_world() <= 1:
        return 0, 1
    device = torch.device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":  # "cuda" without an index: this worker's LOCAL_RANK GPU
        torch.cuda.set_device(device.index if device.index is not None else local_rank())
    dist.init_process_group(backend)
    return dist.get_rank(), dist.get_world_size()


def shutdown() -> None:
    """Destroy the process group, if one was initialised."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if active():
        dist.barrier()


def _reduce_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(values: list[float]) -> list[float]:
    """Element-wise sum of ``values`` over all ranks (float64, exact for counts)."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=_reduce_device())
    dist.all_reduce(t)
    return t.tolist()


def gather_to_main(obj) -> list | None:
    """Every rank's ``obj`` (picklable, CPU tensors allowed) as a list on rank 0, else None."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)  # (all_gather: NCCL support in every torch >= 2.1)
    return out if dist.get_rank() == 0 else None

