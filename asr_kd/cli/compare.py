"""`asr-kd compare`: WER of two systems on the same references, with significance.

Prints both systems' ``%WER``/``%SER`` lines, a bootstrap 95 % interval of
WER(B) - WER(A) with P(B better than A), and a two-sided exact sign test over
utterances.  Hypothesis files are Kaldi ``text`` or sclite ``trn``; HYP_A and
HYP_B may each be K comma-separated files, K seed runs compared pooled
(:mod:`asr_kd.compare`).
"""
from __future__ import annotations

from ..errors import InputError
from .common import warn


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare two systems' WER with significance tests",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", required=True, help="references (Kaldi text or sclite trn)")
    p.add_argument("hyp_a", metavar="HYP_A", help="system A hypotheses (text or trn); "
                   "A1,A2,...: several runs, pooled")
    p.add_argument("hyp_b", metavar="HYP_B", help="system B hypotheses (text or trn); "
                   "B1,B2,...: as many runs as A")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--details", metavar="DIR",
                   help="also write into DIR the utterances where A and B choose differently, "
                   "with each one's alignment and errors, sorted by the difference, and how "
                   "many utterances each system wins, loses and ties (differences.txt, "
                   "differences.json)")
    from .scoringopts import add_noise_options
    add_noise_options(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..compare import compare_runs, write_compare_details
    from ..results import compare_json
    from ..scoring import kaldi_ser_line, kaldi_wer_line

    if args.n_boot < 1:
        raise InputError(f"--n-boot {args.n_boot}: expected a positive number")
    if args.details:
        from ..fileio import check_writable
        check_writable(args.details, folder=True)
    from .scoringopts import noise_from_args
    flt = noise_from_args(args)
    c = compare_runs(args.ref, args.hyp_a.split(","), args.hyp_b.split(","), flt, args.n_boot,
                     args.seed, lambda msg: warn("compare", msg))
    if args.details:
        write_compare_details(args.details, c, (args.hyp_a, args.hyp_b), args.ref,
                              list(flt.patterns))
    boot, sign = c.boot, c.sign
    if args.json:
        print(compare_json((args.hyp_a, args.hyp_b), c.results, c.runs, boot, sign,
                           flt.record()))
        return 0
    for name, path, r in zip("AB", (args.hyp_a, args.hyp_b), c.results):
        print(f"{name}: {path}")
        print(f"  {kaldi_wer_line(r)}")
        print(f"  {kaldi_ser_line(r)}")
    print(f"WER(B) - WER(A) = {boot.diff:+.2f}  bootstrap 95% interval [{boot.low:+.2f}, "
          f"{boot.high:+.2f}]  (mean {boot.mean:+.2f}, {boot.n} samples, seed {boot.seed})")
    print(f"P(B better than A) = {boot.p_b_better:.3f}")
    print(f"{sign.name}: B better on {sign.b_better}, A better on {sign.a_better}, "
          f"ties {sign.ties}, p = {sign.p_value:.3g}")
    return 0
