"""Options shared by the scoring subcommands (score, tune, compare) and the N-best readers:
the scoring-side noise filter and SRILM extra score folders."""
from __future__ import annotations

import sys

from ..errors import InputError

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


def filter_given(args) -> bool:
    """True when the command line sets the scoring filter (any of its options)."""
    return bool(args.noise or args.noise_vocab or args.no_default_noise
                or getattr(args, "ignore_case", False))


def filter_for_weights(args, flt, rec: dict | None, weights_path: str, cmd: str):
    """The scoring filter to score with weights tuned under the record ``rec``
    (:mod:`asr_kd.tuned_on`): without filter options, the recorded filter (said on
    stderr when it is not the default); with options that give another filter, the
    user's, with a warning (the WER is then not the one the weights were tuned for)."""
    from ..noise import NoiseFilter
    if not rec or not isinstance(rec.get("noise"), list):
        return flt
    try:
        tuned = NoiseFilter([str(p) for p in rec["noise"]], bool(rec.get("ignore_case")))
    except InputError:
        return flt
    same = tuned.patterns == flt.patterns and tuned.ignore_case == flt.ignore_case
    if same:
        return flt
    if not filter_given(args):
        print(f"asr-kd {cmd}: scoring filter from {weights_path} (what it was tuned with): "
              f"{tuned.describe()}", file=sys.stderr)
        return tuned
    from .common import warn
    warn(cmd, f"{weights_path} was tuned with the scoring filter {tuned.describe()}, this run "
         f"scores with {flt.describe()}: the WER counts other words than the weights were "
         "tuned for; drop the filter options to use the recorded filter")
    return flt


def apply_noise(flt, nbest, cmd: str):
    """``nbest`` filtered by ``flt``; says on stderr how many tokens went."""
    out, n_hyp, n_ref = flt.nbest(nbest)
    if n_hyp or n_ref:
        print(f"asr-kd {cmd}: scoring filter ({flt.describe()}) removed {n_hyp} "
              f"hypothesis and {n_ref} reference tokens", file=sys.stderr)
    return out


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
    (InputError unless the input is srilm; the key names also name the columns of
    ``--print-srilm`` and of convert-nbest ``--to srilm``)."""
    pairs = getattr(args, "srilm_scores", None)
    am, lm = getattr(args, "srilm_am", None), getattr(args, "srilm_lm", None)
    if not pairs and am is None and lm is None:
        return {}
    from ..nbest.io import detect_format
    if (fmt or detect_format(path)) != "srilm":
        if pairs:
            raise InputError("--srilm-scores applies to srilm input only", path)
        if getattr(args, "dst", None) != "srilm" and not getattr(args, "print_srilm", False):
            raise InputError("--srilm-am / --srilm-lm apply to srilm input, --print-srilm "
                             "and convert-nbest --to srilm only", path)
        return {}
    keys = {k: v for k, v in (("am", am), ("lm", lm)) if v is not None}
    if not pairs:
        return keys
    scores = {}
    for s in pairs:
        name, eq, folder = s.partition("=")
        if not eq or not name or not folder:
            raise InputError(f"--srilm-scores {s!r}: expected NAME=DIR")
        if name in scores:
            raise InputError(f"--srilm-scores: score name {name!r} given twice")
        scores[name] = folder
    return {"scores": scores, **keys}
