"""`asr-kd <subcommand>`: thin wrappers over the library.

Each subcommand lives in its own module here exposing ``register(subparsers)``,
which adds an argparse parser whose ``func(args)`` default runs the command.

Exit status and messages (one line on stderr, never a traceback):

* 2: bad input, an output that cannot be written (read-only folder, disk
  full), training that diverged or a device that cannot be used (any
  :class:`asr_kd.errors.AsrKdError`): ``asr-kd <command>: error: <file>[:line]: ...``;
* 130 (Ctrl-C, SIGINT) and 143 (SIGTERM): stopped on request.  Training
  commands first write a checkpoint and print the command that continues
  (``... --resume``); a command may set ``args.interrupt_hint`` to say how to
  continue.  Output files are either complete or absent, so a stopped command
  is simply run again;
* 141: stdout closed early (``| head``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from ..errors import AsrKdError
from ..threads import MAX_THREADS, oversubscription, restore_threads, set_threads, threads_state

# Commands that print progress through readers and scorers without a --quiet of their own:
# build_parser gives them one (a command that defines it keeps its own).
QUIET_COMMANDS = ("convert-nbest", "tune", "score", "compare")

# Subcommand modules, in the order `asr-kd --help` lists them.
COMMANDS = [
    "vocab", "train_lm", "ppl", "cache_teacher", "distill",
    "convert_nbest", "rescore", "tune", "score", "compare", "merge", "report", "export",
    "overlap",
]


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``asr-kd`` parser; with ``only`` (a command name), just that subcommand.

    Registering a subcommand imports its module, and the training and scoring ones
    import torch (about 2 s): ``main`` registers only the command it runs, so
    ``asr-kd score``, ``tune``, ``compare`` or ``report`` start in a fraction of that.
    """
    parser = argparse.ArgumentParser(
        prog="asr-kd",
        description="Distil LSTM language models and rescore ASR N-best lists.")
    parser.add_argument("--version", action="version", version=version())
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for name in COMMANDS:
        if only is not None and name.replace("_", "-") != only:
            continue
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # subcommand not built yet
            raise
        mod.register(sub)
    for name, p in sub.choices.items():  # one place, so no command can miss it
        if name in QUIET_COMMANDS and "--quiet" not in p._option_string_actions:
            from .common import QUIET_HELP
            p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
        p.add_argument("--threads", type=_positive_int, default=None, metavar="N",
                       help="CPU threads to use (default: $OMP_NUM_THREADS, else the cores "
                       "this process may run on); give N/K to each of K jobs run at once")
    return parser


def version() -> str:
    """``asr-kd VERSION (PACKAGE FOLDER)``: the installed distribution's version, and
    where the code that runs comes from (a checkout on PYTHONPATH may differ)."""
    from importlib import metadata

    try:
        v = metadata.version("asr_kd")
    except metadata.PackageNotFoundError:
        v = "(not installed)"
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return f"asr-kd {v} ({here})"


def _positive_int(s: str) -> int:
    try:
        n = int(s)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    if n > MAX_THREADS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_THREADS} threads, got {s}")
    return n


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C's KeyboardInterrupt: the same clean-up runs
    (temporary files removed) and the command stops with one line."""

    signum = signal.SIGTERM


def _raise_terminated(signum, frame):
    raise Terminated()


def _on_sigterm_raise():
    """Install the SIGTERM handler; returns the previous one (None: not installable,
    e.g. outside the main thread)."""
    try:
        return signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:
        return None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    known = {c.replace("_", "-") for c in COMMANDS}
    parser = build_parser(argv[0] if argv and argv[0] in known else None)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "allow_extra", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    args.argv = argv  # the command line, for the resume hint of training commands
    saved = threads_state()
    set_threads(args.threads)  # before any command imports torch
    if args.threads is not None and oversubscription(args.threads):
        print(f"asr-kd {args.command}: warning: {oversubscription(args.threads)}", file=sys.stderr)
    old_term = _on_sigterm_raise()
    try:
        from ..progress import silenced
        with silenced(getattr(args, "quiet", False)):
            rc = args.func(args)
    except AsrKdError as e:  # InputError, TrainingError, DeviceError: one line, not a traceback
        print(f"asr-kd {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        hint = getattr(args, "interrupt_hint", None)
        print(f"asr-kd {args.command}: stopped by {signal.Signals(signum).name}"
              + (f"; {hint}" if hint else ""), file=sys.stderr)
        return 128 + signum
    except MemoryError:
        # A reader or step without its own size check: still one line, not a traceback.
        print(f"asr-kd {args.command}: error: out of memory (an input too large for this "
              "machine? see the size limits under Guarantees in the README)", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"asr-kd {args.command}: error: an input is nested too deeply to read",
              file=sys.stderr)
        return 2
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as e:
        # An I/O failure outside the atomic writers (which name their file already):
        # still one line naming the file, not a traceback.
        where = f"{e.filename}: " if e.filename else ""
        print(f"asr-kd {args.command}: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
        dist = sys.modules.get("asr_kd.dist")  # imported by the commands that can start one
        if dist is not None:
            dist.shutdown()  # a torchrun worker's process group, if the command started one
        restore_threads(saved)  # main() called in-process (tests, notebooks) leaves no trace
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
