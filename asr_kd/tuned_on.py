"""Whether a set to score looks like the set its weights were tuned on.

The ``"_tuned_on"`` record of a weights file (format: :mod:`asr_kd.weights_file`)
says what the weights were tuned on.  ``score --weights`` uses the recorded
filter when given none and warns when the options give another
(:func:`filter_for_record`), and warns when the score folders or the repeats
differ (:func:`settings_mismatch`).

Scoring another set of the same system (dev -> eval) is the normal use and
keeps the spreads' ratios within a small factor; a set from another recogniser
or another score convention (an acoustic weight folded into one score, log10
instead of natural log for some scores, per-token instead of summed scores)
moves them far apart, and then the weights balance the features differently:
:func:`mismatch` says so.
"""
from __future__ import annotations

from typing import Callable

import numpy as np

# A spread ratio (key / first key) that moved by more than this factor: another scale.
SPREAD_FACTOR = 4.0
MIN_LISTS = 10  # lists in which a key varies, at least, for its spread to be compared


def filter_for_record(flt, given: bool, rec: dict | None, weights_path: str,
                      warn: Callable[[str], None], info: Callable[[str], None]):
    """The scoring filter to score with weights tuned under the record ``rec``:
    ``flt`` (the options' :class:`~asr_kd.noise.NoiseFilter`) when the record has no
    readable filter or the same one; else, when the options set none (``given``
    false), the recorded filter, said through ``info``; else ``flt``, with a warning
    (the WER then counts other words than the weights were tuned for)."""
    from .errors import InputError
    from .noise import NoiseFilter

    if not rec or not isinstance(rec.get("noise"), list):
        return flt
    try:
        tuned = NoiseFilter([str(p) for p in rec["noise"]], bool(rec.get("ignore_case")))
    except InputError:
        return flt
    if tuned.patterns == flt.patterns and tuned.ignore_case == flt.ignore_case:
        return flt
    if not given:
        info(f"scoring filter from {weights_path} (what it was tuned with): "
             f"{tuned.describe()}")
        return tuned
    warn(f"{weights_path} was tuned with the scoring filter {tuned.describe()}, this run "
         f"scores with {flt.describe()}: the WER counts other words than the weights were "
         "tuned for; drop the filter options to use the recorded filter")
    return flt


def settings_mismatch(rec: dict, weights: dict[str, float], repeats: int,
                      srilm_scores: dict[str, str] | None, consensus: bool) -> list[str]:
    """Messages for scoring settings that differ from the tuning record ``rec``:
    other ``--srilm-scores`` names than tuned with, and lists with repeated
    hypotheses where the tuning lists had none (or the reverse) when the weights
    use ``rank`` or decode by consensus (a repeat moves every later rank and counts
    twice in the posteriors).  Empty when all agree or the record lacks them."""
    out = []
    if "srilm_scores" in rec or srilm_scores:
        was = sorted((rec.get("srilm_scores") or {}))
        now = sorted(srilm_scores or {})
        if was != now:
            out.append(f"tuned with --srilm-scores {', '.join(was) or '(none)'}, scored with "
                       f"{', '.join(now) or '(none)'}: give the same score folders (for this "
                       "set's lists)")
    was = rec.get("repeats")
    uses_rank = any(k == "rank" or k.startswith(("rank*", "rank/")) for k, w in weights.items()
                    if w != 0)
    if isinstance(was, int) and (uses_rank or consensus) and (was == 0) != (repeats == 0):
        why = "the rank feature" if uses_rank else "consensus posteriors"
        if was == 0:
            out.append(f"tuned on lists without repeated hypotheses ({rec.get('nbest', '?')}, "
                       f"e.g. after convert-nbest --dedup), these lists repeat {repeats}: "
                       f"{why} means something else here; convert them with --dedup")
        else:
            out.append(f"tuned on lists with {was} repeated hypotheses, these have none "
                       f"(de-duplicated?): {why} means something else here; score lists "
                       "prepared as the tuning lists were")
    return out


def mismatch(rec: dict, nbest, weights: dict[str, float]) -> str | None:
    """A one-line message when ``nbest`` does not look like the tuning set of ``rec``.

    Only ratios of weighted features decide which hypothesis wins, so what is
    compared is each weighted key's spread (``wip``: the word count's) relative to
    the first key's, on ``nbest`` and as recorded: a ratio that moved by more than
    ``SPREAD_FACTOR`` means the weights no longer balance the features as they did
    on the tuning set.  Scaling every score alike changes nothing and is not
    reported.  The ids are not compared: scoring eval with dev's weights is the
    normal use.  None when all agree (or nothing can be compared).
    """
    from .scoring import pack_features

    keys = mismatch_keys(rec, weights)
    if keys is None or not len(nbest):
        return None
    feats, mask = pack_features(nbest, keys[0], keys[1])
    return mismatch_packed(rec, feature_names(keys), feats, mask)


def mismatch_keys(rec: dict, weights: dict[str, float]) -> tuple[list[str], bool] | None:
    """(score keys, whether the word count) whose spreads :func:`mismatch` compares:
    the weighted keys ``rec`` recorded a positive spread for; None when fewer than
    two (nothing to compare)."""
    from .scoring import WIP

    old = rec.get("spreads")
    if not isinstance(old, dict):
        return None
    names = [k for k in weights if k != WIP and weights[k] != 0
             and isinstance(old.get(k), (int, float)) and old[k] > 0]
    with_wip = WIP in weights and weights[WIP] != 0 and isinstance(old.get(WIP), (int, float)) \
        and old[WIP] > 0
    if len(names) + with_wip < 2 or not names:
        return None
    return names, bool(with_wip)


def feature_names(keys: tuple[list[str], bool]) -> list[str]:
    """The feature columns of :func:`mismatch_keys`' keys, ``wip`` last when used."""
    from .scoring import WIP

    return keys[0] + ([WIP] if keys[1] else [])


def mismatch_packed(rec: dict, names: list[str], feats: np.ndarray, mask: np.ndarray
                    ) -> str | None:
    """:func:`mismatch` on packed features: ``feats`` (U, N, F) of the features
    ``names`` (:func:`feature_names`), ``mask`` (U, N) True on real hypotheses.  Only
    each list's highest and lowest value per feature matter, so U x 2 arrays of
    per-list extremes give the same answer as the full lists."""
    from .tune import feature_spreads

    old = rec["spreads"]
    if not mask.any():
        return None     # no list has a hypothesis: no spread to compare
    new = feature_spreads(feats, mask)
    # a median over a handful of lists says little: compare keys that vary in enough lists
    hi = np.where(mask[..., None], feats, -np.inf).max(axis=1)
    lo = np.where(mask[..., None], feats, np.inf).min(axis=1)
    varying = ((hi - lo) > 0).sum(axis=0)
    if varying[0] < MIN_LISTS:
        return None
    first = names[0]
    off = []
    for k, v, n in zip(names[1:], new[1:], varying[1:]):
        was, now = old[k] / old[first], v / new[0]
        if n >= MIN_LISTS and not 1 / SPREAD_FACTOR <= now / was <= SPREAD_FACTOR:
            off.append((k, was, now))
    if not off:
        return None
    shown = ", ".join(f"{k}/{first} {was:.3g} there, {now:.3g} here" for k, was, now in off[:3])
    return (f"these weights were tuned on {rec.get('nbest', '?')} ({rec.get('utts', '?')} "
            f"utterances), where the scores varied on other relative scales within a list "
            f"(ratio of median within-list ranges: {shown}): another recogniser or score "
            "convention? Tune on a dev set like this one")
