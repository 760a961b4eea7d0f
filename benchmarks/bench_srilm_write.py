"""Time of `asr-kd convert-nbest --to srilm` (``write_srilm``) against the number of utterances.

Generated N-best sets (``--hyps`` hypotheses per utterance with ``am``, ``lm0`` and
one extra score, so each utterance is two files: ``<utt>.nbest`` and
``lm:x/<utt>``) are written into a fresh folder under ``--tmp``, ``--repeats``
times per size; the median wall time is reported with files/s and the time per
utterance, whose growth with the set shows whether the writer is linear.

    python benchmarks/bench_srilm_write.py                       # 2k 4k 8k 16k utterances
    python benchmarks/bench_srilm_write.py --sizes 2000,4000 --repeats 1

Whichever ``asr_kd`` is first on the path is timed (``PYTHONPATH=OTHER_TREE`` times
another version).  Writes benchmarks/out/bench_srilm_write.csv and prints a table.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

from tables import write_csv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "out", "bench_srilm_write.csv")
WORDS = "the a cat dog bird sees likes runs eats big small red now and".split()


def make_nbest(n_utts: int, n_hyps: int, seed: int = 0):
    from asr_kd.nbest.model import Hyp, NBest, Utterance

    rng = random.Random(seed)
    utts = []
    for u in range(n_utts):
        hyps = [Hyp(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))),
                    {"am": -rng.uniform(50, 500), "lm0": -rng.uniform(5, 50),
                     "lm:x": -rng.uniform(5, 50)}) for _ in range(n_hyps)]
        utts.append(Utterance(f"utt{u:06d}", hyps))
    return NBest(utts)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="2000,4000,8000,16000", help="utterance counts")
    ap.add_argument("--hyps", type=int, default=5, help="hypotheses per utterance")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tmp", default=None, help="where to write (default: the system temp)")
    ap.add_argument("--csv", default=OUT)
    args = ap.parse_args(argv)
    from asr_kd.nbest.srilm import write_srilm

    import asr_kd
    print(f"asr_kd from {os.path.dirname(asr_kd.__file__)}", file=sys.stderr)
    rows = []
    for n in (int(x) for x in args.sizes.split(",")):
        nbest = make_nbest(n, args.hyps)
        times = []
        for _ in range(args.repeats):
            root = tempfile.mkdtemp(prefix="bench-srilm-", dir=args.tmp)
            try:
                t0 = time.perf_counter()
                write_srilm(nbest, os.path.join(root, "out"))
                times.append(time.perf_counter() - t0)
            finally:
                shutil.rmtree(root, ignore_errors=True)
        t = statistics.median(times)
        rows.append({"utterances": n, "files": 2 * n, "seconds": round(t, 3),
                     "files_per_s": round(2 * n / t), "ms_per_utt": round(1000 * t / n, 3)})
    print(f"{'utterances':>10} {'files':>7} {'seconds':>8} {'files/s':>8} {'ms/utt':>7}")
    for r in rows:
        print(f"{r['utterances']:>10} {r['files']:>7} {r['seconds']:>8.2f} "
              f"{r['files_per_s']:>8} {r['ms_per_utt']:>7.3f}")
    write_csv(args.csv, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
