"""One ``tune`` run (:func:`tune_set`): tune score weights on a dev N-best set and write
them with what they were tuned on.

The set is read and filtered as for scoring (:mod:`asr_kd.score_input`); it must
have references, with words, in the same case as the hypotheses (weights tuned
against case errors are tuned for the wrong thing).  The search is
:func:`asr_kd.tune.tune_weights`, checked against fallback weights by
:func:`asr_kd.tune.guard_weights` when asked, then for consensus decoding
:func:`asr_kd.tune_consensus.tune_consensus` from the 1-best result.  The weights
file and its ``_tuned_on`` record are :mod:`asr_kd.weights_file`'s; the curve
file and plot are :mod:`asr_kd.results`'s.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .errors import InputError
from .score_input import ScoringInput

Say = Callable[[str], None]


@dataclass(frozen=True)
class TuneRequest(ScoringInput):
    """What ``asr-kd tune`` is asked (the options of the same names).

    keys: the score keys, the first fixed at 1.0; wip: also tune the word-count weight;
    out: the weights file to write; signed: keys whose weight may be negative;
    fallback: weights written instead unless tuning generalises (``folds``-fold
    cross-validation, ``fallback_confidence``); decode: ``"1best"`` or
    ``"consensus"``; lm_key: the weight of the curve (None: the LM's); plot /
    curve_out: the curve as PNG / JSON; start: a weights file, one more start
    point; fixed: keys kept at their ``start`` weight.
    """
    keys: list[str] = field(default_factory=list)
    wip: bool = False
    out: str = ""
    signed: list[str] = field(default_factory=list)
    fallback: str | None = None
    folds: int = 5
    fallback_confidence: float = 0.5
    decode: str = "1best"
    lm_key: str | None = None
    plot: str | None = None
    curve_out: str | None = None
    start: str | None = None
    fixed: list[str] = field(default_factory=list)


@dataclass
class TuneOutcome:
    """What :func:`tune_set` found and wrote.

    weights:   the weights written (the fallback's when it was kept);
    spreads:   every searched key's spread (median within-utterance range);
    result:    the :class:`~asr_kd.scoring.WerResult` of the weights written;
    curve_key, curve, best: WER along one weight (consensus: the posterior scale)
               as (value, WER) pairs, and the value chosen;
    guard:     the fallback check (:class:`~asr_kd.tune.GuardResult`), None without one;
    scale:     consensus: the posterior scale (0: the 1-best choice); None for 1-best;
    filter:    the scoring filter (:class:`~asr_kd.noise.NoiseFilter`).
    """
    weights: dict[str, float]
    spreads: dict[str, float]
    result: object
    curve_key: str
    curve: list
    best: float
    guard: object
    scale: float | None
    filter: object


def tune_set(req: TuneRequest, *, warn: Say, info: Say, log: Say) -> TuneOutcome:
    """Tune on the set ``req`` names and write the weights (and the curve, plot) it asks
    for.  ``warn`` gets the warnings, ``info`` the notes (tokens removed by the filter),
    ``log`` the progress of consensus tuning.  InputError for a set that cannot be
    tuned on."""
    from .checks import ref_hyp_case_mismatch
    from .nbest.dedup import count_repeats
    from .score_input import filter_set, has_refs, load_nbest, require_ref_words
    from .scoring import corpus_wer, hyp_error_matrix, pick_best
    from .tune import tune_weights
    from .weights_file import parse_weights

    flt = req.noise_filter()
    reader_opts = req.reader_options()
    nbest = load_nbest(req.nbest, req.fmt, req.ref, "tune", warn=warn,  # empty: an error
                       **reader_opts)
    # what the weights are tuned under, recorded beside them (asr_kd.tuned_on)
    settings = {**flt.record(), **({"srilm_scores": reader_opts["scores"]}
                                   if reader_opts.get("scores") else {}),
                "repeats": count_repeats(nbest)}
    nbest = filter_set(flt, nbest, info)
    if not has_refs(nbest, req.ref or req.nbest):
        raise InputError("tuning needs references: none in the N-best, give --ref",
                         req.nbest)
    require_ref_words(nbest, req.ref or req.nbest)
    msg = ref_hyp_case_mismatch(nbest)
    if msg:
        raise InputError(f"not tuning: {msg}", req.ref or req.nbest)
    errors = hyp_error_matrix(nbest)
    start = parse_weights(req.start, None) if req.start else None
    res = tune_weights(nbest, req.keys, wip=req.wip, lm_key=req.lm_key, errors=errors,
                       signed=req.signed, start=start, fixed=req.fixed)
    guard = None
    if req.fallback:
        from .tune import guard_weights
        guard = guard_weights(nbest, req.keys, res.weights, parse_weights(req.fallback, None),
                              wip=req.wip, signed=req.signed, folds=req.folds,
                              confidence=req.fallback_confidence, errors=errors, start=start,
                              fixed=req.fixed)
        res.weights = guard.weights
    r = corpus_wer(nbest, pick_best(nbest, res.weights), errors)
    res.wer, res.errors = r.wer, r.errors  # of the weights written (the fallback's if taken)
    if req.decode == "consensus":
        return _tune_consensus(req, nbest, res, r, errors, flt, settings, log)

    from .results import plot_curve, write_curve
    from .weights_file import record, write_weights
    spreads = {k: v for k, v in res.spreads.items() if k in res.weights}
    write_weights(req.out, res.weights, record(nbest, req.nbest, req.keys, spreads, settings))
    best = res.weights[res.curve_key]
    if req.curve_out:
        write_curve(req.curve_out, res.curve_key, best, res.wer, res.weights, res.curve,
                    flt.record())
    if req.plot:
        plot_curve(req.plot, res.curve_key, res.curve, best)
    return TuneOutcome(res.weights, res.spreads, r, res.curve_key, res.curve, best, guard, None,
                       flt)


def _tune_consensus(req: TuneRequest, nbest, res, onebest, errors, flt, settings: dict,
                    log: Say) -> TuneOutcome:
    """:func:`tune_set` for consensus decoding: weights and posterior scale, starting from
    the 1-best result ``res`` (WER ``onebest``)."""
    from .consensus import consensus_decode
    from .results import plot_curve, write_curve
    from .scoring import kaldi_wer_line, texts_wer
    from .tune_consensus import SCALE, tune_consensus
    from .weights_file import record, write_weights

    log("1-best: " + " ".join(f"{k}={v:g}" for k, v in res.weights.items())
        + "  " + kaldi_wer_line(onebest))
    c = tune_consensus(nbest, req.keys, wip=req.wip, signed=req.signed, start=res.weights,
                       errors=errors, log=log, fixed=req.fixed)
    r = texts_wer(nbest, consensus_decode(nbest, c.weights, c.scale), errors)
    # the deletion bias the scale was tuned at (consensus_decode's default, 1)
    decode = {"decode": "consensus", SCALE: c.scale, "deletion_bias": 1.0}
    spreads = {k: v for k, v in res.spreads.items() if k in c.weights}
    write_weights(req.out, c.weights, record(nbest, req.nbest, req.keys, spreads, settings),
                  decode)
    if req.curve_out:
        write_curve(req.curve_out, SCALE, c.scale, r.wer, {**c.weights, **decode}, c.curve,
                    flt.record())
    if req.plot:
        plot_curve(req.plot, SCALE, c.curve, c.scale)
    return TuneOutcome(c.weights, res.spreads, r, SCALE, c.curve, c.scale, None, c.scale, flt)
