#!/usr/bin/env python3
"""Split an N-best set into parts by a hash of the utterance id (asr_kd.nbest.split).

    local/split_nbest.py IN OUTDIR --buckets 10 --part dev=0 --part eval=1 --part lm=2-9 \
        [--format json] [--text-part lm]

Writes OUTDIR/NAME.jsonl.gz for every part (references kept), OUTDIR/NAME.ref
(its references as Kaldi text, when every utterance has one), and with
--text-part NAME also OUTDIR/NAME.txt: that part's references, one per line
(LM text).  --buckets 1 --part NAME=0 just converts a whole file.  Prints the utterance count of every part.  The same id always goes
to the same part, whatever the file's order or size.
"""
import argparse
import os
import sys

from asr_kd.errors import InputError
from asr_kd.fileio import atomic_write
from asr_kd.nbest import read_nbest, write_jsonl
from asr_kd.nbest.split import parse_parts, split_by_id


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("input")
    p.add_argument("outdir")
    p.add_argument("--format", default=None)
    p.add_argument("--buckets", type=int, default=10)
    p.add_argument("--part", action="append", required=True, metavar="NAME=BUCKETS")
    p.add_argument("--text-part", action="append", default=[],
                   help="also write this part's references as plain LM text")
    a = p.parse_args()
    try:
        parts = split_by_id(read_nbest(a.input, a.format), a.buckets, parse_parts(a.part, a.buckets))
        os.makedirs(a.outdir, exist_ok=True)
        for name in a.text_part:
            if name not in parts:
                raise InputError(f"--text-part {name!r} is not a --part")
            missing = [u.utt for u in parts[name] if u.ref is None]
            if missing:
                raise InputError(f"{len(missing)} utterances of part {name!r} have no reference "
                                 f"(first: {missing[0]})", a.input)
            with atomic_write(os.path.join(a.outdir, f"{name}.txt")) as f:
                f.writelines(" ".join(u.ref.split()) + "\n" for u in parts[name])
        for name, nb in parts.items():
            if not len(nb):
                raise InputError(f"part {name!r} is empty", a.input)
            write_jsonl(nb, os.path.join(a.outdir, f"{name}.jsonl.gz"))
            if all(u.ref is not None for u in nb):
                with atomic_write(os.path.join(a.outdir, f"{name}.ref")) as f:
                    f.writelines(f"{u.utt} {' '.join(u.ref.split())}".rstrip() + "\n" for u in nb)
            print(f"{name}: {len(nb)} utterances", file=sys.stderr)
    except InputError as e:
        print(f"{sys.argv[0]}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
