"""Options and set-up shared by the subcommands."""
from __future__ import annotations

import functools
import logging
import os
import shlex
import sys

from ..errors import InputError
from ..fileio import check_writable

QUIET_HELP = "no progress bars or progress lines (errors and warnings are still printed)"


# --text-format of the commands that read a text (asr_kd.corpus.read_sentences).
TEXT_FORMAT_HELP = ("auto: Kaldi text (first field an utterance id) when the first lines look "
                    "like it, else plain; plain: every line a sentence; kaldi: the first field "
                    "dropped (default: auto)")


def add_common(p) -> None:
    p.add_argument("--quiet", action="store_true", help=QUIET_HELP)
    p.add_argument("--verbose", action="store_true", help="debug logging")


def add_device(p) -> None:
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where to run (default: cuda when available)")


def add_training_args(p) -> None:
    """The options of both training commands (train-lm, distill)."""
    p.add_argument("--config", help="YAML file of model and training options")
    p.add_argument("--train", required=True, help="training text (plain or Kaldi text)")
    p.add_argument("--valid", required=True, help="validation text")
    p.add_argument("--out", required=True, help="output model folder")
    p.add_argument("--vocab", help="words.txt / spm.model or a folder holding one "
                   "(default: all words of --train)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the initial weights, batch order and dropout (default 0); "
                   "recorded in config.json")
    add_device(p)
    add_common(p)


class _LogFile(logging.FileHandler):
    """A log file that, once it cannot be written (disk full), says so on one line
    and goes quiet, instead of printing a traceback for every record; the real
    outputs then fail with their own one-line error."""

    failed = False

    def emit(self, record):
        if not self.failed:
            super().emit(record)

    def handleError(self, record):
        if not self.failed:
            self.failed = True
            err = sys.exc_info()[1]
            why = getattr(err, "strerror", None) or err
            print(f"asr-kd: warning: {self.baseFilename}: cannot write the log ({why}); "
                  "logging to stderr only", file=sys.stderr)


def _log_file(out_dir: str, name: str) -> logging.Handler:
    """The handler of ``out_dir/<name>.log``; an unwritable folder is an InputError."""
    check_writable(out_dir, folder=True)
    path = os.path.join(out_dir, f"{name}.log")
    try:
        os.makedirs(out_dir, exist_ok=True)
        return _LogFile(path)
    except OSError as e:
        raise InputError(f"cannot write here: {e.strerror or e}", e.filename or path) from None


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
        fh = _log_file(out_dir, name)
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


def training_out(args, command: str):
    """Checks and lock of a training ``--out`` folder: refuse one holding an exported
    model; then (rank 0 of torchrun, or the only process) a context holding the
    folder's lock, so a second run writing the same folder is refused."""
    import contextlib

    from .. import dist
    from ..fileio import output_lock
    from ..modeldir import check_out_kind

    check_out_kind(args.out, "trained", command)
    return output_lock(args.out, "model folder") if dist.is_main() else contextlib.nullcontext()
def no_lone_log_on_failure(log_name: str):
    """Decorator of a training command's ``run(args)``: when it fails (error, traceback or
    signal) and ``args.out`` holds nothing but the ``<log_name>.log`` this run started,
    the log is removed, and the folder too if this run made it.

    A failure before the first checkpoint (bad text, bad option, a device that cannot
    be used) would otherwise leave an ``--out`` folder that looks like a model folder
    and holds only a log; the error itself is on stderr.  A folder with anything else
    in it (a checkpoint, a log of an earlier run) is left as it is.
    """
    def decorate(run):
        @functools.wraps(run)
        def wrapped(args):
            out = args.out
            log_path = os.path.join(out, f"{log_name}.log")
            made_folder, new_log = not os.path.lexists(out), not os.path.lexists(log_path)
            try:
                return run(args)
            except BaseException:
                if new_log:
                    _remove_lone_log(out, log_path, made_folder)
                raise
        return wrapped
    return decorate


def _remove_lone_log(out: str, log_path: str, remove_folder: bool) -> None:
    try:
        if os.listdir(out) != [os.path.basename(log_path)]:
            return
    except OSError:
        return
    log = logging.getLogger("asr_kd")
    for h in list(log.handlers):  # close the file before it goes
        if getattr(h, "baseFilename", None) == os.path.abspath(log_path):
            log.removeHandler(h)
            h.close()
    try:
        os.unlink(log_path)
        if remove_folder:
            os.rmdir(out)
    except OSError:
        pass  # left as it is: the error the command reports matters more


def resume_command(args) -> str:
    """The command line that continues an interrupted training run (``... --resume``)."""
    argv = list(getattr(args, "argv", None) or sys.argv[1:])
    if "--resume" not in argv:
        argv.append("--resume")
    return shlex.join(["asr-kd", *argv])


def report_interrupted(args, e) -> int:
    """One line for a training run stopped by a signal (checkpoint written); the exit
    status a shell gives that signal (130 for SIGINT, 143 for SIGTERM)."""
    from .. import dist

    if dist.is_main():
        print(f"asr-kd {args.command}: {e}; to continue, run: {resume_command(args)}",
              file=sys.stderr)
    return 128 + e.signum


def warn(command: str, message: str) -> None:
    """One warning line on stderr: ``asr-kd <command>: warning: <message>``."""
    print(f"asr-kd {command}: warning: {message}", file=sys.stderr)

