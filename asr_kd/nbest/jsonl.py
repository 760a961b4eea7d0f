"""The native N-best format: JSONL, gzip by ``.gz`` suffix.

One utterance per line::

    {"utt": "4k0c0301", "ref": "optional", "hyps": [{"text": "w1 w2", "scores": {"am": -1234.5}}]}

``ref`` may be absent or null; ``hyps`` may be empty (an utterance with no
hypotheses); ``text`` may be ""; ``scores`` maps names to finite natural-log
scores and may be absent (empty).  Blank lines are skipped.  Writing is lossless:
every score key and the reference survive a write/read round trip exactly.

Policies: a repeated ``utt`` is an InputError naming both lines; so is a key
repeated inside one JSON object (JSON would silently keep the last).  Unknown
fields are ignored.  A list converted from one without utterance ids (HyPoradise
JSON without ``id``, NeMo without a manifest) keeps that fact: each line carries
``"positional_id": true`` and the set reads back as ``positional_ids``, so
references attached later are still warned about as matched by position.  CRLF
and a leading BOM are accepted; a line that is not one JSON object (bad UTF-8,
malformed JSON, absurd nesting) is an InputError naming the line.
"""
from __future__ import annotations

import json
import math
from typing import Iterator

from ..errors import InputError
from ..fileio import atomic_write
from .io import check_number, iter_json_lines
from .model import Hyp, NBest, Utterance


def _parse_utt(obj, path, n) -> Utterance:
    if not isinstance(obj, dict):
        raise InputError('expected an object {"utt": ..., "hyps": [...]}', path, n)
    utt = obj.get("utt")
    if not isinstance(utt, str) or not utt:
        raise InputError('expected a non-empty string "utt"', path, n)
    ref = obj.get("ref")
    if ref is not None and not isinstance(ref, str):
        raise InputError('expected "ref" to be a string or null', path, n)
    hyps = obj.get("hyps")
    if not isinstance(hyps, list):
        raise InputError('expected "hyps" to be a list', path, n)
    out = []
    for i, h in enumerate(hyps, 1):
        if not isinstance(h, dict) or not isinstance(h.get("text"), str):
            raise InputError(f'expected hyp {i} to be {{"text": str, "scores": {{...}}}}', path, n)
        scores = h.get("scores", {})
        if not isinstance(scores, dict):
            raise InputError(f'expected "scores" of hyp {i} to be an object', path, n)
        out.append(Hyp(h["text"], {str(k): check_number(v, path, n, f"score {k!r} of hyp {i}")
                                   for k, v in scores.items()}))
    return Utterance(utt, out, ref)


def iter_jsonl(path, seen: dict[str, int] | None = None
               ) -> Iterator[tuple[Utterance, bool]]:
    """Yield ``(utterance, positional)`` for each line of a native JSONL N-best file, in
    file order, holding one line at a time; ``positional`` is the line's
    ``"positional_id"`` flag.  ``seen`` (id -> line, filled here) catches repeated ids,
    an InputError naming both lines."""
    seen = {} if seen is None else seen
    for n, obj in iter_json_lines(path):
        u = _parse_utt(obj, path, n)
        if u.utt in seen:
            raise InputError(f"duplicate utterance id {u.utt!r} (first on line {seen[u.utt]})",
                             path, n)
        seen[u.utt] = n
        yield u, obj.get("positional_id") is True


def read_jsonl(path) -> NBest:
    """Read a native JSONL N-best file; duplicate utterance ids are an error."""
    nbest = NBest()
    for u, positional in iter_jsonl(path):
        nbest.utts.append(u)
        nbest.positional_ids |= positional
    return nbest


def write_jsonl(nbest: NBest, path) -> None:
    """Write ``nbest`` atomically as native JSONL (gzip if ``path`` ends in .gz)."""
    from ..progress import progress

    with atomic_write(path) as f:
        for u in progress(nbest.utts, desc=f"write {path}", unit="utt"):
            for h in u.hyps:
                bad = [k for k, v in h.scores.items() if not math.isfinite(v)]
                if bad:
                    raise InputError(f"utterance {u.utt!r}: score {bad[0]!r} is not finite "
                                     f"({h.scores[bad[0]]})", path)
            obj = {"utt": u.utt}
            if nbest.positional_ids:
                obj["positional_id"] = True
            if u.ref is not None:
                obj["ref"] = u.ref
            obj["hyps"] = [{"text": h.text, "scores": {k: float(v) for k, v in h.scores.items()}}
                           for h in u.hyps]
            f.write(json.dumps(obj, ensure_ascii=False) + "\n")
