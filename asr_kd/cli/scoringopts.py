"""Options shared by the scoring subcommands (score, tune, compare) and the N-best readers:
the scoring-side noise filter and SRILM extra score folders."""
from __future__ import annotations

import sys

from ..errors import InputError


def add_noise_options(p) -> None:
    """``--noise``, ``--noise-vocab``, ``--no-default-noise``."""
    g = p.add_argument_group(
        "scoring filter", "words removed from hypotheses and references before WER, SER, "
        "oracle and the word count of wip (SRILM -noise-vocab, Kaldi wer_output_filter); "
        "stored scores are kept")
    g.add_argument("--noise", action="append", metavar="WORD[,WORD...]",
                   help="words or patterns ('*' = any characters, e.g. '[*]', '<*>', '@reject@') "
                   "removed from hypotheses and references before scoring (repeatable)")
    g.add_argument("--noise-vocab", action="append", metavar="FILE",
                   help="file of such words/patterns, one per line (SRILM -noise-vocab; "
                   "repeatable)")
    g.add_argument("--no-default-noise", action="store_true",
                   help="do not remove -pau- (removed by default, as SRILM's tools do)")


def noise_from_args(args):
    """The :class:`asr_kd.noise.NoiseFilter` the options describe."""
    from ..noise import build_filter
    return build_filter(args.noise, args.noise_vocab, default=not args.no_default_noise)


def apply_noise(flt, nbest, cmd: str):
    """``nbest`` filtered by ``flt``; says on stderr how many tokens went."""
    out, n_hyp, n_ref = flt.nbest(nbest)
    if n_hyp or n_ref:
        print(f"asr-kd {cmd}: scoring filter ({' '.join(flt.patterns)}) removed {n_hyp} "
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
