"""Crash-safe file output and tolerant text input.

Outputs are written to a temporary name in the same folder
(``.tmp-NAME.HOST-PID.XXXX``), fsynced, then renamed, and the folder is
fsynced, so a file under its final name is never partial, even after kill -9
or a power loss.  A temporary left by a killed writer on this host is removed
by the next write of the same file.  :class:`FileSet` puts several files in
place together (a model folder): a failed write changes none of them.  Write
errors (disk full, read-only folder) become a one-line :class:`InputError`
naming the file.

Inputs may be gzip-compressed (by ``.gz`` suffix) and must be UTF-8; a BOM is
dropped and CRLF line ends are accepted.  Inputs are bounded, so that a gzip
bomb, ``/dev/zero`` or a file without line ends stops with one line naming the
file instead of exhausting memory: a line holds at most ``ASR_KD_MAX_LINE_MB``
MiB (default 64), a JSON document read whole (HyPoradise N-best JSON) at most
``ASR_KD_MAX_DOC_MB`` MiB (default 1024), and a small JSON or YAML file
(weights, configs, manifests) at most 64 MiB.
"""
from __future__ import annotations

import contextlib
import errno
import functools
import gzip
import io
import json
import os
import re
import shutil
import socket
import stat
import tempfile
import zlib
from typing import Callable, Iterator

from .errors import InputError

SMALL_DOC_BYTES = 64 << 20   # weights, configs, manifests, sidecars: far smaller in practice


def _env_mib(var: str, default: int) -> int:
    """Bytes from a MiB count in the environment (a positive integer), else ``default`` MiB."""
    v = os.environ.get(var, "").strip()
    return (int(v) if v.isdigit() and int(v) > 0 else default) << 20


def max_line_bytes() -> int:
    """The longest line a text input may have (``ASR_KD_MAX_LINE_MB``, default 64 MiB)."""
    return _env_mib("ASR_KD_MAX_LINE_MB", 64)


def max_doc_bytes() -> int:
    """The largest JSON document read whole (``ASR_KD_MAX_DOC_MB``, default 1024 MiB)."""
    return _env_mib("ASR_KD_MAX_DOC_MB", 1024)


def _mib(n: int) -> str:
    return f"{n / (1 << 20):g} MiB"


def read_bounded(f, limit: int, path, what: str = "file", var: str | None = "ASR_KD_MAX_DOC_MB"
                 ) -> bytes:
    """All of the binary stream ``f`` when it holds at most ``limit`` bytes, else an
    InputError naming ``path`` (and ``var``, the setting that raises the limit);
    at most ``limit + 1`` bytes are ever read (a gzip bomb stops there)."""
    data = f.read(limit + 1)
    if len(data) > limit:
        hint = f"; set {var} to allow more" if var else ""
        raise InputError(f"{what} larger than {_mib(limit)} (decompressed): refused{hint}", path)
    return data


def _owner() -> str:
    """``host-pid`` of this process, put into temporary names so that a later
    writer can tell a dead writer's leftovers from a live writer's work."""
    return f"{socket.gethostname().split('.')[0] or 'host'}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's live process
        return True
    return True


_OLD = "-old"  # suffix of an earlier output folder moved aside by replace_folder


def _remove_stale_temps(folder: str, base: str) -> None:
    """Delete temporaries of ``base`` whose writer (this host, by pid) is dead.

    A writer killed with SIGKILL (OOM killer, preemption) cannot remove its
    temporary; without this, each kill of a training run would leave a
    checkpoint-sized file behind.  Temporaries of live writers, and those
    written from other hosts (a shared folder), are left alone.  An earlier
    output folder that :func:`replace_folder` had moved aside (``...-old``) when
    its writer died is moved back if nothing took its place.
    """
    prefix = f".tmp-{base}."
    host = _owner().rsplit("-", 1)[0]
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix)]
    except OSError:
        return
    for name in names:
        m = re.fullmatch(r"(.+)-(\d+)\.[^.]+", name[len(prefix):])
        if m and m.group(1) == host and int(m.group(2)) != os.getpid() \
                and not _pid_alive(int(m.group(2))):
            path = os.path.join(folder, name)
            final = os.path.join(folder, base)
            if name.endswith(_OLD) and not os.path.lexists(final):
                # the earlier folder, moved aside by a writer killed before it put
                # the new one in place (replace_folder without an atomic exchange)
                with contextlib.suppress(OSError):
                    os.rename(path, final)
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)  # a staging folder (new_temp_dir)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _non_folder_ancestor(folder: str) -> str | None:
    """The nearest existing path at or above ``folder`` when it is not a folder."""
    p = folder
    while not os.path.lexists(p):
        parent = os.path.dirname(p)
        if parent == p:
            return None
        p = parent
    return None if os.path.isdir(p) else p


