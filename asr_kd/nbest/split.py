"""Deterministic splits of an N-best set by utterance id.

Real lists often come as one file (the HyPoradise ATIS training list; a single
CHiME-4 dev list) that must be split into a tuning part, a report part and,
for ATIS, references used as LM text.  The split must not depend on the file
order or on the set's size, so that a held-out set or a reordered copy puts
every utterance in the same part: each id goes to bucket
``int(md5(id), 16) % buckets`` and a part is a set of buckets.
"""
from __future__ import annotations

import hashlib

from ..errors import InputError
from .model import NBest


def id_bucket(utt: str, buckets: int) -> int:
    """The bucket (0 .. buckets-1) of utterance id ``utt``; stable across runs and machines."""
    return int(hashlib.md5(utt.encode("utf-8")).hexdigest(), 16) % buckets


def parse_parts(specs: list[str], buckets: int) -> dict[str, set[int]]:
    """``["dev=0", "eval=1", "lm=2-9"]`` -> ``{"dev": {0}, "eval": {1}, "lm": {2..9}}``.

    Buckets are numbers or ``a-b`` ranges separated by commas; a bucket may
    belong to one part only.
    """
    parts: dict[str, set[int]] = {}
    owner: dict[int, str] = {}
    for spec in specs:
        name, eq, rng = spec.partition("=")
        if not eq or not name or not rng:
            raise InputError(f"expected NAME=BUCKETS (e.g. dev=0 or lm=2-9), got {spec!r}")
        got: set[int] = set()
        for piece in rng.split(","):
            lo, dash, hi = piece.partition("-")
            try:
                a, b = int(lo), int(hi if dash else lo)
            except ValueError:
                raise InputError(f"{spec!r}: expected bucket numbers, got {piece!r}") from None
            if not 0 <= a <= b < buckets:
                raise InputError(f"{spec!r}: buckets must lie in 0..{buckets - 1}")
            got.update(range(a, b + 1))
        for k in got:
            if k in owner:
                raise InputError(f"bucket {k} is in both {owner[k]!r} and {name!r}")
            owner[k] = name
        parts[name] = got
    return parts


def split_by_id(nbest: NBest, buckets: int, parts: dict[str, set[int]]) -> dict[str, NBest]:
    """Each part's utterances (file order kept); utterances in no part are left out."""
    out = {name: NBest() for name in parts}
    where = {k: name for name, ks in parts.items() for k in ks}
    for u in nbest:
        name = where.get(id_bucket(u.utt, buckets))
        if name is not None:
            out[name].utts.append(u)
    return out
