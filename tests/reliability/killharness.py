"""Kill -9 harness for the asr-kd commands that write files.

For each of ``train-lm``, ``distill``, ``cache-teacher`` and ``rescore`` on a
tiny generated task:

1. run the real CLI (``python -m asr_kd.cli ...``) once, uninterrupted: the
   reference output;
2. in a fresh folder, start the same command and SIGKILL it at a random moment
   (a seeded delay after it started working, or just as it creates or renames
   a file: a checkpoint, a shard, the output), check the folder (every file
   under a final name is complete and readable, or byte-identical to the
   reference where it has only one possible content; temporaries are allowed),
   and start the command again (``--resume`` for train-lm and distill) until
   a run completes;
3. check that the final output is byte-identical to the reference and that no
   temporary is left behind; repeat 2-3 in new folders until the asked number
   of kills has been survived.

As a script: ``python tests/reliability/killharness.py --kills 20`` prints a
table: command, kills survived, how many of them hit a file being written (a
temporary was left), kills by kind of moment, rounds (fresh folders), whether
every round ended byte-identical to the reference.  ``test_kill_resume.py`` imports it.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

COMMANDS = ["train-lm", "distill", "cache-teacher", "rescore"]
WORDS = "the a cat dog bird sees likes runs eats big small red now and".split()

# Model and training options of every tiny run: checkpoints every 3 steps, so
# kills land before, between and during checkpoint writes.
CONFIG = """\
embed_dim: 16
hidden_dim: 16
num_layers: 1
dropout: 0.2
batch_size: 4
eval_batch_size: 32
optimizer: adamw
lr: 0.01
lr_schedule: plateau
epochs: 2
checkpoint_every: 3
"""


# -- the tiny task -----------------------------------------------------------------

def _sentences(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) for _ in range(n)]


def _write_lines(path: str, lines: list[str]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return path


def _write_nbest(path: str, n_utts: int, n_hyps: int, seed: int) -> str:
    """Native JSONL N-best with random hypotheses and ``am``/``lm0`` scores."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for u in range(n_utts):
            hyps = [{"text": s, "scores": {"am": round(-rng.uniform(50, 500), 3),
                                           "lm0": round(-rng.uniform(5, 50), 3)}}
                    for s in _sentences(n_hyps, rng.randrange(1 << 30))]
            f.write(json.dumps({"utt": f"utt{u:04d}", "hyps": hyps}) + "\n")
    return path


@dataclass
class Workspace:
    """Inputs shared by every case: texts, YAML config, a teacher, an N-best file."""

    root: str
    train: str
    valid: str
    config: str
    teacher: str
    nbest: str


def make_workspace(root: str, scale: float = 1.0) -> Workspace:
    """Write the tiny task under ``root``; ``scale`` multiplies the data sizes.

    The teacher is a randomly initialised model saved with the library (it need
    not be good, only fixed): no training run is spent on it.
    """
    import torch

    from asr_kd.modeldir import save_model
    from asr_kd.models import LMConfig, LstmLM
    from asr_kd.vocab import WordVocab

    os.makedirs(root, exist_ok=True)
    train_s = _sentences(int(160 * scale), 0)
    train = _write_lines(os.path.join(root, "train.txt"), train_s)
    valid = _write_lines(os.path.join(root, "valid.txt"), _sentences(int(40 * scale), 1))
    config = os.path.join(root, "conf.yaml")
    with open(config, "w", encoding="utf-8") as f:
        f.write(CONFIG)
    tok = WordVocab.build(train_s)
    torch.manual_seed(0)
    teacher = os.path.join(root, "teacher")
    save_model(LstmLM(LMConfig(vocab_size=tok.size, embed_dim=24, hidden_dim=24, num_layers=1)),
               tok, teacher)
    nbest = _write_nbest(os.path.join(root, "dev.jsonl"), int(300 * scale), 12, 2)
    return Workspace(root, train, valid, config, teacher, nbest)


# -- what each command writes, and how a folder is checked after a kill -----------

TRAIN_FINALS = ["model.safetensors", "config.json", "words.txt"]


def _rel_files(folder: str) -> list[str]:
    """Every file under ``folder``, relative, sorted (logs excluded: they only grow)."""
    out = []
    for d, _, files in os.walk(folder):
        for f in files:
            if not f.endswith(".log"):
                out.append(os.path.relpath(os.path.join(d, f), folder))
    return sorted(out)


