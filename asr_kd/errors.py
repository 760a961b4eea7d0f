"""The exception types the CLI reports on one line (exit status 2), never as a traceback.

:class:`AsrKdError` is their common base, the one type the CLI catches
(:func:`asr_kd.cli.main`); each subclass says *why* the command cannot go on:

* :class:`InputError`: bad user input (a file missing or malformed, an
  inconsistent model, a bad option value).  Readers give the message the form
  ``path:line: what was expected``;
* :class:`TrainingError`: training cannot go on (it diverged): the input was
  well formed, a setting (learning rate, bf16) has to change;
* :class:`DeviceError`: the device asked for cannot be used (``--device cuda``
  without a CUDA device);
* :class:`DependencyError`: an optional package the feature needs is not
  installed (the message names the ``pip install``);
* :class:`ResourceError`: the machine ran out of memory (or threads) for the
  step; the input may be fine (:func:`out_of_memory` tells such failures from
  damaged files, so that they are not reported as "corrupt").

and, where it is raised, :class:`asr_kd.export.ExportCheckError`: an exported
model failed its self-check against the PyTorch one (nothing written).
"""
from __future__ import annotations

import os


class AsrKdError(Exception):
    """An error the CLI prints as ``asr-kd <command>: error: <message>`` and exits 2.

    ``path`` and ``line`` (optional) locate the cause; the message then reads
    ``path:line: message`` (or ``path: message``).  ``detail`` is the message alone.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None,
                 line: int | None = None):
        self.path = None if path is None else os.fspath(path)
        self.line = line
        self.detail = message
        if self.path is not None and line is not None:
            message = f"{self.path}:{line}: {message}"
        elif self.path is not None:
            message = f"{self.path}: {message}"
        super().__init__(message)


class InputError(AsrKdError):
    """Bad user input (file missing, malformed line, inconsistent model...)."""


class TrainingError(AsrKdError):
    """Training cannot go on (diverged); the message says what to change."""


class DeviceError(AsrKdError):
    """The device asked for is not usable (no CUDA device for ``--device cuda``)."""


class DependencyError(AsrKdError):
    """An optional package the command needs is not installed; the message says what to install."""


class ResourceError(AsrKdError):
    """Out of memory or threads: the input may be fine; the message says what ran out."""


_OOM_TEXT = ("cannot allocate memory", "can't allocate memory", "out of memory",
             "os error 12", "resource temporarily unavailable", "failed to allocate")


def out_of_memory(e: BaseException) -> bool:
    """True when ``e`` (from any library) says that memory or threads ran out
    (MemoryError, ENOMEM/EAGAIN, allocator messages), not that the data is bad."""
    if isinstance(e, MemoryError):
        return True
    if isinstance(e, OSError) and e.errno in (12, 11):   # ENOMEM, EAGAIN
        return True
    text = str(e).lower()
    return any(t in text for t in _OOM_TEXT)
