"""`asr-kd <subcommand>`: thin wrappers over the library.

Each subcommand lives in its own module here exposing ``register(subparsers)``,
which adds an argparse parser whose ``func(args)`` default runs the command.
Input errors are printed on one line (``asr-kd: error: file:line: ...``) and
exit with status 2; no traceback is shown for bad input.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

from ..errors import InputError

# Subcommand modules, in the order `asr-kd --help` lists them.
COMMANDS = [
    "vocab", "train_lm", "ppl", "cache_teacher", "distill",
    "convert_nbest", "rescore", "tune", "score", "compare", "merge", "report",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asr-kd",
        description="Distil LSTM language models and rescore ASR N-best lists.")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    sub.required = True
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"{__name__}.{name}":
                continue  # subcommand not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "allow_extra", False):
        parser.error("unrecognized arguments: " + " ".join(extra))
    args.extra = extra
    try:
        rc = args.func(args)
    except InputError as e:
        print(f"asr-kd {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"asr-kd {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # Output piped into `head` and closed: not an error worth a traceback.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    finally:
        from ..dist import shutdown
        shutdown()  # a torchrun worker's process group, if the command started one
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