def _is_temp(rel: str) -> bool:
    """A temporary of the atomic writers (``.tmp-NAME.host-pid.xxx``) or an
    unfinished cache shard folder (``shard-NNNNN.tmp/``)."""
    return any(p.startswith(".tmp-") or p.endswith(".tmp") for p in rel.split(os.sep))


def _same_bytes(a: str, b: str) -> bool:
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def check_train_folder(out: str, ref: str) -> list[str]:
    """A model folder mid-training: every final-named file complete and readable."""
    from asr_kd.errors import InputError
    from asr_kd.modeldir import load_model
    from asr_kd.checkpoint import read_checkpoint as _read_state

    problems = []
    for rel in _rel_files(out):
        path = os.path.join(out, rel)
        if _is_temp(rel):
            continue
        try:
            if rel == "words.txt" and not _same_bytes(path, os.path.join(ref, rel)):
                problems.append(f"{rel}: differs from the reference")
            elif rel == "config.json":
                with open(path, encoding="utf-8") as f:
                    json.load(f)
            elif rel == "train_state.pt":
                _read_state(path)  # loads with weights_only and verifies the checksum
            elif rel == "metrics.csv":
                with open(path, newline="", encoding="utf-8") as f:
                    rows = list(csv.reader(f))
                if not rows or any(len(r) != len(rows[0]) for r in rows):
                    problems.append(f"{rel}: ragged or empty CSV")
        except (InputError, ValueError, OSError) as e:
            problems.append(f"{rel}: {e}")
    names = set(_rel_files(out))
    if "model.safetensors" in names:
        if "config.json" not in names or "words.txt" not in names:
            problems.append("model.safetensors present without config.json/words.txt")
        else:
            try:
                load_model(out)  # checks weights (checksum, shapes) against config and vocab
            except InputError as e:
                problems.append(f"model folder does not load: {e}")
    return problems


def check_cache_folder(out: str, ref: str) -> list[str]:
    """A cache folder mid-run: plan, vocabulary, manifest and every finished shard
    are byte-identical to the reference (they have only one possible content)."""
    problems = []
    for rel in _rel_files(out):
        if _is_temp(rel):
            continue
        refp = os.path.join(ref, rel)
        if not os.path.isfile(refp):
            problems.append(f"{rel}: unexpected file")
        elif not _same_bytes(os.path.join(out, rel), refp):
            problems.append(f"{rel}: differs from the reference (partial?)")
    for d in os.listdir(out) if os.path.isdir(out) else []:
        if d.startswith("shard-") and not d.endswith(".tmp"):
            have = sorted(os.listdir(os.path.join(out, d)))
            want = sorted(os.listdir(os.path.join(ref, d)))
            if have != want:
                problems.append(f"{d}: holds {have}, a finished shard holds {want}")
    if os.path.isfile(os.path.join(out, "manifest.json")):
        missing = [d for d in os.listdir(ref) if d.startswith("shard-")
                   and not os.path.isdir(os.path.join(out, d))]
        if missing:
            problems.append(f"manifest.json written while shards are missing: {missing}")
    return problems


def check_identical_files(out: str, ref: str) -> list[str]:
    """Outputs with one possible content (rescored N-best): present means identical."""
    problems = []
    for rel in _rel_files(out):
        if _is_temp(rel):
            continue
        refp = os.path.join(ref, rel)
        if not os.path.isfile(refp) or not _same_bytes(os.path.join(out, rel), refp):
            problems.append(f"{rel}: present but not the complete output")
    return problems


@dataclass
class Case:
    """One command: its arguments for an output folder, what to compare, how to check."""

    name: str
    args: Callable[[str], list[str]]
    finals: Callable[[str], list[str]]        # files compared with the reference (relative)
    check: Callable[[str, str], list[str]]    # (out, ref) -> problems after a kill
    resume: bool                              # restart with --resume


def make_cases(ws: Workspace) -> dict[str, Case]:
    common = ["--quiet", "--device", "cpu"]
    train = ["--config", ws.config, "--train", ws.train, "--valid", ws.valid, "--seed", "3"]
    return {
        "train-lm": Case(
            "train-lm", lambda out: ["train-lm", *train, "--out", out, *common],
            lambda ref: TRAIN_FINALS, check_train_folder, resume=True),
        "distill": Case(
            "distill", lambda out: ["distill", *train, "--teacher", ws.teacher, "--alpha", "0.5",
                                    "--tau", "2", "--hidden-dim", "12", "--out", out, *common],
            lambda ref: TRAIN_FINALS, check_train_folder, resume=True),
        "cache-teacher": Case(
            "cache-teacher", lambda out: ["cache-teacher", "--teacher", ws.teacher, "--text",
                                          ws.train, "--config", ws.config, "--topk", "4",
                                          "--shard-tokens", "150", "--out", out, *common],
            lambda ref: _rel_files(ref), check_cache_folder, resume=False),
        "rescore": Case(
            "rescore", lambda out: ["rescore", "--nbest", ws.nbest, "--model", ws.teacher,
                                    "--name", "t", "--out", os.path.join(out, "dev.t.jsonl"),
                                    *common],
            lambda ref: ["dev.t.jsonl"], check_identical_files, resume=False),
    }


