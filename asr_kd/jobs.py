"""Splitting work over parallel jobs.

Two commands run as ``n`` parallel jobs (``--shard i/n``, or ``RANK/WORLD_SIZE``
under torchrun); job ``i`` of ``n`` is written ``job=(i, n)``.  They split the
work in two different ways, and the words say which:

* **blocks** (``asr-kd rescore``): job ``i`` scores the ``i``-th of ``n``
  contiguous blocks of utterances; the block files and their merge are
  :mod:`asr_kd.sharding`'s.
* **storage shards** (``asr-kd cache-teacher``): the cache is stored in
  fixed-size shards of ``shard_tokens`` rows, whatever the number of jobs; job
  ``i`` computes the storage shards ``s`` with ``s % n == i``
  (:func:`round_robin`).  :mod:`asr_kd.teacher_cache` owns their files.

Under torchrun every rank writes its part, then :func:`finish_under_torchrun`
waits for all ranks and lets rank 0 merge.
"""
from __future__ import annotations

from typing import Callable, TypeVar

from . import dist
from .errors import InputError

T = TypeVar("T")


def job_shard(spec: str | None) -> tuple[int, int]:
    """``--shard i/n`` as (i, n); without it, (RANK, WORLD_SIZE) under torchrun, else (0, 1)."""
    if spec is None:
        return (dist.env_rank(), dist.env_world()) if dist.env_world() > 1 else (0, 1)
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise InputError(f"--shard expects i/n (e.g. 0/4), got {spec!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise InputError(f"--shard {spec}: need 0 <= i < n")
    return i, n


def split_by_torchrun(spec: str | None) -> bool:
    """True when the job split comes from torchrun (no ``--shard``, WORLD_SIZE > 1)."""
    return spec is None and dist.env_world() > 1


def finish_under_torchrun(merge: Callable[[], T]) -> T | None:
    """Wait until every rank has written its part, then run ``merge`` on rank 0 only.

    Returns ``merge()``'s value on rank 0, None on the other ranks.  The barrier
    runs on gloo (CPU): the parts are files, no tensors travel.
    """
    dist.setup("cpu")
    dist.barrier()
    return merge() if dist.is_main() else None


def round_robin(num_shards: int, job: tuple[int, int]) -> list[int]:
    """The storage shards job ``(i, n)`` computes: every ``s`` with ``s % n == i``."""
    i, n = job
    return [s for s in range(num_shards) if s % n == i]
