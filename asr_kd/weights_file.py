"""The weights file: read, checked and written here, nowhere else.

``asr-kd tune --out`` writes the weights as ``{"key": weight, ...}`` (the first
key exactly 1.0, ``wip`` the weight of the word count), then, for consensus
decoding, the decode settings ``"decode"``, ``"posterior_scale"`` and
``"deletion_bias"`` (:data:`DECODE_KEYS`), then one reserved entry,
``"_tuned_on"`` (:data:`TUNED_ON`), which readers of weights skip (plain files
without it read too)::

    "_tuned_on": {"nbest": "dev.jsonl.gz", "utts": 418, "ids": "3f1c...",
                  "keys": ["score", "rank", "wip"], "spreads": {"score": 0.21, ...}}

and what scoring settings were in force (each may be absent):
``"noise"`` (the scoring filter's patterns) and ``"ignore_case"`` (true when
set), ``"srilm_scores"`` (``--srilm-scores`` name -> folder) and ``"repeats"``
(hypotheses repeating an earlier one of their list: 0 after ``convert-nbest
--dedup``).  ``ids`` is a hash of the utterance ids in order; ``spreads`` is
each key's median within-list range on the tuning set
(:func:`asr_kd.tune.feature_spreads`), the scale the weights were found at.
How ``score`` compares another set with the record: :mod:`asr_kd.tuned_on`.

``score --weights`` and ``tune --fallback`` / ``--start`` read the weights with
:func:`parse_weights`; ``score`` takes the decode settings with
:func:`decode_settings`.
"""
from __future__ import annotations

import json
import math
from typing import Callable

from .errors import InputError
from .fileio import atomic_write, read_json

TUNED_ON = "_tuned_on"
# weights-file keys that are not score weights
DECODE_KEYS = ("decode", "posterior_scale", "deletion_bias")
NOT_WEIGHTS = 'expected a JSON object {"key": weight, ...}'


def read_weights_file(path: str) -> dict:
    """The JSON object of a weights file (``.gz`` allowed, a BOM skipped); InputError
    "not valid JSON: ..." when unreadable or malformed, or when not an object."""
    return read_json(path, "weights", template="not valid JSON: {error}", not_object=NOT_WEIGHTS,
                     gz=True, encoding="utf-8-sig")


def parse_weights(path: str | None, pairs: list[str] | None) -> dict[str, float]:
    """Weights from a JSON file (``{"key": number}``) or ``KEY=VALUE`` strings.

    A file's ``"decode"``, ``"posterior_scale"`` and ``"deletion_bias"`` are decode
    options (:func:`decode_settings`), not weights, and are skipped here, as is the
    tuning record.
    """
    if path is not None:
        obj = read_weights_file(path)
        if not obj:
            raise InputError(NOT_WEIGHTS, path)
        items = list(obj.items())
    else:
        items = []
        for s in pairs or []:
            key, eq, val = s.rpartition("=")  # rpartition: keys like "lm:student" have no '='
            if not eq or not key:
                raise InputError(f"--weight {s!r}: expected KEY=VALUE")
            items.append((key, val))
    weights = {}
    for key, val in items:
        if path is not None and (key == TUNED_ON or key in DECODE_KEYS):
            continue
        try:
            v = float(val)
        except (TypeError, ValueError):
            v = math.nan
        if isinstance(val, bool) or not math.isfinite(v):
            raise InputError(f"weight {key!r}: expected a finite number, got {val!r}", path)
        weights[key] = v
    if not weights:
        raise InputError('expected a JSON object {"key": weight, ...}', path)
    return weights


def _file_number(obj: dict, key: str, path: str):
    v = obj.get(key)
    if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
        raise InputError(f'"{key}": expected a number, got {v!r}', path)
    return v


