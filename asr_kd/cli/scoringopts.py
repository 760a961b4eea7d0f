"""Options shared by the scoring subcommands (score, tune, compare) and the N-best readers:
the scoring-side noise filter and SRILM extra score folders."""
from __future__ import annotations

# the built-in features (asr_kd.scoring.feature_value), in the help of score and tune
FEATURES_HELP = """\
score keys: a stored score (am, lm0, lm:NAME, oov:NAME, score, ...) or a built-in
feature; a score stored under the same name always wins:
  rank          minus the 0-based position in the list (0, -1, -2, ...): the
                first-pass order, for lists without scores
  KEY*words     KEY times the word count (score*words: Whisper's per-token
                average log-prob as a length-aware total)
  KEY/words     KEY divided by max(word count, 1) (lm:teacher/words: per word)
"""


def add_noise_options(p, case: bool = True, what: str | None = None) -> None:
    """``--noise``, ``--noise-vocab``, ``--no-default-noise`` and (``case``)
    ``--ignore-case``; ``what`` describes where the words are removed."""
    g = p.add_argument_group(
        "noise filter" if what else "scoring filter",
        what or "words removed from hypotheses and references before WER, SER, oracle and the "
        "word count of wip (SRILM -noise-vocab, Kaldi wer_output_filter); stored scores are kept")
    g.add_argument("--noise", action="append", metavar="WORD[,WORD...]",
                   help="words or patterns ('*' = any characters, e.g. '[*]', '<*>', '@reject@') "
                   + ("removed as described above" if what else
                      "removed from hypotheses and references before scoring") + " (repeatable)")
    g.add_argument("--noise-vocab", action="append", metavar="FILE",
                   help="file of such words/patterns, one per line (SRILM -noise-vocab; "
                   "repeatable)")
    g.add_argument("--no-default-noise", action="store_true",
                   help="do not remove -pau- (removed by default, as SRILM's tools do)")
    if case:
        g.add_argument("--ignore-case", action="store_true",
                       help="compare words ignoring case (hypotheses and references "
                       "lower-cased after the noise words go): for sentence-case or truecased "
                       "hypotheses (Whisper, NeMo) against lower-case references")


def noise_from_args(args):
    """The :class:`asr_kd.noise.NoiseFilter` the options describe."""
    from ..noise import build_filter
    return build_filter(args.noise, args.noise_vocab, default=not args.no_default_noise,
                        ignore_case=getattr(args, "ignore_case", False))


def scoring_input(args) -> dict:
    """The fields of :class:`asr_kd.score_input.ScoringInput` from the options of
    score and tune (the N-best input, the scoring filter, SRILM input)."""
    return {"nbest": args.nbest, "fmt": args.format, "ref": args.ref, "noise": args.noise,
            "noise_vocab": args.noise_vocab, "no_default_noise": args.no_default_noise,
            "ignore_case": getattr(args, "ignore_case", False),
            "srilm_scores": getattr(args, "srilm_scores", None),
            "srilm_am": getattr(args, "srilm_am", None),
            "srilm_lm": getattr(args, "srilm_lm", None),
            "print_srilm": getattr(args, "print_srilm", False)}


def filter_given(args) -> bool:
    """True when the command line sets the scoring filter (any of its options)."""
    return bool(args.noise or args.noise_vocab or args.no_default_noise
                or getattr(args, "ignore_case", False))


def add_srilm_scores_option(p) -> None:
    """``--srilm-scores NAME=DIR`` (repeatable), and ``--srilm-am`` / ``--srilm-lm``
    unless the command defines its own."""
    p.add_argument("--srilm-scores", action="append", metavar="NAME=DIR",
                   help="srilm input: extra score folder (nbest-optimize / rescore-reweight "
                   "layout: one file per utterance named by its id, optionally .gz, one "
                   "log10 score per hypothesis line), stored as score NAME (repeatable)")
    print_srilm = "--print-srilm" in p._option_string_actions
    for flag, what, default in (("--srilm-am", "acoustic", "am"), ("--srilm-lm", "LM", "lm0")):
        if flag not in p._option_string_actions:
            p.add_argument(flag, metavar="KEY", help=f"the score name of SRILM's {what} column: "
                           f"srilm input stores it under KEY (default: {default})"
                           + ("; --print-srilm puts KEY in that slot (default: "
                              + ("am, else the first key)" if what == "acoustic" else
                                 "lm0, else the next key)") if print_srilm else ""))


def srilm_keys(args) -> dict:
    """``{"am": KEY, "lm": KEY}`` from ``--srilm-am`` / ``--srilm-lm`` for
    :func:`asr_kd.nbest.srilm.srilm_weights` (None: not given, chosen from the weights)."""
    return {"am": getattr(args, "srilm_am", None), "lm": getattr(args, "srilm_lm", None)}


def srilm_reader_opts(args, fmt: str | None, path: str) -> dict:
    """Reader options from ``--srilm-scores``, ``--srilm-am`` and ``--srilm-lm``
    (:func:`asr_kd.nbest.srilm.reader_options`)."""
    from ..nbest.srilm import reader_options
    return reader_options(getattr(args, "srilm_scores", None), getattr(args, "srilm_am", None),
                          getattr(args, "srilm_lm", None), fmt, path,
                          keys_used=(getattr(args, "dst", None) == "srilm"
                                     or getattr(args, "print_srilm", False)))
