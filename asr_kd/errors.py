"""The one exception type for bad user input.

Every reader raises :class:`InputError` with a message of the form
``path:line: what was expected``; the CLI prints it on one line and exits 2,
so users never see a traceback for bad input.
"""
from __future__ import annotations

import os


class InputError(Exception):
    """Bad user input (file missing, malformed line, inconsistent model...)."""

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
