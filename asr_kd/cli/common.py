"""Options and set-up shared by the subcommands."""
from __future__ import annotations

import logging
import os
import sys


def add_common(p) -> None:
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--verbose", action="store_true", help="debug logging")


def add_device(p) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to run (default: cuda when available)")


def setup_logging(args, out_dir: str | None = None, name: str = "log") -> logging.Logger:
    """Log to stderr and, with ``out_dir``, to ``out_dir/<name>.log``."""
    log = logging.getLogger("asr_kd")
    for h in list(log.handlers):
        log.removeHandler(h)
        h.close()
    log.setLevel(logging.DEBUG if getattr(args, "verbose", False) else logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(fmt)
    log.addHandler(h)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
        fh = logging.FileHandler(os.path.join(out_dir, f"{name}.log"))
        fh.setFormatter(fmt)
        log.addHandler(fh)
    log.propagate = False
    return log


def setup_training_logging(args, out_dir: str, name: str) -> None:
    """Training logs: rank 0 logs to stderr and ``out_dir/<name>.log``; other torchrun
    ranks log warnings to stderr only and show no progress bars."""
    from .. import dist

    if dist.is_main():
        setup_logging(args, out_dir, name)
    else:
        setup_logging(args).setLevel(logging.WARNING)
        args.quiet = True
