"""One ``score`` run (:func:`score_set`): choose a hypothesis per utterance with given
weights, write what is asked for, and measure the WER.

The steps, each check before the work or the output it guards:

1. the weights file's tuning record (:mod:`asr_kd.tuned_on`) gives the scoring
   filter unless options give one, and the decode settings
   (:func:`asr_kd.weights_file.decode_settings`);
2. 1-best decoding of native JSONL without ``details`` reads the file in chunks
   (:mod:`asr_kd.score_stream`, the same output as the whole-set path);
3. otherwise the whole set is read (:mod:`asr_kd.score_input`), filtered, compared
   with the record, decoded (1-best: :func:`asr_kd.scoring.pick_best`; consensus:
   :mod:`asr_kd.consensus`), written, and scored when it has references.

Without any reference the chosen hypotheses are still written and no WER is
computed; references on only some utterances, or without a word, are an error.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import InputError
from .score_input import ScoringInput

Say = Callable[[str], None]


@dataclass(frozen=True)
class ScoreRequest(ScoringInput):
    """What ``asr-kd score`` is asked (the options of the same names; None: not given).

    weights / weight: a weights file, or ``KEY=VALUE`` strings
    (:func:`asr_kd.weights_file.parse_weights`); out_hyp / out_trn: the chosen
    hypotheses as Kaldi text / sclite trn; allow_empty: an empty set is scored;
    details: the folder of :mod:`asr_kd.details`, speaker_chars its speaker rule;
    decode, posterior_scale, deletion_bias: override the weights file's;
    out_mesh / rover_control: consensus meshes and an nbest-rover control file.
    """
    weights: str | None = None
    weight: list[str] | None = None
    out_hyp: str | None = None
    out_trn: str | None = None
    allow_empty: bool = False
    details: str | None = None
    speaker_chars: int | None = None
    decode: str | None = None
    posterior_scale: float | None = None
    deletion_bias: float | None = None
    out_mesh: str | None = None
    rover_control: str | None = None


@dataclass
class ScoreOutcome:
    """What :func:`score_set` measured.

    result: the :class:`~asr_kd.scoring.WerResult`, None when the set has no references;
    utts:   utterances scored;
    record: the fields ``score --json`` adds after the result (decode settings,
            scoring filter, SRILM weights; :func:`asr_kd.results.score_json`);
    decode: ``"1best"`` or ``"consensus"``.
    """
    result: object
    utts: int
    record: dict
    decode: str


def score_set(req: ScoreRequest, *, warn: Say, info: Say,
              show: Say | None = None) -> ScoreOutcome:
    """Score the set ``req`` names and write the outputs it asks for.

    ``warn`` gets the warnings, ``info`` the notes (filter in use, tokens removed,
    progress of a streamed set); ``show`` (None: nothing shown) gets the SRILM form
    of the weights when ``print_srilm``, as soon as it is known, so it is there
    even when scoring fails later.  InputError for input that cannot be scored.
    """
    from .nbest.dedup import count_repeats
    from .score_input import filter_set, load_nbest
    from .scoring import pick_best, write_text, write_trn
    from .tuned_on import filter_for_record, mismatch, settings_mismatch
    from .weights_file import decode_settings, parse_weights, read_record

    rec = read_record(req.weights) if req.weights else None
    flt = filter_for_record(req.noise_filter(), req.filter_given(), rec, req.weights, warn,
                            info)
    mode, scale, bias = decode_settings(req.weights, req.decode, req.posterior_scale,
                                        req.deletion_bias, warn)
    reader_opts = req.reader_options()
    if streamable(req, mode):
        return _score_streamed(req, flt, rec, warn, info, show)
    nbest = load_nbest(req.nbest, req.fmt, req.ref, "score", req.allow_empty, warn=warn,
                       **reader_opts)
    repeats = count_repeats(nbest)
    nbest = filter_set(flt, nbest, info)
    weights = parse_weights(req.weights, req.weight)
    if rec:
        for msg in [mismatch(rec, nbest, weights)] + settings_mismatch(
                rec, weights, repeats, reader_opts.get("scores"), mode == "consensus"):
            if msg:
                warn(msg)
    srilm = _srilm(req, weights, scale if mode == "consensus" else None, show)
    _check_consensus_outputs(req, mode)
    record = {**flt.record(), **({"srilm": srilm} if srilm else {})}
    if mode == "consensus":
        return _score_consensus(req, nbest, weights, scale, bias, record, warn)
    chosen = pick_best(nbest, weights)
    if req.out_hyp:
        write_text(req.out_hyp, nbest, chosen)
    if req.out_trn:
        write_trn(req.out_trn, nbest, chosen)
    if not _scorable(req, nbest, warn):
        return ScoreOutcome(None, len(nbest), record, "1best")
    from .scoring import chosen_texts, corpus_wer

    r = corpus_wer(nbest, chosen)
    if req.details:
        _write_details(req, nbest, [t for _, t in chosen_texts(nbest, chosen)], r)
    return ScoreOutcome(r, len(nbest), record, "1best")


def _scorable(req: ScoreRequest, nbest, warn: Say) -> bool:
    """True when the set has references to score against (checked: every utterance
    or none has one, and they hold words; case warned about); False when none has."""
    from .checks import ref_hyp_case_mismatch
    from .score_input import has_refs, require_ref_words

    if not has_refs(nbest, req.ref or req.nbest):
        if req.details:
            raise InputError("--details needs references (none in the N-best file; give --ref)",
                             req.nbest)
        return False
    require_ref_words(nbest, req.ref or req.nbest)
    msg = ref_hyp_case_mismatch(nbest)
    if msg:
        warn(msg)
    return True


def _srilm(req: ScoreRequest, weights: dict[str, float], scale: float | None,
           show: Say | None) -> dict | None:
    """``print_srilm``: the weights in SRILM form (:func:`asr_kd.nbest.srilm.srilm_weights`),
    shown; None without it."""
    if not req.print_srilm:
        return None
    from .nbest.srilm import format_srilm_weights, srilm_weights

    srilm = srilm_weights(weights, posterior_scale=scale, **req.srilm_keys())
    if show is not None:
        show("\n".join(format_srilm_weights(srilm)))
    return srilm


def streamable(req: ScoreRequest, mode: str) -> bool:
    """True when the set is read in chunks: 1-best decoding of native JSONL without
    ``details`` (which aligns the whole set)."""
    from .fileio import require_regular
    from .nbest.io import detect_format

    if mode != "1best" or req.details:
        return False
    # before detection, which reads the file: a FIFO would block (as in read_nbest)
    require_regular(req.nbest, folder_ok=True,
                    why=": N-best input is read more than once; write it to a file first")
    return (req.fmt or detect_format(req.nbest)) == "jsonl"


def _score_streamed(req: ScoreRequest, flt, rec: dict | None, warn: Say, info: Say,
                    show: Say | None) -> ScoreOutcome:
    """:func:`score_set` of a JSONL file read in chunks
    (:func:`asr_kd.score_stream.score_jsonl`)."""
    from .score_stream import score_jsonl
    from .weights_file import parse_weights

    weights = parse_weights(req.weights, req.weight)
    _check_consensus_outputs(req, "1best")
    s = score_jsonl(req.nbest, weights, flt, refs_path=req.ref, out_hyp=req.out_hyp,
                    out_trn=req.out_trn, allow_empty=req.allow_empty, rec=rec, warn=warn,
                    info=info)
    srilm = _srilm(req, weights, None, show)
    record = {**flt.record(), **({"srilm": srilm} if srilm else {})}
    return ScoreOutcome(s.result, s.utts, record, "1best")


def _score_consensus(req: ScoreRequest, nbest, weights: dict[str, float], scale: float,
                     bias: float, record: dict, warn: Say) -> ScoreOutcome:
    """:func:`score_set` by consensus: the consensus hypotheses and their WER (the
    oracle is the N-best list's); ``record``: the scoring filter and SRILM weights."""
    from .consensus import consensus_meshes
    from .scoring import texts_wer, write_texts

    meshes = consensus_meshes(nbest, weights, scale)
    texts = [" ".join(m.consensus(bias)) for m in meshes]
    _write_consensus_outputs(req, nbest, meshes, weights, scale)
    if req.out_hyp:
        write_texts(req.out_hyp, nbest, texts)
    if req.out_trn:
        write_texts(req.out_trn, nbest, texts, trn=True)
    extra = {"decode": "consensus", "posterior_scale": scale,
             **({"deletion_bias": bias} if bias != 1.0 else {}), **record}
    if not _scorable(req, nbest, warn):
        return ScoreOutcome(None, len(nbest), extra, "consensus")
    r = texts_wer(nbest, texts)
    if req.details:
        _write_details(req, nbest, texts, r)
    return ScoreOutcome(r, len(nbest), extra, "consensus")


def _check_consensus_outputs(req: ScoreRequest, mode: str) -> None:
    """Refuse the consensus outputs without consensus decoding, and unwritable ones,
    before the work."""
    from .fileio import check_writable

    given = [f for f, v in (("--out-mesh", req.out_mesh),
                            ("--write-rover-control", req.rover_control)) if v]
    if given and mode != "consensus":
        raise InputError(f"{' and '.join(given)} need{'s' if len(given) == 1 else ''} "
                         "consensus decoding (--decode consensus "
                         "or a weights file from `asr-kd tune --decode consensus`)")
    if req.out_mesh:
        check_writable(req.out_mesh, folder=True)
    if req.rover_control:
        from .nbest.io import detect_format
        if (req.fmt or detect_format(req.nbest)) != "srilm":
            raise InputError("--write-rover-control needs SRILM input (the lists nbest-rover "
                             "reads): convert them with convert-nbest --to srilm", req.nbest)
        check_writable(req.rover_control)


def _write_consensus_outputs(req: ScoreRequest, nbest, meshes, weights: dict,
                             scale: float) -> None:
    """The meshes (:func:`asr_kd.consensus.write_meshes`) and the nbest-rover control
    file (:func:`asr_kd.nbest.srilm.write_rover_control`) asked for."""
    if req.rover_control:
        from .nbest.srilm import write_rover_control

        dirs = req.reader_options().get("scores", {})
        write_rover_control(req.rover_control, weights, scale, req.nbest, dirs,
                            **req.srilm_keys())
    if req.out_mesh:
        from .consensus import write_meshes

        write_meshes(req.out_mesh, nbest, meshes)


def _write_details(req: ScoreRequest, nbest, texts: list[str], r) -> None:
    """``details``: the alignments behind ``r`` (:mod:`asr_kd.details`)."""
    from .details import align_texts, write_details
    from .scoring import kaldi_wer_line

    aligns = align_texts([u.utt for u in nbest], [u.ref for u in nbest], texts)
    write_details(req.details, aligns, expect=r.to_dict(), speaker_chars=req.speaker_chars,
                  title=f"asr-kd score --nbest {req.nbest}: {kaldi_wer_line(r)}",
                  extra={"nbest": req.nbest, "weights": req.weights or req.weight})
