"""`asr-kd convert-nbest`: read an N-best set in any format, write JSONL, Kaldi or SRILM.

    asr-kd convert-nbest [--from FMT] [--to jsonl|kaldi|srilm] IN OUT [--ref REF]
                         [--nemo-n N] [--nemo-manifest M] [--words-txt W] [--dedup]
                         [--allow-empty]
                         [--srilm-scores NAME=DIR] [--srilm-version 1|2|3]
                         [--srilm-am KEY] [--srilm-lm KEY] [--out-ref FILE]

``--from`` defaults to detection from IN; ``--to`` defaults to ``jsonl``.
``--ref`` (Kaldi ``text`` or sclite ``trn``) replaces any references in IN;
every utterance needs one, references without an N-best entry are left out
with a warning, and so are stored references it changes and ids that are only
positions.  An input with no utterances is an error unless ``--allow-empty``.  ``--dedup`` drops repeated hypotheses within an
utterance, keeping the first (best-ranked) copy (``asr_kd.nbest.dedup``).
``--to srilm`` writes ``OUT/<utt>.nbest`` (``asr_kd.nbest.srilm.write_srilm``)
and every other score as an extra score folder ``OUT/<name>/``; the command
to read them back is printed.  ``--out-ref`` writes the references as Kaldi
``text`` (nbest-optimize's ``-refs``).
"""
from __future__ import annotations

import os
import sys

from ..errors import InputError
from ..checks import require_utterances
from ..fileio import atomic_write, check_writable
from ..nbest import FORMATS, WRITABLE_FORMATS, read_nbest, write_nbest
from ..nbest.io import detect_format
from .common import warn


def register(sub) -> None:
    p = sub.add_parser("convert-nbest", help="convert N-best lists between formats",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("input", metavar="IN", help="N-best file or folder")
    p.add_argument("output", metavar="OUT", help="output file (jsonl) or folder (kaldi, srilm)")
    p.add_argument("--from", dest="src", choices=FORMATS, default=None,
                   help="input format (default: detect from IN)")
    p.add_argument("--to", dest="dst", choices=WRITABLE_FORMATS, default="jsonl",
                   help="output format: jsonl (asr_kd's own), kaldi "
                   "(nbest-to-linear folder), srilm (one list per utterance; see --srilm-*) "
                   "(default: jsonl)")
    p.add_argument("--ref", help="references: Kaldi text or sclite trn file")
    p.add_argument("--nemo-n", type=int, help="nemo: hypotheses per utterance")
    p.add_argument("--nemo-manifest", help="nemo: manifest JSONL giving ids and references")
    p.add_argument("--words-txt", help="kaldi: words.txt symbol table for integer 'words'")
    p.add_argument("--srilm-version", choices=("1", "2", "3"), default="3",
                   help="--to srilm: NBestList1.0 (bytelog total), NBestList2.0 (bytelog "
                   "word scores) or 3, headerless 'am lm nwords words' in log10, full "
                   "precision (default: 3)")
    p.add_argument("--srilm-am", metavar="KEY", help="the score key of SRILM's acoustic "
                   "column, read (srilm input) and written (--to srilm) (default: am)")
    p.add_argument("--srilm-lm", metavar="KEY", help="the score key of SRILM's LM column, "
                   "read (srilm input) and written (--to srilm) (default: lm0)")
    p.add_argument("--out-ref", help="also write the references as Kaldi text")
    from .scoringopts import add_srilm_scores_option
    add_srilm_scores_option(p)
    p.add_argument("--dedup", action="store_true",
                   help="drop repeated hypotheses within an utterance (same words), keeping "
                   "the first, best-ranked copy; e.g. HyPoradise fills 5 slots with repeats")
    p.add_argument("--allow-empty", action="store_true",
                   help="write an empty output when IN holds no utterances (default: an "
                   "error, since that is usually the wrong format or folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    src = args.src or detect_format(args.input)
    opts = {}
    if src == "nemo":
        opts = {"n": args.nemo_n, "manifest": args.nemo_manifest}
    elif args.nemo_n is not None or args.nemo_manifest is not None:
        raise InputError(f"--nemo-n / --nemo-manifest apply to nemo input, not {src}")
    if src == "kaldi" and args.words_txt:
        opts["words_txt"] = args.words_txt
    from .scoringopts import srilm_reader_opts
    opts.update(srilm_reader_opts(args, src, args.input))
    if args.out_ref:
        check_writable(args.out_ref)
    nbest = read_nbest(args.input, src, **opts)
    require_utterances(nbest, args.input, args.allow_empty, f"read as {src}")
    if args.ref:
        from ..score_input import attach_ref_file
        attach_ref_file(nbest, args.ref, args.input, lambda msg: warn("convert-nbest", msg))
    elif getattr(nbest, "positional_ids", False):
        warn("convert-nbest", f"{args.input} has no utterance ids: they are written as "
             f"positions 0..{len(nbest) - 1}, so a --ref given later is matched by position "
             "only: it must list the same utterances in the same order")
    dropped = 0
    if args.dedup:
        from ..nbest.dedup import dedup_hyps
        dropped = dedup_hyps(nbest)
    if args.out_ref:
        missing = [u.utt for u in nbest if u.ref is None]
        if missing:
            raise InputError(f"--out-ref: {len(missing)} utterances have no reference "
                             f"(e.g. {', '.join(missing[:5])}); give --ref", args.input)
    wopts = {}
    am, lm = args.srilm_am or "am", args.srilm_lm or "lm0"
    if args.dst == "srilm":
        wopts = {"version": args.srilm_version, "am": am, "lm": lm}
    write_nbest(nbest, args.output, args.dst, **wopts)
    if args.out_ref:
        with atomic_write(args.out_ref) as f:
            for u in nbest:
                f.write(f"{u.utt} {u.ref}\n" if u.ref.strip() else f"{u.utt}\n")
    if args.dst == "srilm":
        from ..nbest.io import SRILM_LIST
        from ..nbest.srilm import written_score_names
        names = written_score_names(nbest, args.srilm_version, am, lm)
        print(f"asr-kd convert-nbest: N-best files in utterance order (SRILM -nbest-files): "
              f"{os.path.join(args.output, SRILM_LIST)}", file=sys.stderr)
        back = [f"--srilm-scores {k}={args.output}/{k}" for k in names]
        back += [f"{flag} {key}" for flag, key, default in (("--srilm-am", am, "am"),
                                                            ("--srilm-lm", lm, "lm0"))
                 if key != default and args.srilm_version != "1"]
        if back:
            print("asr-kd convert-nbest: read back with " + " ".join(back)
                  + (" (extra scores in score folders)" if names else ""), file=sys.stderr)
    print(f"asr-kd convert-nbest: {len(nbest)} utterances, {nbest.num_hyps()} hypotheses "
          f"({src}) -> {args.output} ({args.dst})"
          + (f"; {dropped} repeated hypotheses dropped" if args.dedup else ""), file=sys.stderr)
    return 0
