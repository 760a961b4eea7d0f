"""Progress reporting fit for terminals and for log files: the one helper every step uses.

On a terminal (stderr is a TTY) :func:`progress` is a tqdm bar.  On a redirected
stream (a log file, a Slurm job, a pipe) a bar would write a carriage-return
line many times a second (a 2-epoch training put 75 KB of them into its log),
so instead one plain line is written every ``ASR_KD_PROGRESS_SECONDS`` seconds
(default 30; 0 turns progress off, bars included), with the count, the rate and
the ETA::

    rescore student: 1200/4045 group (29.7 %), 40.1 group/s, ETA 0:01:11

and a last line when the work is done (only if it took at least one interval,
so short steps stay silent).  Either way the returned object has tqdm's small
interface: ``update(n)``, ``set_postfix(**kw)``, ``close()``, iteration, and
use as a context manager.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

ENV_SECONDS = "ASR_KD_PROGRESS_SECONDS"
DEFAULT_SECONDS = 30.0


def log_interval() -> float:
    """Seconds between progress lines on a redirected stream (``ASR_KD_PROGRESS_SECONDS``)."""
    raw = os.environ.get(ENV_SECONDS, "")
    try:
        v = float(raw) if raw.strip() else DEFAULT_SECONDS
    except ValueError:
        v = DEFAULT_SECONDS  # a typo in an environment variable is not worth stopping a run
    return v if v >= 0 else DEFAULT_SECONDS


def _hms(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


class LineProgress:
    """Plain progress lines every ``interval`` seconds (see the module docstring)."""

    def __init__(self, iterable=None, total: int | None = None, desc: str = "",
                 unit: str = "it", initial: int = 0, interval: float | None = None,
                 file=None, clock=time.monotonic):
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        self.total, self.desc, self.unit = total, desc, unit
        self.n = self.start_n = initial
        self.interval = log_interval() if interval is None else interval
        self.file = file if file is not None else sys.stderr
        self.clock = clock
        self.t0 = self.last = clock()
        self.postfix = ""
        self.lines = 0
        self.closed = False

    def __iter__(self):
        for x in self.iterable:
            yield x
            self.update(1)
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def set_postfix(self, refresh: bool = True, **kw) -> None:
        # refresh: tqdm's redraw flag; lines are written on their own schedule
        self.postfix = ", ".join(f"{k}={v}" for k, v in kw.items())

    def line(self) -> str:
        """The progress line for the current count: count, share, rate, ETA, postfix."""
        dt = max(self.clock() - self.t0, 1e-9)
        rate = (self.n - self.start_n) / dt
        parts = [f"{self.n}/{self.total} {self.unit}" if self.total else f"{self.n} {self.unit}"]
        if self.total:
            parts[0] += f" ({100.0 * self.n / self.total:.1f} %)"
        parts.append(f"{rate:.0f} {self.unit}/s" if rate >= 100 else f"{rate:.3g} {self.unit}/s")
        if self.total and rate > 0 and self.n < self.total:
            parts.append(f"ETA {_hms((self.total - self.n) / rate)}")
        elif self.closed:
            parts.append(f"{_hms(dt)} in all")
        if self.postfix:
            parts.append(self.postfix)
        return f"{self.desc}: " + ", ".join(parts) if self.desc else ", ".join(parts)

    def _write(self) -> None:
        try:
            print(self.line(), file=self.file, flush=True)
        except (OSError, ValueError):  # a closed or full log stream: progress is not worth a crash
            self.interval = 0
        self.lines += 1

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.total and self.n >= self.total:
            return  # the end: close() writes the last line, once
        if self.interval > 0:
            now = self.clock()
            if now - self.last >= self.interval:
                self.last = now
                self._write()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.interval > 0 and (self.lines or self.clock() - self.t0 >= self.interval):
            self._write()


class _Silent:
    """What ``quiet=True`` returns: the same interface, no output."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix(self, refresh: bool = True, **kw) -> None:
        pass

    def close(self) -> None:
        pass


_silenced = False


@contextlib.contextmanager
def silenced(on: bool = True):
    """Within the block, every :func:`progress` is silent whatever its caller asks
    (a command's ``--quiet``, for the readers and scorers it calls)."""
    global _silenced
    before, _silenced = _silenced, _silenced or bool(on)
    try:
        yield
    finally:
        _silenced = before


def progress(iterable=None, total: int | None = None, desc: str = "", unit: str = "it",
             quiet: bool = False, initial: int = 0, leave: bool = True, file=None):
    """A progress reporter over ``iterable`` (or one to ``update`` by hand, given ``total``).

    A tqdm bar when ``file`` (default stderr) is a terminal, :class:`LineProgress`
    otherwise, nothing when ``quiet``, within :func:`silenced` or with
    ``ASR_KD_PROGRESS_SECONDS=0``.  ``leave=False`` clears a terminal bar at the end.
    """
    if quiet or _silenced or log_interval() == 0:
        return _Silent(iterable)
    stream = file if file is not None else sys.stderr
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    if tty:
        from tqdm import tqdm
        return tqdm(iterable, total=total, desc=desc, unit=unit, initial=initial, leave=leave,
                    file=stream, dynamic_ncols=True)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, initial=initial,
                        file=stream)
