"""`asr-kd score`: pick the best hypothesis per utterance with given weights, report WER.

Prints Kaldi-style ``%WER``, ``%SER`` and ``%ORACLE`` lines (or one JSON object
with ``--json``).  References come from the N-best file or ``--ref`` (Kaldi
``text`` or sclite ``trn``).  Without any reference the chosen hypotheses are
still written and no WER is computed.
"""
from __future__ import annotations

import argparse
import sys

from ..errors import InputError
from ..fileio import check_writable
from .common import warn
from .scoringopts import FEATURES_HELP


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "score", help="choose the best hypotheses with given weights and report WER",
        description=__doc__.split("\n\n")[0],
        epilog=FEATURES_HELP + "  wip           (a weight key) multiplies the word count: positive is a "
        "bonus per word;\n                Kaldi's word_ins_penalty P (a cost) is wip = -LMWT x P\n",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nbest", required=True, help="N-best file or folder")
    p.add_argument("--format", default=None, help="N-best format (default: detect)")
    w = p.add_mutually_exclusive_group(required=True)
    w.add_argument("--weights", help='weights JSON, e.g. {"am": 1.0, "lm0": 0.5, "wip": 0.2}')
    w.add_argument("--weight", action="append", metavar="KEY=VALUE",
                   help="one weight (repeatable): a score key, a built-in feature (below), or "
                   "'wip', which multiplies the word count")
    p.add_argument("--ref", help="references (Kaldi text or sclite trn); default: from the N-best")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out-hyp", help="write chosen hypotheses as Kaldi text")
    p.add_argument("--out-trn", help="write chosen hypotheses as sclite trn")
    p.add_argument("--allow-empty", action="store_true",
                   help="score an N-best set with no utterances (default: an error, since "
                   "an empty set gives %%WER 0.00 whatever went wrong)")
    p.add_argument("--details", metavar="DIR",
                   help="also write where the errors are into DIR: per-utterance alignments "
                   "(alignments.pra, per_utt.txt), Kaldi-style ops.txt, summary.txt (top "
                   "confusions, insertions, deletions, WER per speaker) and details.json")
    p.add_argument("--speaker-chars", type=int, default=None, metavar="N",
                   help="--details: the speaker is the first N characters of the utterance id "
                   "(WSJ, ATIS: 3); default: the part before the first '-' or '_', if any")
    p.add_argument("--print-srilm", action="store_true",
                   help="also print the weights in SRILM units and form (log10 scales, "
                   "-rescore-lmw/-rescore-wtw, nbest-optimize order; 'srilm' in --json)")
    from .scoringopts import add_noise_options, add_srilm_scores_option
    add_srilm_scores_option(p)
    add_noise_options(p)
    add_decode_args(p)
    from .consensusout import add_consensus_output_args
    add_consensus_output_args(p)
    p.set_defaults(func=run)


def add_decode_args(p) -> None:
    """``--decode``, ``--posterior-scale`` and ``--deletion-bias`` (score)."""
    p.add_argument("--decode", choices=["1best", "consensus"], default=None,
                   help="1best: the highest-total hypothesis (default); consensus: align the "
                   "list into a confusion network with posteriors softmax(total / "
                   "--posterior-scale) and take the best word per slot (as SRILM's "
                   "nbest-lattice -use-mesh); default: the weights file's \"decode\", else 1best")
    p.add_argument("--posterior-scale", type=float, default=None,
                   help="consensus: divide the weighted total by this before the softmax "
                   "(SRILM's -posterior-scale; 0 gives the 1-best choice); default: the "
                   "weights file's \"posterior_scale\"")
    p.add_argument("--deletion-bias", type=float, default=None,
                   help="consensus: multiply the empty word's posterior by this "
                   "(SRILM's -deletion-bias); default: the weights file's "
                   "\"deletion_bias\", else 1")


def run(args) -> int:
    from ..results import score_json, unscored_json
    from ..score_set import ScoreRequest, score_set
    from ..scoring import kaldi_ser_line, kaldi_wer_line, oracle_line
    from .scoringopts import scoring_input

    for out in (args.out_hyp, args.out_trn):
        if out:
            check_writable(out)  # before reading a large N-best set
    if args.details:
        check_writable(args.details, folder=True)
    if args.speaker_chars is not None and args.speaker_chars < 1:
        raise InputError(f"--speaker-chars {args.speaker_chars}: expected a positive number")
    req = ScoreRequest(
        **scoring_input(args), weights=args.weights, weight=args.weight, out_hyp=args.out_hyp,
        out_trn=args.out_trn, allow_empty=args.allow_empty, details=args.details,
        speaker_chars=args.speaker_chars, decode=args.decode,
        posterior_scale=args.posterior_scale, deletion_bias=args.deletion_bias,
        out_mesh=args.out_mesh, rover_control=args.write_rover_control)
    out = score_set(req, warn=lambda msg: warn("score", msg),
                    info=lambda msg: print(f"asr-kd score: {msg}", file=sys.stderr),
                    show=None if args.json else print)
    if out.result is None:
        what = "consensus" if out.decode == "consensus" else "chosen"
        print(f"asr-kd score: no references: {what} hypotheses only, no WER computed",
              file=sys.stderr)
        if args.json:
            print(unscored_json(out.utts, out.record))
    elif args.json:
        print(score_json(out.result, out.record))
    else:
        print(kaldi_wer_line(out.result))
        print(kaldi_ser_line(out.result))
        print(oracle_line(out.result))
    return 0
