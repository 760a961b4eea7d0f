"""Rescoring in parallel blocks, and putting the blocks back together.

``asr-kd rescore --shard i/n`` (or ``RANK/WORLD_SIZE`` under torchrun, see
:mod:`asr_kd.jobs`) scores the ``i``-th of ``n`` contiguous, near-equal blocks
of utterances (:func:`shard_bounds`) and writes it as a *shard file*
``OUT.shard-i-of-n.jsonl[.gz]`` followed, last, by a ``OUT.shard-i-of-n.done``
JSON sidecar (:func:`write_shard`).  :func:`merge_shards` checks every sidecar
(all present, same input, models and settings, file unchanged) and concatenates
the shard files in order: the result is byte-identical to an unsharded run.

Sidecar (``.done``) keys: ``format`` (``asr_kd-rescore-shard``), ``shard`` (i),
``num_shards`` (n), ``first`` (index of the block's first utterance), ``utts``
(its utterance count), ``input_utts``, ``input_ids`` (hash of the input's
utterance ids), ``sha256`` (of the shard file), plus what the caller adds
(rescoring: ``name``, ``models``, ``ensemble``, ``text_filter``).
"""
from __future__ import annotations

import glob
import hashlib
import io
import json
import os
import re

from .errors import InputError
from .fileio import atomic_write, open_text, read_json

SHARD_FORMAT = "asr_kd-rescore-shard"
_SHARD_RE = re.compile(r"\.shard-(\d+)-of-(\d+)\.done$")
# Sidecar keys that must agree between the shards of one split (besides the block bounds).
_SAME_IN_ALL = ("input_utts", "input_ids", "name", "models", "ensemble", "text_filter")


def shard_bounds(num_utts: int, i: int, n: int) -> tuple[int, int]:
    """[lo, hi) of block ``i`` of ``n``: contiguous blocks whose sizes differ by at most one."""
    return i * num_utts // n, (i + 1) * num_utts // n


def _split_ext(path: str) -> tuple[str, str]:
    for ext in (".jsonl.gz", ".jsonl"):
        if path.endswith(ext):
            return path[: -len(ext)], ext
    return path, ""


def shard_path(out: str, i: int, n: int) -> str:
    """``dev.lm.jsonl.gz`` -> ``dev.lm.shard-i-of-n.jsonl.gz`` (its sidecar: ``... .done``)."""
    base, ext = _split_ext(out)
    return f"{base}.shard-{i}-of-{n}{ext}"


def done_path(out: str, i: int, n: int) -> str:
    """The sidecar of shard file ``(i, n)`` of OUT: ``dev.lm.shard-i-of-n.done``."""
    base, _ = _split_ext(out)
    return f"{base}.shard-{i}-of-{n}.done"


def _sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_shard(block, out: str, shard: tuple[int, int], num_utts: int, input_digest: str,
                info: dict | None = None) -> str:
    """Write block ``shard=(i, n)`` of OUT (jsonl), then its ``.done`` sidecar; returns the path.

    ``block``: the NBest of the block's utterances; ``num_utts``: the whole
    input's utterance count; ``input_digest``: its ids' hash; ``info``: more
    sidecar keys that every shard of the split must agree on.
    """
    from .nbest import write_nbest

    i, n = shard
    path = shard_path(out, i, n)
    write_nbest(block, path, "jsonl")
    lo, hi = shard_bounds(num_utts, i, n)
    assert hi - lo == len(block)
    meta = {"format": SHARD_FORMAT, "shard": i, "num_shards": n, "first": lo, "utts": len(block),
            "input_utts": num_utts, "input_ids": input_digest, "sha256": _sha256(path)}
    meta.update(info or {})
    with atomic_write(done_path(out, i, n)) as f:
        json.dump(meta, f, indent=1)
    return path


def _find_sidecars(out: str) -> dict[int, dict[int, str]]:
    """Sidecars of OUT on disk: {n: {i: sidecar path}}."""
    base, _ = _split_ext(out)
    found: dict[int, dict[int, str]] = {}
    for p in glob.glob(glob.escape(base) + ".shard-*-of-*.done"):
        m = _SHARD_RE.search(p)
        if m and p[: m.start()] == base:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    return found


def _pick_split(out: str, found: dict[int, dict[int, str]], num_shards: int | None) -> int:
    """The n of the split to merge: ``num_shards``, else the only one on disk."""
    if num_shards is not None:
        return num_shards
    if not found:
        raise InputError(f"no rescoring shards found (expected "
                         f"{os.path.basename(shard_path(out, 0, 'N'))} and its .done file); "
                         "run asr-kd rescore --shard i/N first", out)
    if len(found) > 1:
        raise InputError(f"shards of several splits ({', '.join(f'of {k}' for k in sorted(found))}); "
                         "give --num-shards or remove the stale ones", out)
    return next(iter(found))


def _check_sidecars(out: str, num_shards: int, have: dict[int, str]) -> None:
    """Every shard of the split present, from the same input and settings, unchanged."""
    missing = [i for i in range(num_shards) if i not in have]
    if missing:
        raise InputError(f"missing or unfinished shard(s) {', '.join(map(str, missing))} of "
                         f"{num_shards} (no {os.path.basename(done_path(out, missing[0], num_shards))}"
                         f"{' ...' if len(missing) > 1 else ''}); rerun asr-kd rescore --shard "
                         f"{missing[0]}/{num_shards}", out)
    metas = []
    for i in range(num_shards):
        meta = read_json(have[i], "shard sidecar", template="unreadable {what} ({error})")
        if meta.get("format") != SHARD_FORMAT or meta.get("shard") != i:
            raise InputError("not a rescoring shard sidecar", have[i])
        metas.append(meta)
    ref = metas[0]
    for i, meta in enumerate(metas):
        path = shard_path(out, i, num_shards)
        for k in _SAME_IN_ALL:
            if meta.get(k) != ref.get(k):
                raise InputError(f"shard {i} differs from shard 0 in {k!r} "
                                 f"({meta.get(k)!r} vs {ref.get(k)!r}): stale shard? rerun it", path)
        lo, hi = shard_bounds(ref["input_utts"], i, num_shards)
        if (meta["first"], meta["utts"]) != (lo, hi - lo):
            raise InputError(f"shard {i} holds utterances [{meta['first']}, "
                             f"{meta['first'] + meta['utts']}), expected [{lo}, {hi})", path)
        if not os.path.isfile(path) or _sha256(path) != meta["sha256"]:
            raise InputError(f"shard {i} is missing or changed since it was written "
                             f"(checksum); rerun asr-kd rescore --shard {i}/{num_shards}", path)


def merge_shards(out: str, num_shards: int | None = None) -> int:
    """Check every shard file of OUT is present and complete; write OUT in input order.

    Returns the number of shards merged.  Raises :class:`InputError` listing the
    missing shards, or naming the shard that is stale or corrupt.
    """
    found = _find_sidecars(out)
    num_shards = _pick_split(out, found, num_shards)
    _check_sidecars(out, num_shards, found.get(num_shards, {}))
    # (text mode, like the writer of an unsharded run, so even the gzip bytes agree)
    with atomic_write(out) as dst:
        for i in range(num_shards):
            with io.TextIOWrapper(open_text(shard_path(out, i, num_shards)), encoding="utf-8",
                                  newline="") as src:
                for chunk in iter(lambda: src.read(1 << 20), ""):
                    dst.write(chunk)
    return num_shards
