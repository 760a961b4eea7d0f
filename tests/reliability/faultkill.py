"""Deterministic kill windows: SIGKILL a command right after its k-th rename.

The kill harness (``killharness.py``) kills real CLI processes at random moments;
a window of a few microseconds (between two renames of one output) is hit only
by chance there.  Here the command runs in a forked child whose ``os.rename``,
``os.replace`` and :func:`asr_kd.fileio._exchange` (the folder swap) are
wrapped: the child kills itself with SIGKILL right after the ``k``-th of these
calls, so every moment between two steps of a write is hit exactly once by
``k = 1, 2, ...`` until a run finishes without reaching ``k``.

Fork, not a new interpreter: torch is imported once, and each run costs
milliseconds.  Run it with one torch thread (the ``one_thread`` fixture).
"""
from __future__ import annotations

import os
import signal
import sys

KILLED = -signal.SIGKILL


def run_killed_after(argv: list[str], k: int | None, cwd: str | None = None) -> int:
    """Run ``asr_kd.cli.main(argv)`` in a forked child killed right after its
    ``k``-th rename (``None``: never).  Returns its exit status, or
    :data:`KILLED`.  The child's stdout and stderr go to /dev/null."""
    return wait(start(argv, k, signal.SIGKILL, cwd))


def start(argv: list[str], k: int | None, sig: int = signal.SIGKILL,
          cwd: str | None = None) -> int:
    """Fork a child running ``asr_kd.cli.main(argv)`` that sends itself ``sig`` right
    after its ``k``-th rename; returns its pid.  With ``SIGSTOP`` the child stops
    there, holding whatever it holds (locks, a half-done write): see :func:`stopped`."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        rc = 70
        try:
            # One thread in the child: GNU OpenMP's worker threads do not survive fork, so
            # a child whose command asks for more threads (the CLI's default is the core
            # count) than a pool the parent already started waits for them forever.
            os.environ["OMP_NUM_THREADS"] = "1"
            from asr_kd import fileio
            from asr_kd.cli import main

            done = [0]

            def counted(f):
                def step(*a, **kw):
                    r = f(*a, **kw)
                    done[0] += 1
                    if done[0] == k:
                        os.kill(os.getpid(), sig)
                    return r
                return step

            os.rename, os.replace = counted(os.rename), counted(os.replace)
            if hasattr(fileio, "_exchange"):
                fileio._exchange = counted(fileio._exchange)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            if cwd:
                os.chdir(cwd)
            rc = main(argv)
        except BaseException:  # noqa: BLE001 - nothing may escape a forked pytest
            rc = 71
        finally:
            os._exit(rc if isinstance(rc, int) else 72)
    return pid


def stopped(pid: int) -> bool:
    """Wait until the child ``pid`` stops (True) or ends (False, status lost: use
    only for children started with SIGSTOP)."""
    _, status = os.waitpid(pid, os.WUNTRACED)
    return os.WIFSTOPPED(status)


def wait(pid: int) -> int:
    """The child's exit status, or minus the signal that ended it."""
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return -os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def kill_at_every_step(argv: list[str], after_each, limit: int = 200) -> int:
    """Kill ``argv`` after its 1st, 2nd, ... rename until a run completes; after each
    kill call ``after_each(k)`` (check the outputs, then usually run again).  Returns
    the number of kills (the renames of one whole run)."""
    for k in range(1, limit + 1):
        rc = run_killed_after(argv, k)
        if rc != KILLED:
            assert rc == 0, f"run not killed at step {k} failed with status {rc}"
            return k - 1
        after_each(k)
    raise AssertionError(f"{argv} still renaming after {limit} steps")
