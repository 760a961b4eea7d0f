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
from .common import warn, warn_case
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
    from ..scoring import corpus_wer, pick_best, write_text, write_trn

    for out in (args.out_hyp, args.out_trn):
        if out:
            check_writable(out)  # before reading a large N-best set
    if args.details:
        check_writable(args.details, folder=True)
    if args.speaker_chars is not None and args.speaker_chars < 1:
        raise InputError(f"--speaker-chars {args.speaker_chars}: expected a positive number")
    from ..nbest.dedup import count_repeats
    from ..results import unscored_json
    from ..score_input import has_refs, load_nbest, require_ref_words
    from ..tuned_on import mismatch, settings_mismatch
    from ..weights_file import decode_settings, parse_weights, read_record
    from .scoringopts import apply_noise, filter_for_weights, noise_from_args, srilm_reader_opts
    rec = read_record(args.weights) if args.weights else None
    flt = filter_for_weights(args, noise_from_args(args), rec, args.weights, "score")
    mode, scale, bias = decode_settings(args.weights, args.decode, args.posterior_scale,
                                        args.deletion_bias, lambda msg: warn("score", msg))
    reader_opts = srilm_reader_opts(args, args.format, args.nbest)
    if streamable(args, mode):
        return run_streamed(args, flt, rec)
    nbest = load_nbest(args.nbest, args.format, args.ref, "score", args.allow_empty,
                       warn=lambda msg: warn("score", msg), **reader_opts)
    repeats = count_repeats(nbest)
    nbest = apply_noise(flt, nbest, "score")
    weights = parse_weights(args.weights, args.weight)
    if rec:
        for msg in [mismatch(rec, nbest, weights)] + settings_mismatch(
                rec, weights, repeats, reader_opts.get("scores"), mode == "consensus"):
            if msg:
                warn("score", msg)
    srilm = print_srilm(args, weights, scale if mode == "consensus" else None)
    from .consensusout import check_consensus_outputs
    check_consensus_outputs(args, mode)
    if mode == "consensus":
        return run_consensus(args, nbest, weights, scale, bias,
                             {**flt.record(), **({"srilm": srilm} if srilm else {})})
    chosen = pick_best(nbest, weights)
    if args.out_hyp:
        write_text(args.out_hyp, nbest, chosen)
    if args.out_trn:
        write_trn(args.out_trn, nbest, chosen)
    if not has_refs(nbest, args.ref or args.nbest):
        if args.details:
            raise InputError("--details needs references (none in the N-best file; give --ref)",
                             args.nbest)
        print("asr-kd score: no references: chosen hypotheses only, no WER computed",
              file=sys.stderr)
        if args.json:
            print(unscored_json(len(nbest), {**flt.record(),
                                             **({"srilm": srilm} if srilm else {})}))
        return 0
    require_ref_words(nbest, args.ref or args.nbest)
    warn_case(nbest, "score")
    r = corpus_wer(nbest, chosen)
    if args.details:
        from ..scoring import chosen_texts
        write_score_details(args, nbest, [t for _, t in chosen_texts(nbest, chosen)], r)
    print_result(args, r, {**flt.record(), **({"srilm": srilm} if srilm else {})})
    return 0


def print_srilm(args, weights: dict[str, float], scale: float | None) -> dict | None:
    """``--print-srilm``: the weights in SRILM form (printed now unless ``--json``; the
    returned dict goes into the JSON); None without the option."""
    if not args.print_srilm:
        return None
    from ..nbest.srilm import format_srilm_weights, srilm_weights
    from .scoringopts import srilm_keys
    srilm = srilm_weights(weights, posterior_scale=scale, **srilm_keys(args))
    if not args.json:   # printed first, so it is there with or without references
        print("\n".join(format_srilm_weights(srilm)))
    return srilm


def print_result(args, r, record: dict) -> None:
    """The %WER, %SER and %ORACLE lines of ``r``, or with ``--json`` one object
    (``record``: the scoring filter, SRILM weights)."""
    from ..results import score_json
    from ..scoring import kaldi_ser_line, kaldi_wer_line, oracle_line

    if args.json:
        print(score_json(r, record))
    else:
        print(kaldi_wer_line(r))
        print(kaldi_ser_line(r))
        print(oracle_line(r))


