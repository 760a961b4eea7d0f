"""What a weights file was tuned on, and whether a set to score looks like it.

``asr-kd tune`` writes the weights as ``{"key": weight, ...}`` plus one reserved
entry, ``"_tuned_on"`` (readers of weights skip it, so files without it, and
older readers, keep working)::

    "_tuned_on": {"nbest": "dev.jsonl.gz", "utts": 418, "ids": "3f1c...",
                  "keys": ["score", "rank", "wip"], "spreads": {"score": 0.21, ...}}

``ids`` is a hash of the utterance ids in order; ``spreads`` is each key's
median within-list range on the tuning set (:func:`asr_kd.tune.feature_spreads`),
the scale the weights were found at.  Scoring another set of the same system
(dev -> eval) is the normal use and keeps the spreads within a small factor;
a set from another recogniser or another score scale (an acoustic weight
folded in, log10 instead of natural log, per-token instead of summed scores)
moves them far apart, and then the weights mean something else:
:func:`mismatch` says so.
"""
from __future__ import annotations

import json

import numpy as np

TUNED_ON = "_tuned_on"
# A key whose spread differs by more than this factor from the tuning set's is on another scale.
SPREAD_FACTOR = 4.0
MIN_LISTS = 10  # lists in which a key varies, at least, for its spread to be compared


def record(nbest, path: str, keys, spreads: dict[str, float]) -> dict:
    """The ``_tuned_on`` entry for weights tuned on ``nbest`` (read from ``path``)."""
    from .rescore import utt_ids_digest

    return {"nbest": str(path), "utts": len(nbest), "ids": utt_ids_digest(nbest),
            "keys": list(keys), "spreads": {k: float(v) for k, v in spreads.items()}}


def read_record(path: str) -> dict | None:
    """The ``_tuned_on`` entry of a weights JSON file, None when it has none (or it is
    not an object; the weights themselves are checked by their reader)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            obj = json.load(f)
    except (OSError, ValueError):
        return None
    rec = obj.get(TUNED_ON) if isinstance(obj, dict) else None
    return rec if isinstance(rec, dict) else None


def mismatch(rec: dict, nbest, weights: dict[str, float]) -> str | None:
    """A one-line message when ``nbest`` does not look like the tuning set of ``rec``.

    Compares each weighted key's spread on ``nbest`` with the recorded one (the
    ids are not compared: scoring eval with dev's weights is the normal use, and
    the tuning set itself always agrees).  None when all agree within
    ``SPREAD_FACTOR`` (or nothing can be compared).
    """
    from .scoring import WIP, pack_features
    from .tune import feature_spreads

    old = rec.get("spreads")
    keys = [k for k in weights if k != WIP and isinstance(old, dict)
            and isinstance(old.get(k), (int, float)) and old[k] > 0 and weights[k] != 0]
    if not keys or not len(nbest):
        return None
    feats, mask = pack_features(nbest, keys, False)
    new = feature_spreads(feats, mask)
    # a median over a handful of lists says little: compare keys that vary in enough lists
    hi = np.where(mask[..., None], feats, -np.inf).max(axis=1)
    lo = np.where(mask[..., None], feats, np.inf).min(axis=1)
    varying = ((hi - lo) > 0).sum(axis=0)
    off = [(k, float(old[k]), float(v)) for k, v, n in zip(keys, new, varying)
           if n >= MIN_LISTS and not 1 / SPREAD_FACTOR <= v / old[k] <= SPREAD_FACTOR]
    if not off:
        return None
    shown = ", ".join(f"{k} {o:.3g} there, {v:.3g} here" for k, o, v in off[:3])
    return (f"these weights were tuned on {rec.get('nbest', '?')} ({rec.get('utts', '?')} "
            f"utterances), where the scores varied on another scale within a list "
            f"(median range: {shown}): another recogniser or score convention? "
            "Tune on a dev set like this one")