def decode_settings(path: str | None, decode: str | None, posterior_scale: float | None,
                    deletion_bias: float | None, warn: Callable[[str], None]
                    ) -> tuple[str, float | None, float]:
    """(decode mode, posterior scale, deletion bias): the options ``--decode``,
    ``--posterior-scale`` and ``--deletion-bias`` (None: not given), else the
    weights file ``path``'s.  Consensus options with 1-best decoding are an
    InputError (they would change nothing); a deletion bias other than the one the
    weights were tuned with is passed to ``warn``."""
    mode, scale, bias = decode, posterior_scale, deletion_bias
    fbias = None
    if path is not None:
        try:
            obj = read_weights_file(path)
        except InputError:
            obj = {}  # parse_weights reports it
        if obj:
            fmode = obj.get("decode")
            if fmode is not None and fmode not in ("1best", "consensus"):
                raise InputError(f'"decode": expected "1best" or "consensus", got {fmode!r}',
                                 path)
            fscale = _file_number(obj, "posterior_scale", path)
            fbias = _file_number(obj, "deletion_bias", path)
            if scale is None and fscale is not None and not (math.isfinite(fscale)
                                                             and fscale >= 0):
                raise InputError(f'"posterior_scale": expected a finite number >= 0, '
                                 f"got {fscale}", path)
            mode = mode or fmode
            scale = fscale if scale is None else scale
    mode = mode or "1best"
    if mode != "consensus":
        given = [o for o, v in (("--posterior-scale", posterior_scale),
                                ("--deletion-bias", deletion_bias)) if v is not None]
        if given:
            raise InputError(f"{' and '.join(given)} only apply to consensus decoding, and "
                             f"this run decodes 1-best: add --decode consensus, or leave "
                             f"{'them' if len(given) > 1 else 'it'} out")
        return mode, None, 1.0
    if scale is None:
        raise InputError("--decode consensus needs --posterior-scale (or a weights file "
                         "from `asr-kd tune --decode consensus`); SRILM's nbest-lattice "
                         "default is the LM weight")
    if not math.isfinite(scale) or scale < 0:
        raise InputError(f"--posterior-scale must be a finite number >= 0, got {scale}")
    if bias is None:
        bias = 1.0 if fbias is None else fbias
    elif fbias is not None and bias != fbias:
        warn(f"--deletion-bias {bias:g}, but {path} was tuned with "
             f"{fbias:g}: the weights and scale were chosen for the other bias")
    if not math.isfinite(bias) or bias < 0:
        raise InputError(f"--deletion-bias must be a finite number >= 0, got {bias}")
    return mode, float(scale), float(bias)


def record(nbest, path: str, keys, spreads: dict[str, float],
           settings: dict | None = None) -> dict:
    """The ``_tuned_on`` entry for weights tuned on ``nbest`` (read from ``path``);
    ``settings``: the scoring settings to record (``noise``, ``ignore_case``,
    ``srilm_scores``, ``repeats``; see the module docstring)."""
    from .nbest.model import utt_ids_digest

    return {"nbest": str(path), "utts": len(nbest), "ids": utt_ids_digest(nbest),
            "keys": list(keys), "spreads": {k: float(v) for k, v in spreads.items()},
            **(settings or {})}


def read_record(path: str) -> dict | None:
    """The ``_tuned_on`` entry of a weights JSON file, None when it has none (or it is
    not an object; the weights themselves are checked by their reader)."""
    try:
        obj = read_weights_file(path)
    except InputError:
        return None
    rec = obj.get(TUNED_ON)
    return rec if isinstance(rec, dict) else None


def write_weights(path: str, weights: dict[str, float], tuned_on: dict,
                  decode: dict | None = None) -> None:
    """Write a weights file atomically: ``weights`` in their order, then ``decode``
    (the :data:`DECODE_KEYS` of consensus weights), then the ``_tuned_on`` record
    (:func:`record`); two-space indented JSON and a final newline."""
    with atomic_write(path) as f:
        f.write(json.dumps({**weights, **(decode or {}), TUNED_ON: tuned_on}, indent=2) + "\n")
