"""Valid perplexity against wall time: today's training against an earlier revision's.

Runs two ``asr-kd train-lm`` jobs side by side, one thread and one core each
(``taskset``), on the same text, vocabulary and seed:

* ``new``: this checkout with ``--config`` (the recipe's config as it is now);
* ``old``: the ``asr_kd`` package and the same config file as they were at git
  revision ``--baseline-rev`` (extracted to a temporary folder), for
  ``--old-epochs`` epochs (its speed per epoch is what matters; its schedule is
  the same as the new run's for those epochs).

Reads each run's ``metrics.csv`` and prints, per epoch: tokens seen, cumulative
training seconds, valid perplexity (sentence mode, float32), tokens/s; then the
time each run needed to reach the old run's last valid perplexity and the
perplexity difference after the same number of tokens.  Writes a CSV.

    python benchmarks/time_to_quality.py --baseline-rev 55e8fe3 \\
        --config recipes/wsj/conf/ptb_teacher.yaml --train ../shared/data/ptb/ptb.train.txt \\
        --valid ../shared/data/ptb/ptb.valid.txt --old-epochs 1 --work /tmp/ttq
"""
from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import io
import tarfile

from tables import print_markdown, write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV_MALLOC = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296",
              "MALLOC_TOP_PAD_": "268435456"}


def extract_rev(rev: str, dest: str) -> str:
    """``asr_kd/`` and the recipe confs at ``rev`` into ``dest``; returns dest."""
    data = subprocess.run(["git", "-C", ROOT, "archive", rev, "asr_kd", "recipes"],
                          check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        t.extractall(dest, filter="data")
    return dest


def launch(pkg_root: str, config: str, args, out: str, core: int, extra: list[str]):
    env = dict(os.environ, PYTHONPATH=pkg_root, OMP_NUM_THREADS="1", **ENV_MALLOC)
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "asr_kd", "train-lm",
           "--config", config, "--train", args.train, "--valid", args.valid,
           "--vocab", os.path.join(args.work, "lang"), "--out", out, "--seed", str(args.seed),
           "--threads", "1", "--quiet"] + extra
    log = open(out + ".log", "w")
    print("#", " ".join(cmd), "  (PYTHONPATH=%s)" % pkg_root, flush=True)
    return subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=pkg_root)


def read_metrics(path: str) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline-rev", required=True, help="git revision of the old code")
    ap.add_argument("--config", required=True, help="config path inside the repository")
    ap.add_argument("--train", required=True)
    ap.add_argument("--valid", required=True)
    ap.add_argument("--work", required=True, help="scratch folder (models, logs)")
    ap.add_argument("--old-epochs", type=int, default=1)
    ap.add_argument("--new-args", default="", help="extra train-lm options for the new run")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vocab-size", type=int, default=10000)
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "time_to_quality.csv"))
    args = ap.parse_args(argv)
    args.train, args.valid = os.path.abspath(args.train), os.path.abspath(args.valid)
    os.makedirs(args.work, exist_ok=True)
    args.work = os.path.abspath(args.work)
    subprocess.run([sys.executable, "-m", "asr_kd", "vocab", "--text", args.train, "--out",
                    os.path.join(args.work, "lang"), "--max-size", str(args.vocab_size)],
                   check=True, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT))
    old_root = extract_rev(args.baseline_rev, os.path.join(args.work, "old_src"))
    runs = {"old": os.path.join(args.work, "old"), "new": os.path.join(args.work, "new")}
    procs = [launch(old_root, os.path.join(old_root, args.config), args, runs["old"], 0,
                    ["--epochs", str(args.old_epochs)]),
             launch(ROOT, os.path.join(ROOT, args.config), args, runs["new"], 1,
                    args.new_args.split())]
    for p in procs:
        if p.wait() != 0:
            sys.exit(f"time_to_quality: a training run failed (logs: {args.work}/*.log)")
    rows = []
    for name, d in runs.items():
        secs = toks = 0.0
        for m in read_metrics(os.path.join(d, "metrics.csv")):
            secs += float(m["seconds"])
            toks += float(m["tokens"])
            rows.append(dict(run=name, epoch=int(m["epoch"]), tokens=int(toks),
                             train_seconds=round(secs, 1),
                             valid_ppl=round(float(m["valid_ppl"]), 2),
                             tokens_per_s=round(float(m["tokens_per_s"]))))
    print_markdown(rows, ["run", "epoch", "tokens", "train_seconds", "valid_ppl", "tokens_per_s"],
                   ["run", "epoch", "tokens", "training s", "valid ppl", "tokens/s"])
    old = [r for r in rows if r["run"] == "old"]
    new = [r for r in rows if r["run"] == "new"]
    for o in old:
        n = next((r for r in new if r["epoch"] == o["epoch"]), None)
        if n:
            print(f"# epoch {o['epoch']}: valid ppl new/old = "
                  f"{n['valid_ppl'] / o['valid_ppl']:.4f}, "
                  f"time new/old = {n['train_seconds'] / o['train_seconds']:.3f}")
    write_csv(args.out, rows)
    print(f"# wrote {args.out}")


if __name__ == "__main__":
    main()
