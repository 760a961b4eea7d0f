"""Peak memory and time of `asr-kd score` on a generated JSONL set: whole-set path (before)
against the streamed path (after, asr_kd/score_stream.py).

Each set has 5 hypotheses per utterance, 12 words each, 3 scores (am, lm0, lm:x), and a
12-word reference; each run is a fresh process on one thread, peak RSS from
``VmHWM`` in ``/proc/self/status`` (Linux).  Prints a table and writes ``benchmarks/results/cpu_bench_score_memory.csv``.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_score_memory.py [--sizes 100000,300000]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tables import write_csv

ROOT = Path(__file__).resolve().parents[1]
WORDS = "the a of to and in is it that was for on are as with his they at be this".split()


def make_set(path: Path, n_hyp: int) -> None:
    rnd = random.Random(n_hyp)
    with open(path, "w") as f:
        for i in range(n_hyp // 5):
            ref = " ".join(rnd.choices(WORDS, k=12))
            hyps = [{"text": " ".join(rnd.choices(WORDS, k=12)),
                     "scores": {"am": round(rnd.uniform(-300, -100), 4),
                                "lm0": round(rnd.uniform(-60, -5), 4),
                                "lm:x": round(rnd.uniform(-80, -5), 4)}} for _ in range(5)]
            f.write(json.dumps({"utt": f"utt{i:07d}", "ref": ref, "hyps": hyps}) + "\n")


def run(path: Path, streamed: bool) -> tuple[float, float, str]:
    """(peak RSS MiB, seconds, first stdout line) of one score run."""
    code = ("import sys, time\n"
            "from asr_kd import score_set\nfrom asr_kd.cli import main\n"
            + ("" if streamed else "score_set.streamable = lambda req, mode: False\n")
            + "t = time.perf_counter()\n"
            f"rc = main(['score', '--nbest', {str(path)!r}, '--weight', 'am=1', '--weight', "
            "'lm0=0.5', '--weight', 'lm:x=0.2', '--quiet'])\n"
            "hwm = [int(x.split()[1]) for x in open('/proc/self/status') "
            "if x.startswith('VmHWM:')][0]\n"   # ru_maxrss would keep the parent's peak
            "print('TIME', time.perf_counter() - t, hwm, file=sys.stderr)\n"
            "sys.exit(rc)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(r.stderr)
    _, secs, kb = r.stderr.strip().splitlines()[-1].split()
    return int(kb) / 1024, float(secs), r.stdout.splitlines()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="100000,300000,1000000",
                    help="hypotheses per set, comma-separated")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/cpu_bench_score_memory.csv"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            path = Path(tmp) / f"set{n}.jsonl"
            make_set(path, n)
            whole, streamed = run(path, False), run(path, True)
            assert whole[2] == streamed[2], (whole[2], streamed[2])   # the same %WER line
            rows.append({"hyps": n, "whole_mib": round(whole[0], 1),
                         "whole_s": round(whole[1], 1), "streamed_mib": round(streamed[0], 1),
                         "streamed_s": round(streamed[1], 1), "wer_line": whole[2]})
            path.unlink()
            r = rows[-1]
            print(f"{n:>9} hyps  whole {r['whole_mib']:7.1f} MiB {r['whole_s']:6.1f} s   "
                  f"streamed {r['streamed_mib']:7.1f} MiB {r['streamed_s']:6.1f} s", flush=True)
    write_csv(args.out, rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