def _make_temp(path: str, make):
    """``make(prefix=..., dir=...)`` (mkstemp or mkdtemp) for a temporary named
    ``.tmp-<name>.<host>-<pid>.<random>`` beside ``path``, after removing dead
    writers' leftovers of the same name; errors are one-line InputErrors."""
    folder = os.path.dirname(path)
    blocker = _non_folder_ancestor(folder)
    if blocker is not None:
        raise InputError(f"cannot write here: {blocker} is a file, not a folder", path)
    try:
        os.makedirs(folder, exist_ok=True)
        _remove_stale_temps(folder, os.path.basename(path))
        return make(prefix=f".tmp-{os.path.basename(path)}.{_owner()}.", dir=folder)
    except OSError as e:
        raise InputError(f"cannot write here: {e.strerror or e}", path) from None


def _new_temp(path: str) -> tuple[int, str]:
    """Create a temporary file beside ``path``: (fd, temp path)."""
    return _make_temp(os.path.abspath(path), tempfile.mkstemp)


def new_temp_dir(path: str | os.PathLike) -> str:
    """A new staging folder beside ``path`` (named like the temporaries, so a killed
    writer's one is removed by the next call for the same ``path``)."""
    return _make_temp(os.path.abspath(os.fspath(path)), tempfile.mkdtemp)


@contextlib.contextmanager
def staging_folder(dest: str):
    """A new staging folder beside ``dest`` (:func:`new_temp_dir`), removed on leaving;
    an InputError naming a path inside it is raised again naming the same path under
    ``dest`` (the user's folder, not the staging one)."""
    stage = new_temp_dir(dest)
    try:
        yield stage
    except InputError as e:
        if e.path and str(e.path).startswith(stage):
            raise InputError(e.detail, dest + str(e.path)[len(stage):], e.line) from None
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


@functools.lru_cache(maxsize=None)
def _libc():
    """The C library's functions (Linux only: renameat2, syncfs); OSError elsewhere."""
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        raise OSError("not Linux")
    return ctypes.CDLL(None, use_errno=True)


def _exchange(a: str, b: str) -> bool:
    """Swap the paths ``a`` and ``b`` in one step (Linux renameat2 RENAME_EXCHANGE).

    False where the platform or filesystem cannot (no renameat2, NFS): the caller
    then falls back to two renames."""
    import ctypes

    try:
        renameat2 = _libc().renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), b)


def sync_folder_files(folder: str, files: list[str]) -> None:
    """Make the new ``files`` of ``folder`` (paths) durable before ``folder`` is renamed.

    One ``syncfs`` of the filesystem where Linux has it (thousands of files cost
    one flush, not one journal commit each), else an fsync per file; then the
    folders themselves.  Errors are OSErrors for the caller to name.
    """
    synced = False
    try:
        syncfs = _libc().syncfs
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            synced = syncfs(fd) == 0
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        synced = False
    if not synced:
        for p in files:
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    for d in dict.fromkeys([folder] + [os.path.dirname(p) for p in files]):
        fsync_dir(d)


def replace_folder(stage: str, dest: str) -> None:
    """Put the finished folder ``stage`` (from :func:`new_temp_dir` (``dest``)) at ``dest``.

    A new ``dest`` appears whole in one rename.  An existing ``dest`` is swapped
    with ``stage`` in one step where the filesystem can (Linux), then the earlier
    folder is deleted: a kill at any moment leaves either the earlier folder or
    the new one under ``dest``, never a mix and never neither.  Elsewhere the
    earlier folder is first renamed aside (``<stage>-old``); if the writer dies
    before the second rename, the next :func:`new_temp_dir` for ``dest`` moves it
    back.  ``stage`` no longer exists afterwards.
    """
    stage, dest = os.path.abspath(stage), os.path.abspath(dest)
    if not os.path.lexists(dest):
        os.rename(stage, dest)
    elif _exchange(stage, dest):
        fsync_dir(os.path.dirname(dest))
        shutil.rmtree(stage, ignore_errors=True)
    else:
        old = stage + _OLD
        os.rename(dest, old)
        os.rename(stage, dest)
        fsync_dir(os.path.dirname(dest))
        shutil.rmtree(old, ignore_errors=True)
    fsync_dir(os.path.dirname(dest))


class LockedError(InputError):
    """Another live process holds the lock of an output (see :func:`output_lock`)."""