def streamable(args, mode: str) -> bool:
    """True when this run reads the N-best file in chunks (:mod:`asr_kd.score_stream`):
    1-best decoding of native JSONL without ``--details`` (which aligns the whole set)."""
    from ..fileio import require_regular
    from ..nbest.io import detect_format

    if mode != "1best" or args.details:
        return False
    # before detection, which reads the file: a FIFO would block (as in read_nbest)
    require_regular(args.nbest, folder_ok=True,
                    why=": N-best input is read more than once; write it to a file first")
    return (args.format or detect_format(args.nbest)) == "jsonl"


def run_streamed(args, flt, rec: dict | None) -> int:
    """`score` of a JSONL file read in chunks; prints what :func:`run` prints."""
    from ..results import unscored_json
    from ..score_stream import score_jsonl
    from ..weights_file import parse_weights
    from .consensusout import check_consensus_outputs

    weights = parse_weights(args.weights, args.weight)
    check_consensus_outputs(args, "1best")
    s = score_jsonl(args.nbest, weights, flt, refs_path=args.ref, out_hyp=args.out_hyp,
                    out_trn=args.out_trn, allow_empty=args.allow_empty, rec=rec,
                    warn=lambda msg: warn("score", msg),
                    info=lambda msg: print(f"asr-kd score: {msg}", file=sys.stderr))
    srilm = print_srilm(args, weights, None)
    record = {**flt.record(), **({"srilm": srilm} if srilm else {})}
    if s.result is None:
        print("asr-kd score: no references: chosen hypotheses only, no WER computed",
              file=sys.stderr)
        if args.json:
            print(unscored_json(s.utts, record))
        return 0
    print_result(args, s.result, record)
    return 0


def run_consensus(args, nbest, weights, scale: float, bias: float, record: dict) -> int:
    """`score --decode consensus`: consensus hypotheses, their WER; oracle of the N-best.
    ``record`` goes into the --json output (the scoring filter, SRILM weights)."""
    from ..consensus import consensus_meshes
    from ..results import unscored_json
    from ..score_input import has_refs, require_ref_words
    from ..scoring import texts_wer, write_texts
    from .consensusout import write_consensus_outputs

    meshes = consensus_meshes(nbest, weights, scale)
    texts = [" ".join(m.consensus(bias)) for m in meshes]
    write_consensus_outputs(args, nbest, meshes, weights, scale)
    if args.out_hyp:
        write_texts(args.out_hyp, nbest, texts)
    if args.out_trn:
        write_texts(args.out_trn, nbest, texts, trn=True)
    extra = {"decode": "consensus", "posterior_scale": scale,
             **({"deletion_bias": bias} if bias != 1.0 else {}), **record}
    if not has_refs(nbest, args.ref or args.nbest):
        if args.details:
            raise InputError("--details needs references (none in the N-best file; give --ref)",
                             args.nbest)
        print("asr-kd score: no references: consensus hypotheses only, no WER computed",
              file=sys.stderr)
        if args.json:
            print(unscored_json(len(nbest), extra))
        return 0
    require_ref_words(nbest, args.ref or args.nbest)
    warn_case(nbest, "score")
    r = texts_wer(nbest, texts)
    if args.details:
        write_score_details(args, nbest, texts, r)
    print_result(args, r, extra)
    return 0


def write_score_details(args, nbest, texts: list[str], r) -> None:
    """``--details DIR``: the alignments behind ``r`` (:mod:`asr_kd.details`)."""
    from ..details import align_texts, write_details
    from ..scoring import kaldi_wer_line

    aligns = align_texts([u.utt for u in nbest], [u.ref for u in nbest], texts)
    write_details(args.details, aligns, expect=r.to_dict(), speaker_chars=args.speaker_chars,
                  title=f"asr-kd score --nbest {args.nbest}: {kaldi_wer_line(r)}",
                  extra={"nbest": args.nbest, "weights": args.weights or args.weight})
