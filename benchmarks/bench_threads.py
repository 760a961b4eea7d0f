"""CPU oversubscription: jobs side by side with and without a thread budget.

Every torch process sizes its thread pool by the cores it may use, whatever else
runs. Two jobs at once on an N-core machine then run 2N threads on N cores, and
OpenMP's spinning barriers make each far slower than half speed. This times, as
whole processes side by side in one run:

- rescoring one N-best set with one job (all cores), and with two shard jobs at once
  (``--shard 0/2`` and ``1/2``, what ``run.sh --nj 2`` runs) without a budget
  ("before": each job takes every core) and with ``--threads cores/2`` ("after");
- a training job alone, and two at once without and with ``--threads cores/2``
  (the recipe trains the baseline beside the student, K teachers side by side).

``OMP_NUM_THREADS`` is removed from the jobs' environment so "before" is torch's own
default. Setup (a mini task, a 2x256 LM) is made once under ``--work``.

    python benchmarks/bench_threads.py                      # about 5 minutes on 2 cores
    python benchmarks/bench_threads.py --quick              # smaller, for a smoke test

Prints a table and writes benchmarks/results/cpu_bench_threads.csv (``--out``).
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time

from bench_distill_cpu import cpu_model  # the script beside this one (stdlib imports only)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINI = os.path.join(ROOT, "recipes", "wsj", "local", "make_mini_task.py")
TEACHER_CONF = os.path.join(ROOT, "recipes", "wsj", "conf", "teacher.yaml")


def env_without_threads() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env


def asr_kd(*args) -> list[str]:
    return [sys.executable, "-m", "asr_kd", *map(str, args)]


def run_together(cmds: list[list[str]], log_dir: str, tag: str) -> float:
    """Start every command at once; wall seconds until the last one ends."""
    env = env_without_threads()
    t0 = time.perf_counter()
    procs = []
    for i, c in enumerate(cmds):
        log = open(os.path.join(log_dir, f"{tag}.{i}.log"), "w")
        procs.append((subprocess.Popen(c, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    for p, log in procs:
        rc = p.wait()
        log.close()
        if rc != 0:
            raise SystemExit(f"bench_threads: {tag} failed (exit {rc}); see {log.name}")
    return time.perf_counter() - t0


def setup(work: str, quick: bool) -> dict[str, str]:
    """Mini task, vocabulary and one trained 2x256 LM (made once, reused)."""
    d = {"mini": os.path.join(work, "mini"), "lang": os.path.join(work, "lang"),
         "lm": os.path.join(work, "lm"), "logs": os.path.join(work, "logs")}
    os.makedirs(d["logs"], exist_ok=True)
    env = env_without_threads()
    if not os.path.isfile(os.path.join(d["mini"], "lm_text.txt")):
        subprocess.run([sys.executable, MINI, "--quiet", "--n-train-words",
                        "20000" if quick else "60000", "--n-dev", "60" if quick else "300",
                        "--n-eval", "10", "--nbest", "20", d["mini"]], env=env, check=True)
    text = os.path.join(d["mini"], "lm_text.txt")
    d["text"] = text
    # The timed training jobs use a slice of the text: one epoch of a few seconds alone.
    d["train_text"] = os.path.join(work, "train_slice.txt")
    with open(text, encoding="utf-8") as f, open(d["train_text"], "w", encoding="utf-8") as g:
        g.writelines(line for _, line in zip(range(400 if quick else 1500), f))
    d["nbest"] = os.path.join(d["mini"], "dev", "nbest")
    if not os.path.isfile(os.path.join(d["lang"], "words.txt")):
        subprocess.run(asr_kd("vocab", "--text", text, "--out", d["lang"]), env=env, check=True,
                       stdout=subprocess.DEVNULL)
    if not os.path.isfile(os.path.join(d["lm"], "model.safetensors")):
        subprocess.run(asr_kd("train-lm", "--config", TEACHER_CONF, "--train", text, "--valid",
                              text, "--vocab", d["lang"], "--out", d["lm"], "--epochs", 1,
                              "--quiet", "--device", "cpu"), env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return d


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default=os.path.join(ROOT, "benchmarks", "out", "threads"),
                    help="scratch folder (setup is reused)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "cpu_bench_threads.csv"))
    ap.add_argument("--repeats", type=int, default=3, help="runs per case (median reported)")
    ap.add_argument("--quick", action="store_true", help="smaller task (smoke test)")
    args = ap.parse_args(argv)

    cores = len(os.sched_getaffinity(0))
    half = max(1, cores // 2)
    d = setup(args.work, args.quick)
    out = os.path.join(args.work, "run")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)

    def rescore(shard: str | None, threads: int | None, i: int) -> list[str]:
        c = asr_kd("rescore", "--nbest", d["nbest"], "--format", "kaldi", "--model", d["lm"],
                   "--name", "lm", "--out", os.path.join(out, f"r{i}.jsonl.gz"), "--quiet",
                   "--device", "cpu")
        if shard:
            c += ["--shard", shard]
        if threads:
            c += ["--threads", str(threads)]
        return c

    def train(threads: int | None, i: int) -> list[str]:
        c = asr_kd("train-lm", "--config", TEACHER_CONF, "--train", d["train_text"], "--valid",
                   d["train_text"], "--vocab", d["lang"], "--out", os.path.join(out, f"t{i}"),
                   "--epochs", 1, "--quiet", "--device", "cpu")
        if threads:
            c += ["--threads", str(threads)]
        return c

    cases = [  # (work, case, jobs, threads per job given, commands)
        ("rescore", "1 job, all cores", 1, None, lambda r: [rescore(None, None, r)]),
        ("rescore", "--nj 2, no budget (before)", 2, None,
         lambda r: [rescore("0/2", None, r), rescore("1/2", None, r)]),
        ("rescore", f"--nj 2, --threads {half} (after)", 2, half,
         lambda r: [rescore("0/2", half, r), rescore("1/2", half, r)]),
        ("train", "1 job alone, all cores", 1, None, lambda r: [train(None, 10 * r)]),
        ("train", "2 jobs at once, no budget (before)", 2, None,
         lambda r: [train(None, 10 * r + 1), train(None, 10 * r + 2)]),
        ("train", f"2 jobs at once, --threads {half} (after)", 2, half,
         lambda r: [train(half, 10 * r + 3), train(half, 10 * r + 4)]),
    ]
    times: dict[int, list[float]] = {i: [] for i in range(len(cases))}
    for r in range(args.repeats):  # cases interleaved, so drift hits all alike
        order = range(len(cases)) if r % 2 == 0 else reversed(range(len(cases)))
        for i in order:
            work, name, _, _, make = cases[i]
            if work == "train":
                for sub in os.listdir(out):
                    if sub.startswith("t"):
                        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
            t = run_together(make(r), d["logs"], f"case{i}.rep{r}")
            times[i].append(t)
            print(f"  repeat {r + 1}: {work:7s} {name:40s} {t:7.1f} s", file=sys.stderr)

    rows = []
    for i, (work, name, jobs, threads, _) in enumerate(cases):
        t = statistics.median(times[i])
        alone = statistics.median(times[0 if work == "rescore" else 3])
        # Work done: rescoring splits one set over the jobs; training runs a whole job each.
        work_units = 1 if work == "rescore" else jobs
        rows.append({"work": work, "case": name, "jobs": jobs,
                     "threads_per_job": threads or f"default ({cores})", "wall_s": round(t, 2),
                     "throughput_vs_1_job": round(work_units * alone / t, 3),
                     "cores": cores, "cpu": cpu_model(), "repeats": args.repeats})
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"\n{cores} cores ({cpu_model()}); median of {args.repeats} runs; "
          "throughput = work done per second relative to one job alone with all cores\n")
    print("| work | case | jobs | threads/job | wall s | throughput vs 1 job |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['work']} | {r['case']} | {r['jobs']} | {r['threads_per_job']} | "
              f"{r['wall_s']:.1f} | {r['throughput_vs_1_job']:.2f} |")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