@contextlib.contextmanager
def output_lock(path: str | os.PathLike, what: str = "output"):
    """Hold an exclusive lock on the output ``path`` (a file or a folder) while writing it.

    The lock is ``flock`` on ``.lock-NAME`` beside ``path`` (so it outlives a
    folder swapped in by :func:`replace_folder`); the kernel drops it when its
    holder dies, so a killed writer never leaves a stale lock.  A second writer
    is refused at once with :class:`LockedError` naming ``path`` and the
    holder's pid.  The lock file holds the pid and is removed on release.
    """
    import fcntl

    path = os.path.abspath(os.fspath(path))
    lock = os.path.join(os.path.dirname(path), f".lock-{os.path.basename(path)}")
    blocker = _non_folder_ancestor(os.path.dirname(path))
    if blocker is not None:
        raise InputError(f"cannot write here: {blocker} is a file, not a folder", path)
    try:
        os.makedirs(os.path.dirname(lock), exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot write here: {e.strerror or e}", path) from None
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as e:
            raise InputError(f"cannot write here: {e.strerror or e}", path) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            try:
                holder = os.read(fd, 64).decode("ascii", "replace").strip() or "?"
            finally:
                os.close(fd)
            raise LockedError(f"another process (pid {holder}) is writing this {what}; wait "
                              "for it to finish, or write elsewhere", path) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except OSError:
            same = False
        if same:
            break
        os.close(fd)  # the holder removed the file between our open and our lock: again
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


def fsync_dir(folder: str) -> None:
    """Make renames in ``folder`` durable (power loss): fsync the folder itself.

    Best effort: some platforms and filesystems cannot open or fsync a folder;
    the rename is atomic there all the same.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_error(e: OSError, path: str) -> InputError:
    """An OSError while writing ``path`` (disk full, quota, I/O error) as a one-line InputError."""
    return InputError(f"cannot write: {e.strerror or e}", path)


@contextlib.contextmanager
def _removed_on_error(tmp: str, path: str):
    """On any error inside, delete the temporary ``tmp``; an OSError becomes the
    one-line write error for ``path``."""
    try:
        yield
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError):
            raise _write_error(e, path) from None
        raise


@contextlib.contextmanager
def _staged(path: str, mode: str, encoding: str | None, staged: list):
    """Write to a new temporary beside ``path``; on clean exit fsync it and append
    ``(temp, path)`` to ``staged``.  On an error the temporary is removed."""
    fd, tmp = _new_temp(path)
    binary = "b" in mode
    with _removed_on_error(tmp, path):
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
    staged.append((tmp, path))


def _commit(staged: list) -> None:
    """Rename each staged temporary to its final name, in order; then fsync the folders."""
    try:
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as e:
        _discard(staged)
        raise _write_error(e, e.filename or staged[-1][1]) from None
    for folder in dict.fromkeys(os.path.dirname(os.path.abspath(p)) for _, p in staged):
        fsync_dir(folder)


def _discard(staged: list) -> None:
    for tmp, _ in staged:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
    """Open a temporary file beside ``path``; on clean exit fsync it, rename it
    to ``path`` and fsync the folder (so the rename survives a power loss).

    On an exception the temporary file is removed and ``path`` is untouched; an
    OSError (disk full, read-only folder) becomes an :class:`InputError` naming
    ``path``.  ``.gz`` paths are gzip-compressed.
    """
    staged: list = []
    with _staged(os.fspath(path), mode, encoding, staged) as f:
        yield f
    _commit(staged)


class FileSet:
    """Several output files put in place together (a model folder).

    Each file is written to a temporary name and fsynced; :meth:`commit` renames
    them, in the order given, only once all are written.  So a failed write
    (disk full, quota) changes none of them and the folder keeps its earlier
    files; only a kill during the renames themselves can mix old and new files.
    Use as a context manager: commit on success, discard on error.
    """

    def __init__(self):
        self._staged: list[tuple[str, str]] = []

    def open(self, path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"):
        """Like :func:`atomic_write`, but the rename waits for :meth:`commit`."""
        return _staged(os.fspath(path), mode, encoding, self._staged)

    def add(self, path: str | os.PathLike, write: Callable[[str], None]) -> None:
        """Stage a file made by ``write(temp_path)`` (a writer that takes a path)."""
        path = os.fspath(path)
        fd, tmp = _new_temp(path)
        os.close(fd)
        with _removed_on_error(tmp, path):
            write(tmp)
        self._staged.append((tmp, path))

    def staged_path(self, path: str | os.PathLike) -> str:
        """Where ``path``'s new content lies until the commit (``path`` if not staged)."""
        path = os.fspath(path)
        return next((tmp for tmp, p in reversed(self._staged) if p == path), path)

    def commit(self) -> None:
        staged, self._staged = self._staged, []
        _commit(staged)

    def discard(self) -> None:
        staged, self._staged = self._staged, []
        _discard(staged)

    def __enter__(self) -> "FileSet":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Refuse, before any work is done, an output that could not be created.

    ``path`` is an output file (or with ``folder=True`` an output folder).  It is
    refused when a path above it is a file, or when the nearest existing folder
    is not writable.  Nothing is created.  (A full disk is only found when
    writing; the atomic writers then leave earlier files untouched.)
    """
    path = os.path.abspath(os.fspath(path))
    if folder and os.path.lexists(path) and not os.path.isdir(path):
        raise InputError("cannot write here: a file exists under this name, expected a folder",
                         path)
    if not folder and os.path.isdir(path):
        raise InputError("cannot write here: a folder exists under this name, expected a file",
                         path)
    where = path if folder else os.path.dirname(path)
    blocker = _non_folder_ancestor(where)
    if blocker is not None:
        raise InputError(f"cannot write here: {blocker} is a file, not a folder", path)
    while not os.path.isdir(where):
        where = os.path.dirname(where)
    if not os.access(where, os.W_OK | os.X_OK):
        raise InputError(f"cannot write here: folder {where} is not writable", path)


def require_regular(path: str | os.PathLike, folder_ok: bool = False, why: str = "") -> None:
    """InputError naming ``path`` when it is a FIFO, socket or device (a folder too,
    unless ``folder_ok``): inputs read more than once cannot be a FIFO, which would
    wait forever for a writer that has gone.  ``why`` completes the message.  A
    missing path passes (the reader says "no such file")."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return
    if stat.S_ISREG(mode) or (folder_ok and stat.S_ISDIR(mode)):
        return
    what = "a regular file or folder" if folder_ok else "a regular file"
    if stat.S_ISDIR(mode):
        raise InputError("is a folder, expected a file", path)
    raise InputError(f"not {what} (a FIFO, socket or device){why}", path)


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

    Drops a UTF-8 BOM and a trailing ``\\r``.  A non-UTF-8 line, or one longer
    than :func:`max_line_bytes`, raises :class:`InputError` naming the file and line.
    """
    path = os.fspath(path)
    limit = max_line_bytes()
    with open_text(path) as raw:
        try:
            for n, b in enumerate(iter(functools.partial(raw.readline, limit + 1), b""), 1):
                if len(b) > limit and not b.endswith(b"\n"):
                    raise InputError(f"line longer than {_mib(limit)} (no line end: not a text "
                                     "file?); set ASR_KD_MAX_LINE_MB to allow longer lines",
                                     path, n)
                if n == 1 and b.startswith(b"\xef\xbb\xbf"):
                    b = b[3:]
                try:
                    s = b.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise InputError(f"not valid UTF-8 (byte {e.start})", path, n) from None
                yield n, s.rstrip("\n").rstrip("\r")
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
            raise InputError(f"cannot read: {e}", path) from None


class DuplicateKey(ValueError):
    """A JSON object names one key twice (raised by :func:`unique_keys`)."""


def unique_keys(pairs):
    """``object_pairs_hook`` that refuses a repeated key: JSON would keep the last
    silently, dropping data."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKey(k)
        out[k] = v
    return out


def read_json(path: str | os.PathLike, what: str, *,
              template: str = "corrupt {what} ({error})", not_object: str | None = None,
              gz: bool = False, encoding: str = "utf-8") -> dict:
    """The JSON object stored in ``path`` (a manifest, sidecar, config, weights file...).

    Unreadable (OSError), malformed (JSON, or not decodable with ``encoding``) or
    holding something else than an object: :class:`InputError` naming ``path``,
    worded by ``template`` (``{what}``: ``what``; ``{error}``: the reason) or, for
    a non-object, by ``not_object`` when given.  ``gz``: open through
    :func:`open_text` (``.gz`` read transparently; a missing file or a folder is
    its "no such file" / "is a folder" error).  ``encoding="utf-8-sig"`` accepts a BOM.
    A key given twice in one object (JSON would keep the last silently), nesting
    too deep for the parser and a file over 64 MiB are refused the same way.
    """
    path = os.fspath(path)
    require_regular(path, why=f": a {what} file is read more than once; write it to a file first")
    try:
        with (open_text(path) if gz else open(path, "rb")) as f:
            data = read_bounded(f, SMALL_DOC_BYTES, path, what, var=None)
        obj = json.loads(data.decode(encoding), object_pairs_hook=unique_keys)
    except DuplicateKey as e:
        raise InputError(template.format(what=what, error=f"the key {e.args[0][:80]!r} is given "
                                         "twice in one object"), path) from None
    except RecursionError:
        raise InputError(template.format(what=what, error="nested too deeply"), path) from None
    except (OSError, EOFError, zlib.error, ValueError) as e:
        # (ValueError covers JSON and UTF-8 decoding errors; the others a damaged gzip)
        raise InputError(template.format(what=what, error=e), path) from None
    if not isinstance(obj, dict):
        raise InputError(not_object or template.format(what=what, error="not a JSON object"),
                         path)
    return obj
