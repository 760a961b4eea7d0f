"""1-best scoring of a native JSONL N-best file in bounded chunks: `asr-kd score` without
holding the set.

The file is read :data:`CHUNK_UTTS` utterances at a time (``ASR_KD_SCORE_CHUNK`` in the
environment overrides it).  Each chunk gets its references (``--ref``), the scoring
filter, its best hypotheses (:func:`asr_kd.scoring.pick_best`) and its edit counts; the
chosen texts go straight to the staged ``--out-hyp`` / ``--out-trn`` files, and what
the whole-set checks and results need is kept as counts: edit, sentence and oracle
error totals, repeats, filtered tokens, case tallies (:func:`asr_kd.checks.case_counts`),
references without a word, the ids of utterances without a reference (the first few
and how many), and for a weights file with a tuning record each list's highest and
lowest value of the compared features (:func:`asr_kd.tuned_on.mismatch_packed`).

What stays per utterance is its id (repeated ids are an error, and ``--ref`` lists
references without an N-best entry) and, with a tuning record, those extremes
(16 bytes per compared feature).  Every number, warning and error of the whole-set
path is produced from these; the printed results are identical.  Errors found while
reading (a bad line, a missing score key, an overflowing total) stop at once; those
about the whole set (no utterances, references missing for some ids) come once the
file is read, and no output is put in place.
"""
from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Mapping

import numpy as np

from .checks import case_counts, case_mismatch_message, replaced_refs, require_ref_words, \
    require_utterances
from .errors import InputError
from .fileio import FileSet
from .nbest.dedup import count_repeats
from .nbest.jsonl import iter_jsonl
from .nbest.model import NBest, Utterance
from . import scoring
from .scoring import WerResult, chosen_texts, corpus_wer, pack_features, pool_wer

CHUNK_UTTS = 2000   # utterances per chunk: ~10k hypotheses, a few MB, whatever the set


