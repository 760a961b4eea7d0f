"""`asr-kd compare`: WER of two systems on the same references, with significance.

Prints both systems' ``%WER``/``%SER`` lines, a bootstrap 95 % interval of
WER(B) - WER(A) with P(B better than A), and a two-sided exact sign test over
utterances.  Hypothesis files are Kaldi ``text`` or sclite ``trn``.  References
without a hypothesis in either system are left out with a warning (the policy
of every command); both systems must cover the same utterances.

Several runs of each system (models trained with different seeds) are compared
pooled: HYP_A and HYP_B are then comma-separated lists of K files each; every
utterance's errors and reference words are summed over the K runs, so the WERs are
the runs' pooled WER and the bootstrap resamples utterances with all their runs
together (the runs of one utterance are not independent samples).
"""
from __future__ import annotations

import json

from ..errors import InputError
from .common import warn
from .score import warn_case


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
        raise InputError(f"{len(missing)} reference ids have no hypothesis here but do in the "
                         f"other system (the systems must cover the same utterances): "
                         f"{_shown(missing)}", path)
    extra = [u for u in hyps if u not in refs]
    if extra:
        raise InputError(f"{len(extra)} hypothesis ids are not in the references: "
                         f"{_shown(extra)}", path)
    return NBest([Utterance(u, [Hyp(hyps[u])], ref) for u, ref in refs.items()])


def run(args) -> int:
    from ..checks import require_ref_words
    from ..nbest import read_refs
    from ..scoring import corpus_wer, hyp_error_matrix, kaldi_ser_line, kaldi_wer_line, pool_wer
    from ..significance import bootstrap_wer_diff, sign_test

    if args.n_boot < 1:
        raise InputError(f"--n-boot {args.n_boot}: expected a positive number")
    if args.details:
        from ..fileio import check_writable
        check_writable(args.details, folder=True)
    from .scoringopts import noise_from_args
    flt = noise_from_args(args)
    refs = read_refs(args.ref)
    if not refs:
        raise InputError("no references", args.ref)
    runs_a, runs_b = args.hyp_a.split(","), args.hyp_b.split(",")
    if len(runs_a) != len(runs_b) or "" in runs_a + runs_b:
        raise InputError(f"HYP_A has {len(runs_a)} runs and HYP_B {len(runs_b)}: give the "
                         "same number of comma-separated files")
    hyps = [[{u: flt.text(h) for u, h in read_refs(path).items()} for path in runs]
            for runs in (runs_a, runs_b)]  # the scoring filter, both sides
    # the policy of every command: references without hypotheses are left out with a warning
    unused = [u for u in refs if all(u not in h for runs in hyps for h in runs)]
    if unused:
        if len(unused) == len(refs):
            raise InputError("no reference id has a hypothesis in either system", args.ref)
        warn("compare", f"{args.ref}: {len(unused)} references have no hypothesis in either "
             f"system and are left out (first: {', '.join(unused[:5])})")
        left_out = set(unused)
        refs = {u: r for u, r in refs.items() if u not in left_out}
    refs = {u: flt.text(r) for u, r in refs.items()}
    require_ref_words(refs.values(), args.ref)
    results, utt_errs = [], []
    for runs, run_hyps in zip((runs_a, runs_b), hyps):
        pooled = [0] * len(refs)
        run_results = []
        for path, hyp in zip(runs, run_hyps):
            nb = system_nbest(refs, hyp, path)
            if not results and not run_results:
                warn_case(nb, "compare")
            errs = hyp_error_matrix(nb)
            run_results.append(corpus_wer(nb, [0] * len(nb), errs))
            pooled = [t + int(e[0, 0]) for t, e in zip(pooled, errs)]
        results.append(pool_wer(run_results))
        utt_errs.append(pooled)
    words = [len(r.split()) * len(runs_a) for r in refs.values()]
    boot = bootstrap_wer_diff(utt_errs[0], utt_errs[1], words, n=args.n_boot, seed=args.seed)
    sign = sign_test(utt_errs[0], utt_errs[1])
    if args.details:
        write_compare_details(args, refs, hyps, utt_errs, list(flt.patterns))

    if args.json:
        out = {name: {"path": path, **{k: v for k, v in r.to_dict().items() if k != "oracle_wer"}}
               for name, path, r in zip("ab", (args.hyp_a, args.hyp_b), results)}
        out["runs"] = len(runs_a)
        out["bootstrap"] = {"diff": boot.diff, "mean": boot.mean, "low": boot.low,
                            "high": boot.high, "p_b_better": boot.p_b_better,
                            "n": boot.n, "seed": boot.seed}
        out["sign_test"] = {"test": sign.name, "a_better": sign.a_better,
                            "b_better": sign.b_better, "ties": sign.ties,
                            "p_value": sign.p_value}
        out.update(flt.record())
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


def write_compare_details(args, refs: dict[str, str], hyps, utt_errs, noise: list[str]) -> None:
    """``--details DIR``: where the systems differ (:mod:`asr_kd.system_diff`)."""
    from ..system_diff import differences, write_differences

    utts = list(refs)
    d = differences(utts, [refs[u] for u in utts],
                    *([[h[u] for u in utts] for h in runs] for runs in hyps))
    if [d.errs_a, d.errs_b] != [list(e) for e in utt_errs]:
        raise RuntimeError("the alignments' errors differ from the compared WERs")
    write_differences(args.details, d, paths=(args.hyp_a, args.hyp_b),
                      extra={"ref": args.ref, "noise": noise})
