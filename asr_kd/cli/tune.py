"""`asr-kd tune`: search score weights minimising WER on a dev N-best set.

The first ``--scores`` key is fixed at 1.0; the others (and ``wip`` with
``--wip``) are searched.  Prints the best weights, their Kaldi-style WER lines
and the WER curve along the main LM weight; writes the weights as JSON.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from ..fileio import check_writable
from .common import warn
from .scoringopts import FEATURES_HELP


SEARCH_HELP = """\
search (deterministic; details in asr_kd/tune.py):
  scale     each feature is divided by its spread, the median over utterances
            of (max - min) within the utterance's list (utterances where it
            varies; 1 if it never does), so a key around -0.2 and one around
            -100 tune alike; weights are written back in original units with
            the first key exactly 1.0
  grid      normalised weights 0 and 2^-8 .. 2^8, as many per octave (1-8) as
            keep the full product <= 4096 points (wip and --signed keys also
            negative); beyond that, one sweep per weight
  nested    the search is also run for every subset of the free weights (the
            others 0) and those solutions are extra start points: adding a key
            or --wip never gives a worse dev WER than leaving it out
  refine    from every start, 41-point line searches along each weight and each
            pair of weights, spans halved 6 times; the best result wins
  consensus (--decode consensus) from the 1-best result at posterior scale 0 (=
            the 1-best choice): the scale over 0 and 2^-8 .. 2^8 units (unit: the
            median gap between the best and second-best total), then the refine
            step (3 halvings) over weights and scale, all on one fixed alignment;
            re-aligned with the result and searched again (2 rounds, a round kept
            only if its exact WER is lower); never worse on dev than 1-best