def chunk_utts() -> int:
    """Utterances per chunk: ``ASR_KD_SCORE_CHUNK`` (a positive integer), else
    :data:`CHUNK_UTTS`."""
    v = os.environ.get("ASR_KD_SCORE_CHUNK", "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else CHUNK_UTTS


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of ``size`` (the last one shorter)."""
    part: list = []
    for x in items:
        part.append(x)
        if len(part) == size:
            yield part
            part = []
    if part:
        yield part


@dataclass
class StreamedScore:
    """What `score` prints: ``utts`` utterances; ``result`` the corpus WER, SER and
    oracle (None when the set has no references)."""

    utts: int
    result: WerResult | None


@dataclass
class _Tally:
    """Counts gathered chunk by chunk (see the module docstring)."""

    utts: int = 0
    positional: bool = False
    stored_refs: int = 0
    differ_refs: int = 0
    no_entry: list[str] = field(default_factory=list)   # ids not in --ref (first 10)
    n_no_entry: int = 0
    no_ref: list[str] = field(default_factory=list)     # utterances without a reference (first 5)
    n_no_ref: int = 0
    ref_words: bool = False
    repeats: int = 0
    hyp_tokens: int = 0
    ref_tokens: int = 0
    case: tuple = (0,) * 8
    result: WerResult | None = None
    hi: list = field(default_factory=list)   # per chunk (U', F) extremes of the spread keys
    lo: list = field(default_factory=list)


def score_jsonl(path: str, weights: Mapping[str, float], flt, *, refs_path: str | None = None,
                out_hyp: str | None = None, out_trn: str | None = None,
                allow_empty: bool = False, rec: dict | None = None,
                warn: Callable[[str], None], info: Callable[[str], None],
                size: int | None = None) -> StreamedScore:
    """`score` (1-best) of the native JSONL N-best file ``path`` with ``weights`` and
    the scoring filter ``flt`` (:class:`asr_kd.noise.NoiseFilter`), ``size``
    utterances at a time (default :func:`chunk_utts`).

    ``refs_path``: references (Kaldi text or sclite trn) to attach by id; ``out_hyp``,
    ``out_trn``: the chosen hypotheses as Kaldi text / sclite trn, put in place only
    when the set was read and scored; ``rec``: the weights file's tuning record
    (:mod:`asr_kd.tuned_on`), compared with this set.  ``warn`` gets the warnings and
    ``info`` the notes the whole-set path prints, in its order.  InputError as there.
    """
    from .fileio import require_regular
    from .nbest.refs import read_refs
    from .progress import progress, silenced
    from .tuned_on import feature_names, mismatch_keys, settings_mismatch

    require_regular(path, why=": N-best input is read more than once; write it to a file first")
    refs = read_refs(refs_path) if refs_path is not None else None
    spread_keys = mismatch_keys(rec, weights) if rec else None
    t = _Tally()
    seen: dict[str, int] = {}
    where = refs_path or path
    with FileSet() as files:
        with contextlib.ExitStack() as stack:
            outs = [(stack.enter_context(files.open(p)), trn)
                    for p, trn in ((out_hyp, False), (out_trn, True)) if p]
            with progress(desc="score: reading and WER alignment", unit="utt") as bar:
                for part in chunks(iter_jsonl(path, seen), size or chunk_utts()):
                    with silenced():   # one bar for the file, not one per chunk
                        _score_chunk(part, t, refs, flt, weights, spread_keys, outs)
                    bar.update(len(part))
        require_utterances(range(t.utts), path, allow_empty, "to score", "--allow-empty")
        if refs is not None:
            _ref_file_messages(t, refs, seen, refs_path, path, warn)
        if t.hyp_tokens or t.ref_tokens:
            info(f"scoring filter ({flt.describe()}) removed {t.hyp_tokens} hypothesis and "
                 f"{t.ref_tokens} reference tokens")
        if rec:
            msgs = [_spread_mismatch(rec, spread_keys, t, feature_names)] + settings_mismatch(
                rec, dict(weights), t.repeats, None, False)
            for msg in msgs:
                if msg:
                    warn(msg)
    # the outputs are in place; the set may still lack references (as the whole-set path)
    if t.n_no_ref and t.n_no_ref < t.utts:
        shown = ", ".join(t.no_ref) + (" ..." if t.n_no_ref > 5 else "")
        raise InputError(f"{t.n_no_ref} of {t.utts} utterances have no reference: {shown}",
                         where)
    if t.n_no_ref:
        return StreamedScore(t.utts, None)
    if t.utts and not t.ref_words:
        require_ref_words([], where)
    msg = case_mismatch_message(t.case)
    if msg:
        warn(msg)
    return StreamedScore(t.utts, t.result if t.result is not None else corpus_wer(NBest(), []))


def _score_chunk(part: list[tuple[Utterance, bool]], t: _Tally, refs, flt, weights,
                 spread_keys, outs) -> None:
    """Fold one chunk of ``(utterance, positional flag)`` into ``t`` and the outputs."""
    nb = NBest([u for u, _ in part])
    t.utts += len(nb)
    t.positional |= any(pos for _, pos in part)
    if refs is not None:
        stored, differ = replaced_refs(nb, refs)
        t.stored_refs += stored
        t.differ_refs += differ
        for u in nb:
            if u.utt in refs:
                u.ref = refs[u.utt]
            else:
                t.n_no_entry += 1
                if len(t.no_entry) < 10:
                    t.no_entry.append(u.utt)
    t.repeats += count_repeats(nb)
    nb, n_hyp, n_ref = flt.nbest(nb)
    t.hyp_tokens += n_hyp
    t.ref_tokens += n_ref
    if spread_keys is not None:
        feats, mask = pack_features(nb, *spread_keys)
        has = mask.any(axis=1)
        t.hi.append(np.where(mask[..., None], feats, -np.inf).max(axis=1, initial=-np.inf)[has])
        t.lo.append(np.where(mask[..., None], feats, np.inf).min(axis=1, initial=np.inf)[has])
    chosen = scoring.pick_best(nb, weights)
    for f, trn in outs:
        for utt, text in chosen_texts(nb, chosen):
            if trn:
                f.write(f"{text} ({utt})\n" if text else f"({utt})\n")
            else:
                f.write(f"{utt} {text}\n" if text else f"{utt}\n")
    with_ref = [i for i, u in enumerate(nb) if u.ref is not None]
    for u in nb:
        if u.ref is None:
            t.n_no_ref += 1
            if len(t.no_ref) < 5:
                t.no_ref.append(u.utt)
        elif not t.ref_words and u.ref.split():
            t.ref_words = True
    t.case = tuple(a + b for a, b in zip(t.case, case_counts(nb)))
    if with_ref and not t.n_no_ref:    # a set missing references gets no WER
        sub = NBest([nb.utts[i] for i in with_ref])
        r = corpus_wer(sub, [chosen[i] for i in with_ref])
        t.result = r if t.result is None else pool_wer([t.result, r])


def _ref_file_messages(t: _Tally, refs: dict[str, str], seen: dict[str, int], refs_path: str,
                       path: str, warn) -> None:
    """The warnings and the error of :func:`asr_kd.score_input.attach_ref_file`, from
    the tallies."""
    if t.positional:
        warn(f"{path} has no utterance ids (they are positions 0..{t.utts - 1}): the "
             f"references of {refs_path} are matched by position only; check that they list "
             "the same utterances in the same order")
    if t.differ_refs:
        warn(f"--ref {refs_path} replaces the references stored in {path}: "
             f"{t.differ_refs} of {t.stored_refs} differ")
    if t.n_no_entry:
        shown = ", ".join(t.no_entry) + (", ..." if t.n_no_entry > 10 else "")
        raise InputError(f"{t.n_no_entry} of {t.utts} N-best utterances have no "
                         f"reference: {shown}", refs_path)
    extra = [r for r in refs if r not in seen]
    if extra:
        warn(f"{refs_path}: {len(extra)} references have no N-best entry and are left out "
             f"(first: {', '.join(extra[:5])})")


def _spread_mismatch(rec: dict, spread_keys, t: _Tally, feature_names) -> str | None:
    """:func:`asr_kd.tuned_on.mismatch` from the per-list extremes gathered."""
    from .tuned_on import mismatch_packed

    if spread_keys is None or not t.utts:
        return None
    names = feature_names(spread_keys)
    hi = np.concatenate(t.hi) if t.hi else np.zeros((0, len(names)))
    lo = np.concatenate(t.lo) if t.lo else np.zeros((0, len(names)))
    feats = np.stack([hi, lo], axis=1)               # (U', 2, F): each list's extremes
    return mismatch_packed(rec, names, feats, np.ones(feats.shape[:2], bool))