# -- running and killing -------------------------------------------------------------

def cli_env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


# ``python -m asr_kd.cli`` with Ctrl-C's usual handler: a shell starts background
# jobs (``make test &``, CI runners) with SIGINT ignored, the children inherit
# that and Python then keeps ignoring it, so a SIGINT test would see the job
# simply finish. A terminal user's foreground command gets the default, as here.
_CLI_SHIM = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
             "from asr_kd.cli import main; sys.exit(main())")


class Proc:
    """A CLI subprocess whose stdout/stderr are collected by threads; ``started`` is
    set at its first stderr line (imports done, the command is working)."""

    def __init__(self, argv: list[str], cwd: str | None = None):
        self.argv = argv
        self.p = subprocess.Popen([sys.executable, "-c", _CLI_SHIM, *argv], cwd=cwd,
                                  env=cli_env(), stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        self.started = threading.Event()
        self.t_start = None
        self.out: list[str] = []
        self.err: list[str] = []
        self._threads = [threading.Thread(target=self._read, args=(self.p.stdout, self.out, False)),
                         threading.Thread(target=self._read, args=(self.p.stderr, self.err, True))]
        for t in self._threads:
            t.daemon = True
            t.start()

    def _read(self, stream, sink, is_err):
        for line in stream:
            if is_err and not self.started.is_set():
                self.t_start = time.monotonic()
                self.started.set()
            sink.append(line)
        if is_err:
            self.started.set()  # exited without a line: nobody should wait forever

    def wait(self, timeout: float | None = None) -> int:
        rc = self.p.wait(timeout)
        for t in self._threads:
            t.join()
        return rc

    def kill(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGKILL)

    @property
    def stderr(self) -> str:
        return "".join(self.err)


def run_to_end(argv: list[str], timeout: float = 300) -> tuple[int, str, float]:
    """(exit code, stderr, seconds of work after the first stderr line)."""
    p = Proc(argv)
    rc = p.wait(timeout)
    work = time.monotonic() - (p.t_start or time.monotonic())
    return rc, p.stderr, work


def _snapshot(folder: str) -> frozenset:
    """Names under ``folder`` (logs excluded): changes when a file is created or renamed."""
    try:
        return frozenset(_rel_files(folder)) | frozenset(
            d for d in os.listdir(folder) if os.path.isdir(os.path.join(folder, d)))
    except OSError:
        return frozenset()


def _wait_for_writes(p: Proc, folder: str, n_changes: int, deadline: float) -> None:
    """Poll ``folder`` until it changed ``n_changes`` times (or the process ends)."""
    seen = _snapshot(folder)
    while n_changes > 0 and p.p.poll() is None and time.monotonic() < deadline:
        now = _snapshot(folder)
        if now != seen:
            seen, n_changes = now, n_changes - 1
        else:
            time.sleep(0.0005)


def run_and_kill(argv: list[str], out: str, rng: random.Random,
                 work: float) -> tuple[int, str, str]:
    """Run once and SIGKILL at a random moment; returns (exit code, how, stderr).

    Two kinds of moment, drawn at random: ``delay`` - a uniform delay after the
    command started working (anywhere in the run); ``write`` - as soon as the
    k-th file creation/rename in the output folder is seen (during a checkpoint,
    a shard or the output being written), plus 0-2 ms.
    """
    p = Proc(argv)
    p.started.wait(120)
    if rng.random() < 0.5:
        how = "delay"
        time.sleep(rng.uniform(0, 0.8 * work))
    else:
        how = "write"
        _wait_for_writes(p, out, rng.randint(1, 6), time.monotonic() + 2 * work + 5)
        time.sleep(rng.uniform(0, 0.002))
    p.kill()
    return p.wait(120), how, p.stderr


@dataclass
class Result:
    command: str
    kills: int = 0
    rounds: int = 0
    identical: bool = True
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    kinds: dict = field(default_factory=dict)   # kills per kind of moment
    mid_write: int = 0      # kills that left a temporary: they hit a file being written


def run_case(case: Case, ws: Workspace, kills: int, seed: int = 0, say=lambda s: None) -> Result:
    """Reference run, then kill/restart rounds until ``kills`` kills were survived."""
    t0 = time.monotonic()
    res = Result(case.name)
    ref = os.path.join(ws.root, f"ref-{case.name}")
    rc, err, work = run_to_end(case.args(ref))
    if rc != 0:
        res.identical = False
        res.problems.append(f"reference run failed ({rc}): {err.strip()[-500:]}")
        return res
    rng = random.Random(f"{seed}-{case.name}")
    while res.kills < kills or res.rounds == 0:
        res.rounds += 1
        out = os.path.join(ws.root, f"{case.name}-round{res.rounds}")
        _one_round(case, ref, out, kills, work, rng, res, say)
        if res.problems:
            break
    res.seconds = time.monotonic() - t0
    return res


def _one_round(case: Case, ref: str, out: str, kills: int, work: float, rng: random.Random,
               res: Result, say) -> None:
    """Kill and restart in ``out`` until a run completes; compare with the reference."""
    first = True
    while True:
        argv = case.args(out) + (["--resume"] if case.resume and not first else [])
        first = False
        if res.kills >= kills:
            rc, err, _ = run_to_end(argv)
            how = "none"
        else:
            rc, how, err = run_and_kill(argv, out, rng, work)
        if rc == -signal.SIGKILL:
            res.kills += 1
            res.kinds[how] = res.kinds.get(how, 0) + 1
            temps = [r for r in _rel_files(out) if _is_temp(r)]
            res.mid_write += bool(temps)
            found = case.check(out, ref)
            res.problems += [f"after kill {res.kills} ({how}): {p}" for p in found]
            during = f", temporaries: {' '.join(temps)}" if temps else ""
            say(f"{case.name}: kill {res.kills} ({how}{during})"
                + (f"; PROBLEMS: {found}" if found else " survived"))
            if found:
                res.identical = False
                return
            continue
        if rc != 0:
            res.identical = False
            res.problems.append(f"restart after kill {res.kills} failed ({rc}): "
                                f"{err.strip()[-500:]}")
            return
        break
    for rel in case.finals(ref):
        a, b = os.path.join(out, rel), os.path.join(ref, rel)
        if not os.path.isfile(a) or not _same_bytes(a, b):
            res.identical = False
            res.problems.append(f"round {res.rounds}: {rel} differs from the uninterrupted run")
    left = [r for r in _rel_files(out) if _is_temp(r)]
    left += [d for d in os.listdir(out) if d.endswith(".tmp")]
    if left:
        res.identical = False
        res.problems.append(f"round {res.rounds}: temporaries left after completion: {left}")


def run_cases(ws: Workspace, names: list[str], kills: int, seed: int = 0, jobs: int = 2,
              say=lambda s: None) -> dict[str, Result]:
    """Run the cases, ``jobs`` at a time (each case is sequential in itself)."""
    cases = make_cases(ws)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as ex:
        futs = {n: ex.submit(run_case, cases[n], ws, kills, seed, say) for n in names}
        return {n: f.result() for n, f in futs.items()}


def table(results: dict[str, Result]) -> str:
    lines = [f"{'command':<14} {'kills':>5} {'mid-write':>9} {'delay/write':>11} {'rounds':>6}  "
             f"{'identical':<9} {'seconds':>7}"]
    for r in results.values():
        kinds = f"{r.kinds.get('delay', 0)}/{r.kinds.get('write', 0)}"
        lines.append(f"{r.command:<14} {r.kills:>5} {r.mid_write:>9} {kinds:>11} {r.rounds:>6}  "
                     f"{'yes' if r.identical and not r.problems else 'NO':<9} {r.seconds:>7.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=5, help="kills to survive per command")
    ap.add_argument("--commands", default=",".join(COMMANDS))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=2, help="commands run side by side")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args(argv)
    root = tempfile.mkdtemp(prefix="asr-kd-kills-")
    try:
        ws = make_workspace(root)
        results = run_cases(ws, [c for c in args.commands.split(",") if c], args.kills,
                             args.seed, args.jobs, say=lambda s: print(s, flush=True))
        print(table(results))
        for r in results.values():
            for p in r.problems:
                print(f"{r.command}: {p}")
        return 0 if all(r.identical and not r.problems for r in results.values()) else 1
    finally:
        if args.keep:
            print(f"work folder: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
