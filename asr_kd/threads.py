"""How many CPU threads a command may use (the thread budget).

torch (and the OpenMP/MKL pools under it) size their pools by the machine's cores,
whatever other jobs run beside them and whatever CPU set the process was given
(``taskset``, Slurm's ``--cpus-per-task``). Two such jobs on a 2-core machine
oversubscribe it and each runs several times slower than alone (benchmarks/
bench_threads.py). Every ``asr-kd`` command therefore takes ``--threads N``; the
recipe gives each of the K jobs it runs at once N/K, the way Kaldi passes
``--num-threads``.

Precedence: ``--threads N``, else ``OMP_NUM_THREADS`` from the environment (what
torchrun and job schedulers set), else the number of cores this process may run on
(``os.sched_getaffinity``).
"""
from __future__ import annotations

import os
import sys

# The pools that read their size from the environment when first created.
_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
# --threads above this is refused: no machine asr_kd runs on has that many cores, and
# OpenMP pools of millions of threads fail in ways that look like other errors
# (a failed allocation while loading weights reads as a corrupt file).
MAX_THREADS = 1024


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not on Linux
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """``OMP_NUM_THREADS`` when set to a positive integer, else :func:`available_cores`."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if env.strip().isdigit() and int(env) > 0:
        return int(env)
    return available_cores()


def set_threads(n: int | None) -> int:
    """Use ``n`` threads (None: :func:`default_threads`) in this process; returns the count.

    Sets the environment before torch is imported (the commands import it lazily),
    so the OpenMP pool is created at this size, and ``torch.set_num_threads`` when
    torch is already loaded. Child processes inherit the environment.
    """
    n = default_threads() if n is None else int(n)
    if n < 1:
        raise ValueError(f"--threads must be at least 1, got {n}")
    for var in _ENV_VARS:
        os.environ[var] = str(n)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(n)
    return n


def oversubscription(n: int) -> str | None:
    """A one-line warning when ``n`` threads exceed the cores this process may run on
    (they then take turns on the cores: slower, not faster), else None."""
    cores = available_cores()
    if n <= cores:
        return None
    return (f"--threads {n} is more than the {cores} core{'s' if cores > 1 else ''} this process "
            f"may run on: the threads take turns on the cores and the command runs slower; "
            f"use --threads {cores} or less")


def threads_state() -> tuple[dict[str, str | None], int | None]:
    """What :func:`set_threads` changes, for :func:`restore_threads`."""
    torch = sys.modules.get("torch")
    return ({v: os.environ.get(v) for v in _ENV_VARS},
            None if torch is None else torch.get_num_threads())


def restore_threads(state) -> None:
    """Undo :func:`set_threads` (for in-process callers of ``asr_kd.cli.main``)."""
    env, n = state
    for var, val in env.items():
        if val is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = val
    torch = sys.modules.get("torch")
    if torch is not None and n is not None:
        torch.set_num_threads(n)
