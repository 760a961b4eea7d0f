"""`asr-kd compare`: WER of two systems on the same references, with significance.

Prints both systems' ``%WER``/``%SER`` lines, a bootstrap 95 % interval of
WER(B) - WER(A) with P(B better than A), and a two-sided exact sign test over
utterances.  Hypothesis files are Kaldi ``text`` or sclite ``trn``.
"""
from __future__ import annotations

import json

from ..errors import InputError


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="compare two systems' WER with significance tests",
                              description=__doc__.split("\n\n")[0])
    p.add_argument("--ref", required=True, help="references (Kaldi text or sclite trn)")
    p.add_argument("hyp_a", metavar="HYP_A", help="system A hypotheses (text or trn)")
    p.add_argument("hyp_b", metavar="HYP_B", help="system B hypotheses (text or trn)")
    p.add_argument("--n-boot", type=int, default=1000, help="bootstrap samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    from .scoringopts import add_noise_options
    add_noise_options(p)
    p.set_defaults(func=run)


def _shown(ids: list[str]) -> str:
    return ", ".join(ids[:10]) + (f" ... ({len(ids)} in all)" if len(ids) > 10 else "")


def system_nbest(refs: dict[str, str], hyps: dict[str, str], path: str):
    """One single-hypothesis utterance per reference, in reference order.

    Hypothesis ids must match the reference ids exactly (InputError listing the
    differences otherwise).
    """
    from ..nbest.model import Hyp, NBest, Utterance

    missing = [u for u in refs if u not in hyps]
    if missing:
        raise InputError(f"{len(missing)} reference ids have no hypothesis: {_shown(missing)}",
                         path)
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise InputError(f"{len(extra)} hypothesis ids are not in the references: "
                         f"{_shown(extra)}", path)
    return NBest([Utterance(u, [Hyp(hyps[u])], ref) for u, ref in refs.items()])


def run(args) -> int:
    from ..nbest import read_refs
    from ..scoring import corpus_wer, hyp_error_matrix, kaldi_ser_line, kaldi_wer_line
    from ..significance import bootstrap_wer_diff, sign_test

    if args.n_boot < 1:
        raise InputError(f"--n-boot {args.n_boot}: expected a positive number")
    from .scoringopts import noise_from_args
    flt = noise_from_args(args)
    refs = read_refs(args.ref)
    if not refs:
        raise InputError("no references", args.ref)
    refs = {u: flt.text(r) for u, r in refs.items()}   # the scoring filter, both sides
    results, utt_errs = [], []
    for path in (args.hyp_a, args.hyp_b):
        nb = system_nbest(refs, {u: flt.text(h) for u, h in read_refs(path).items()}, path)
        errs = hyp_error_matrix(nb)
        results.append(corpus_wer(nb, [0] * len(nb), errs))
        utt_errs.append([int(e[0, 0]) for e in errs])
    words = [len(r.split()) for r in refs.values()]
    boot = bootstrap_wer_diff(utt_errs[0], utt_errs[1], words, n=args.n_boot, seed=args.seed)
    sign = sign_test(utt_errs[0], utt_errs[1])

    if args.json:
        out = {name: {"path": path, **{k: v for k, v in r.to_dict().items() if k != "oracle_wer"}}
               for name, path, r in zip("ab", (args.hyp_a, args.hyp_b), results)}
        out["bootstrap"] = {"diff": boot.diff, "mean": boot.mean, "low": boot.low,
                            "high": boot.high, "p_b_better": boot.p_b_better,
                            "n": boot.n, "seed": boot.seed}
        out["sign_test"] = {"test": sign.name, "a_better": sign.a_better,
                            "b_better": sign.b_better, "ties": sign.ties,
                            "p_value": sign.p_value}
        out["noise"] = list(flt.patterns)
        print(json.dumps(out))
        return 0
    for name, path, r in zip("AB", (args.hyp_a, args.hyp_b), results):
        print(f"{name}: {path}")
        print(f"  {kaldi_wer_line(r)}")
        print(f"  {kaldi_ser_line(r)}")
    print(f"WER(B) - WER(A) = {boot.diff:+.2f}  bootstrap 95% interval [{boot.low:+.2f}, "
          f"{boot.high:+.2f}]  (mean {boot.mean:+.2f}, {boot.n} samples, seed {boot.seed})")
    print(f"P(B better than A) = {boot.p_b_better:.3f}")
    print(f"{sign.name}: B better on {sign.b_better}, A better on {sign.a_better}, "
          f"ties {sign.ties}, p = {sign.p_value:.3g}")
    return 0
