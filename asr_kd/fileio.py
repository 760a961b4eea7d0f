"""Crash-safe file output and tolerant text input.

Outputs are written to a temporary name in the same folder, fsynced, then
renamed, so a file under its final name is never partial.  Inputs may be
gzip-compressed (by ``.gz`` suffix) and must be UTF-8; a BOM is dropped and
CRLF line ends are accepted.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import tempfile
from typing import Iterator

from .errors import InputError


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path``; on clean exit fsync and rename it.

    On an exception the temporary file is removed and ``path`` is untouched.
    ``.gz`` paths are gzip-compressed.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-" + os.path.basename(path) + ".", dir=folder)
    except OSError as e:
        raise InputError(f"cannot write here: {e.strerror}", path) from None
    binary = "b" in mode
    try:
        with os.fdopen(fd, "wb") as raw:
            if path.endswith(".gz"):
                gz = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0)
                f = gz if binary else io.TextIOWrapper(gz, encoding=encoding, newline="\n")
                yield f
                f.close() if not binary else gz.close()
            else:
                f = raw if binary else io.TextIOWrapper(raw, encoding=encoding, newline="\n")
                yield f
                f.flush()
                if not binary:
                    f.detach()
            raw.flush()
            os.fsync(raw.fileno())
        # mkstemp creates 0600; give the file the usual umask-based mode.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, InputError):
            raise InputError(f"cannot write: {e.strerror or e}", path) from None
        raise


def open_text(path: str | os.PathLike):
    """Open a UTF-8 text file (optionally ``.gz``) for reading; errors name the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError("no such file", path)
    if os.path.isdir(path):
        raise InputError("is a folder, expected a file", path)
    try:
        raw = gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")
    except OSError as e:
        raise InputError(f"cannot open: {e.strerror}", path) from None
    return raw


def read_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, text)`` for each line, 1-based, without the line end.

    Drops a UTF-8 BOM and a trailing ``\\r``.  A non-UTF-8 line raises
    :class:`InputError` naming the file and line.
    """
    path = os.fspath(path)
    with open_text(path) as raw:
        try:
            for n, b in enumerate(raw, 1):
                if n == 1 and b.startswith(b"\xef\xbb\xbf"):
                    b = b[3:]
                try:
                    s = b.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"not valid UTF-8 (byte {e.start})", path, n) from None
                yield n, s.rstrip("\n").rstrip("\r")
        except (OSError, EOFError, gzip.BadGzipFile) as e:
            raise InputError(f"cannot read: {e}", path) from None