"""


def register(subparsers) -> None:
    p = subparsers.add_parser("tune", help="tune score weights on dev N-best lists",
                              description=__doc__.split("\n\n")[0],
                              epilog=FEATURES_HELP + "\n" + SEARCH_HELP,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nbest", required=True, help="dev N-best file or folder")
    p.add_argument("--format", default=None, help="N-best format (default: detect)")
    p.add_argument("--ref", help="references (Kaldi text or sclite trn); default: from the N-best")
    p.add_argument("--scores", required=True,
                   help="comma-separated score keys, first fixed at 1.0, e.g. am,lm0,lm:student "
                   "or score*words,rank,lm:teacher (built-in features below)")
    p.add_argument("--wip", action="store_true",
                   help="also tune wip, the weight of the word count: added to the score, so "
                   "a positive wip favours more words (a bonus). Kaldi's word_ins_penalty is "
                   "a cost: wip = -(LM weight) x word_ins_penalty, with am at 1")
    p.add_argument("--out", required=True, help="write the best weights here (JSON), with "
                   'what they were tuned on under "_tuned_on" (file, utterance count, a hash of '
                   "the ids, keys, score spreads), which score checks")
    p.add_argument("--signed", default="",
                   help="comma-separated keys whose weight may be negative (e.g. oov:student "
                   "as an OOV penalty); wip always may")
    p.add_argument("--fallback", metavar="WEIGHTS",
                   help="weights JSON (e.g. the first pass's) to write instead, new keys at 0, "
                   "unless tuning generalises on this dev set: in --folds-fold cross-validation "
                   "the weights tuned without a fold must beat WEIGHTS on that fold (small dev "
                   "sets let a weak LM win a few errors by chance)")
    p.add_argument("--folds", type=int, default=5, help="folds of --fallback's check (default 5)")
    p.add_argument("--fallback-confidence", type=float, default=0.5,
                   help="required bootstrap P(cross-validated tuning better than --fallback) "
                   "(default 0.5: fewer out-of-fold errors)")
    p.add_argument("--decode", choices=["1best", "consensus"], default="1best",
                   help="consensus: after the 1-best search, also tune the posterior scale "
                   "and re-tune the weights for consensus decoding (asr_kd/tune_consensus.py); "
                   "the weights file then records \"decode\" and \"posterior_scale\", and "
                   "the curve is along the scale (default: 1best)")
    p.add_argument("--lm-key", help="weight whose WER curve is shown (default: the LM's: the first "
                   "lm:NAME key, else lm, lm0 or another key starting with lm, else the "
                   "second key)")
    p.add_argument("--plot", help="also plot the curve to this PNG")
    p.add_argument("--print-srilm", action="store_true",
                   help="also print the weights in SRILM units and form (log10 scales, "
                   "-rescore-lmw/-rescore-wtw, nbest-optimize order)")
    from .scoringopts import add_noise_options, add_srilm_scores_option
    add_srilm_scores_option(p)
    add_noise_options(p)
    from .tunestart import add_start_args
    add_start_args(p)
    p.add_argument("--curve-out", help="also write the curve as JSON "
                   '({"key": ..., "best": ..., "wer": ..., "points": [[weight, WER], ...]})')
    p.set_defaults(func=run)


def run(args) -> int:
    from ..tune_set import TuneRequest, tune_set
    from .scoringopts import scoring_input

    keys = [k.strip() for k in args.scores.split(",") if k.strip()]
    if not keys:
        raise InputError(f"--scores {args.scores!r}: expected comma-separated score keys")
    for out in (args.out, args.curve_out, args.plot):
        if out:
            check_writable(out)  # before reading and tuning
    if args.decode == "consensus" and args.fallback:
        raise InputError("--fallback is a 1-best check; it cannot be combined with "
                         "--decode consensus")
    req = TuneRequest(
        **scoring_input(args), keys=keys, wip=args.wip, out=args.out,
        signed=[k for k in args.signed.split(",") if k], fallback=args.fallback,
        folds=args.folds, fallback_confidence=args.fallback_confidence, decode=args.decode,
        lm_key=args.lm_key, plot=args.plot, curve_out=args.curve_out, start=args.start,
        fixed=[k.strip() for k in args.fixed.split(",") if k.strip()])
    res = tune_set(req, warn=lambda msg: warn("tune", msg),
                   info=lambda msg: print(f"asr-kd tune: {msg}", file=sys.stderr), log=print)
    if res.scale is None:
        print_tuned(args, res)
    else:
        print_consensus(args, res)
    return 0


def _wer_lines(res) -> None:
    from ..scoring import kaldi_ser_line, kaldi_wer_line, oracle_line

    print(kaldi_wer_line(res.result))
    print(kaldi_ser_line(res.result))
    print(oracle_line(res.result))
    if res.filter:
        print("scoring filter: " + res.filter.describe())


def print_tuned(args, res) -> None:
    """The 1-best result: the fallback check, the weights, spreads, WER lines, the
    SRILM form (``--print-srilm``) and the curve."""
    g = res.guard
    if g is not None:
        verdict = ("kept the fallback's weights" if g.fell_back else "kept the tuned weights")
        print(f"fallback {args.fallback}: {args.folds}-fold cross-validated tuning "
              f"{g.cv_errors} errors vs fallback {g.fallback_errors}, "
              f"P(tuned better) = {g.p_tuned_better:.3f}: {verdict}")
    print("best weights: " + " ".join(f"{k}={v:g}" for k, v in res.weights.items()))
    print("spreads (median within-utterance range): "
          + " ".join(f"{k}={v:g}" for k, v in res.spreads.items()))
    _wer_lines(res)
    if args.print_srilm:
        from ..nbest.srilm import format_srilm_weights, srilm_weights
        from .scoringopts import srilm_keys
        print("\n".join(format_srilm_weights(srilm_weights(res.weights, **srilm_keys(args)))))
    print(f"\nWER along {res.curve_key} (other weights at their best):")
    print(f"{res.curve_key:>12}  WER")
    for x, wer in res.curve:
        mark = "  <- best" if x == res.best else ""
        print(f"{x:12.6g}  {wer:.2f}{mark}")


def print_consensus(args, res) -> None:
    """The consensus result: weights and posterior scale, WER lines, the SRILM form
    (``--print-srilm``) and the curve along the scale."""
    key = res.curve_key
    print("best weights: " + " ".join(f"{k}={v:g}" for k, v in res.weights.items())
          + f" {key}={res.scale:g}")
    if res.scale == 0:
        print("consensus did not beat 1-best on this dev set: scale 0 (the 1-best choice)")
    _wer_lines(res)
    if args.print_srilm:
        from ..nbest.srilm import format_srilm_weights, srilm_weights
        print("\n".join(format_srilm_weights(srilm_weights(res.weights,
                                                            posterior_scale=res.scale))))
    print(f"\nWER along {key} (weights at their best, on the best result's alignment):")
    print(f"{key:>16}  WER")
    for x, wer in res.curve:
        mark = "  <- best" if x == res.scale else ""
        print(f"{x:16.6g}  {wer:.2f}{mark}")
