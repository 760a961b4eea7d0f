"""Crash safety of the real CLI: kill -9 at random moments, SIGTERM and Ctrl-C.

* kill -9: see ``killharness.py``.  Each of train-lm, distill, cache-teacher and
  rescore is killed ``ASR_KD_KILLS`` times (default 2) and restarted until it
  completes; after every kill each final-named file is complete, and the
  finished output is byte-identical to an uninterrupted run's.
* SIGTERM / SIGINT: training writes a checkpoint and exits 143 / 130 with one
  line giving the exact ``--resume`` command, which then finishes the run with
  the uninterrupted run's weights; other commands stop with one line too.

Runs with ``pytest -s`` print the kill table.  Every CLI start imports torch
(seconds on a loaded machine), so the commands run two at a time.
"""
from __future__ import annotations

import os
import shlex
import signal
import time

import pytest

import killharness as kh

pytestmark = pytest.mark.slow  # kill -9 and signals at many points of every command

KILLS = int(os.environ.get("ASR_KD_KILLS", "2"))


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return kh.make_workspace(str(tmp_path_factory.mktemp("kills")))


@pytest.fixture(scope="module")
def kill_results(ws):
    results = kh.run_cases(ws, kh.COMMANDS, KILLS, seed=int(os.environ.get("ASR_KD_SEED", "0")),
                           jobs=2)
    print("\n" + kh.table(results))
    return results


@pytest.mark.parametrize("command", kh.COMMANDS)
def test_kill_9_and_restart_gives_identical_output(kill_results, command):
    r = kill_results[command]
    assert not r.problems, "\n".join(r.problems)
    assert r.identical
    assert r.kills >= KILLS


# -- SIGTERM / SIGINT ------------------------------------------------------------------

def _wait_for(path: str, proc: kh.Proc, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while not os.path.exists(path) and proc.p.poll() is None and time.monotonic() < end:
        time.sleep(0.005)


def _signal_training(ws, command: str, sig: int, out: str, finish: bool) -> dict:
    """Start a training command, send ``sig`` once its first checkpoint exists; with
    ``finish``, run the printed resume command to the end."""
    argv = kh.make_cases(ws)[command].args(out)
    p = kh.Proc(argv)
    _wait_for(os.path.join(out, "train_state.pt"), p)
    p.p.send_signal(sig)
    rc = p.wait(120)
    res = {"argv": argv, "rc": rc, "stderr": p.stderr, "out": out, "temps": kh._rel_files(out)}
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    res["last"] = lines[-1] if lines else ""
    if finish and "to continue, run: " in res["last"]:
        resume = shlex.split(res["last"].split("to continue, run: ", 1)[1])
        res["finish_rc"], res["finish_err"], _ = kh.run_to_end(resume[1:])
    return res


def _signal_other(ws, command: str, sig: int, out: str, tries: int = 5) -> dict:
    """Start cache-teacher/rescore, send ``sig`` as soon as it started working.

    The tiny job can finish before the signal lands (seen on a loaded 2-core
    machine: exit 0, complete output), or land after its work, once the CLI has
    put back the default handler for the interpreter's exit (killed by the
    signal, output complete); then try again in a fresh folder, with no delay,
    up to ``tries`` times.  A command that never handles the signal still fails:
    every try ends killed."""
    for i in range(tries):
        run_out = out if i == 0 else f"{out}-{i}"
        argv = kh.make_cases(ws)[command].args(run_out)
        p = kh.Proc(argv)
        p.started.wait(120)
        if i == 0:
            time.sleep(0.05)
        p.p.send_signal(sig)
        rc = p.wait(120)
        if rc not in (0, -sig):
            break
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    return {"argv": argv, "rc": rc, "stderr": p.stderr, "out": run_out,
            "last": lines[-1] if lines else ""}


SIGNAL_CASES = [("train-lm", signal.SIGTERM, False), ("train-lm", signal.SIGINT, False),
                ("distill", signal.SIGTERM, False), ("distill", signal.SIGINT, True),
                ("cache-teacher", signal.SIGTERM, False), ("rescore", signal.SIGINT, False)]


@pytest.fixture(scope="module")
def signal_runs(ws, kill_results):
    """All signal scenarios, two at a time (after the kill runs: their references)."""
    from concurrent.futures import ThreadPoolExecutor

    def one(case):
        command, sig, finish = case
        out = os.path.join(ws.root, f"sig-{command}-{signal.Signals(sig).name}")
        if command in ("train-lm", "distill"):
            return _signal_training(ws, command, sig, out, finish)
        return _signal_other(ws, command, sig, out)

    with ThreadPoolExecutor(max_workers=2) as ex:
        return dict(zip(SIGNAL_CASES, ex.map(one, SIGNAL_CASES)))


@pytest.mark.parametrize("case", SIGNAL_CASES[:4],
                         ids=[f"{c}-{signal.Signals(s).name}" for c, s, _ in SIGNAL_CASES[:4]])
def test_training_stops_on_signal_with_checkpoint_and_resume_line(ws, signal_runs, case):
    from asr_kd.checkpoint import read_checkpoint as _read_state

    command, sig, finish = case
    r = signal_runs[case]
    assert "Traceback" not in r["stderr"], r["stderr"]
    assert r["rc"] == 128 + sig, r["stderr"]
    name = signal.Signals(sig).name
    state = os.path.join(r["out"], "train_state.pt")
    # one line: what stopped it, where the checkpoint is, the exact command to continue
    prefix = f"asr-kd {command}: stopped by {name} "
    assert r["last"].startswith(prefix), r["stderr"]
    assert f"checkpoint written to {state}; to continue, run: " in r["last"]
    resume = shlex.split(r["last"].split("to continue, run: ", 1)[1])
    assert resume == ["asr-kd", *r["argv"], "--resume"]
    assert _read_state(state)["position"]["global_step"] > 0
    assert not [t for t in r["temps"] if kh._is_temp(t)], r["temps"]
    if finish:  # the printed command finishes the run, as if never stopped
        assert r["finish_rc"] == 0, r["finish_err"]
        ref = os.path.join(ws.root, f"ref-{command}")
        for rel in kh.TRAIN_FINALS:
            assert kh._same_bytes(os.path.join(r["out"], rel), os.path.join(ref, rel)), rel


def test_cache_teacher_stops_on_sigterm_in_one_line(signal_runs):
    r = signal_runs[SIGNAL_CASES[4]]
    assert "Traceback" not in r["stderr"], r["stderr"]
    assert r["rc"] == 128 + signal.SIGTERM, r["stderr"]
    assert r["last"] == ("asr-kd cache-teacher: stopped by SIGTERM; finished shards are kept: "
                         "run the same command again to continue")
    assert not os.path.exists(os.path.join(r["out"], "manifest.json"))


def test_rescore_stops_on_ctrl_c_without_output(signal_runs):
    r = signal_runs[SIGNAL_CASES[5]]
    assert "Traceback" not in r["stderr"], r["stderr"]
    assert r["rc"] == 128 + signal.SIGINT, r["stderr"]
    assert r["last"] == "asr-kd rescore: stopped by SIGINT"
    # no output, not even a temporary: the writer removed its own
    assert kh._rel_files(r["out"]) == [] if os.path.isdir(r["out"]) else True
