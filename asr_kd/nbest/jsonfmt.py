"""N-best lists in one JSON document (optionally ``.gz``), two styles told apart
by shape:

- HyPoradise (a list): ``[{"input": [hyp1, ..., hypN], "output": ref,
  "score": [...], "am_score": [...], "id": ...}, ...]``.  ``output``, ``score``,
  ``am_score`` and ``id`` are optional; ids default to the list index ("0",
  "1", ...), and the set is then marked ``positional_ids``.  Score keys:
  ``score`` -> ``"score"``, ``am_score`` -> ``"am"``.
  An empty ``input`` list is an utterance with N = 0.
- mlm-scoring (an object): ``{utt: {"ref": ..., "hyp_1": {"score": s, "text": t}, ...}}``.
  Hypotheses are the entries whose value is an object; their keys must end in
  a number, which gives the order (``hyp_2`` before ``hyp_10``); a key ending
  in a number whose value is not an object is an error (not a hypothesis
  silently skipped); other non-object fields are ignored.  ``score`` ->
  ``"score"``; any other field besides ``text`` must be a number and keeps its
  name.  ``ref`` is optional.

Policies: utterance ids must be non-empty and unique (HyPoradise ``id`` a
string or an integer; a repeat names both entries; a key repeated inside one
JSON object, which JSON itself would resolve by silently keeping the last, is an
error too).  An empty hypothesis text is valid.  Malformed JSON (including a
damaged ``.gz``, non-UTF-8 bytes and absurd nesting) is reported with its line;
shape errors name the entry (index or utterance id), since a parsed document
has no line numbers.
"""
from __future__ import annotations

import re
import zlib

from ..errors import InputError
from ..fileio import max_doc_bytes, open_text, read_bounded
from .io import check_number, load_json, one_line
from .model import Hyp, NBest, Utterance

_HYP_NUMBER = re.compile(r"([0-9]+)$")


def _load(path):
    with open_text(path) as f:
        try:
            data = read_bounded(f, max_doc_bytes(), path, "JSON N-best document")
        except (OSError, EOFError, zlib.error) as e:   # a damaged or truncated .gz
            raise InputError(f"cannot read: {one_line(e)}", path) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 (byte {e.start})", path,
                         data[:e.start].count(b"\n") + 1) from None
    return load_json(text, path, None, "valid JSON")


def _utt_id(item: dict, i: int, path) -> str:
    """A HyPoradise entry's id: its ``id`` (a string or integer) or its index."""
    utt = item.get("id", i)
    if isinstance(utt, bool) or not isinstance(utt, (str, int)) or utt == "":
        raise InputError(f'entry {i}: expected "id" to be a non-empty string or an integer, '
                         f"got {one_line(repr(utt), 60)}", path)
    return str(utt)


def _hyporadise(items: list, path) -> NBest:
    nbest, seen = NBest(), {}
    for i, item in enumerate(items):
        where = f"entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("input"), list):
            raise InputError(f'{where}: expected {{"input": [hyp, ...], ...}}', path)
        utt = _utt_id(item, i, path)
        where = f"entry {i} (id {utt!r})"
        if utt in seen:
            raise InputError(f"{where}: duplicate id (entry {seen[utt]} has it too)", path)
        seen[utt] = i
        texts = item["input"]
        if not all(isinstance(t, str) for t in texts):
            raise InputError(f'{where}: expected "input" to be a list of strings', path)
        ref = item.get("output")
        if ref is not None and not isinstance(ref, str):
            raise InputError(f'{where}: expected "output" to be a string', path)
        hyps = [Hyp(" ".join(t.split())) for t in texts]
        for field, key in (("score", "score"), ("am_score", "am")):
            values = item.get(field)
            if values is None:
                continue
            if not isinstance(values, list) or len(values) != len(texts):
                raise InputError(f'{where}: expected "{field}" to be a list of {len(texts)} '
                                 f"numbers, one per hypothesis", path)
            for h, v in zip(hyps, values):
                h.scores[key] = check_number(v, path, None, f'"{field}" value of {where}')
        nbest.utts.append(Utterance(utt, hyps, ref))
        nbest.positional_ids |= "id" not in item
    return nbest


def _mlm(obj: dict, path) -> NBest:
    nbest = NBest()
    for utt, entry in obj.items():
        where = f"utterance {utt!r}"
        if not utt:
            raise InputError("expected non-empty utterance ids, got \"\"", path)
        if not isinstance(entry, dict):
            raise InputError(f'{where}: expected {{"hyp_1": {{"score": s, "text": t}}, ...}}', path)
        ref = entry.get("ref")
        if ref is not None and not isinstance(ref, str):
            raise InputError(f'{where}: expected "ref" to be a string', path)
        numbered: dict[int, Hyp] = {}
        for key, h in entry.items():
            number = _hyp_number(key, h, where, path)
            if number is None:
                continue
            if number in numbered:
                raise InputError(f"{where}: two hypotheses numbered {number}", path)
            if not isinstance(h.get("text"), str):
                raise InputError(f'{where} {key}: expected a string "text"', path)
            scores = {k: check_number(v, path, None, f"{k!r} of {where} {key}")
                      for k, v in h.items() if k != "text"}
            numbered[number] = Hyp(" ".join(h["text"].split()), scores)
        nbest.utts.append(Utterance(str(utt), [numbered[k] for k in sorted(numbered)], ref))
    return nbest


def _hyp_number(key: str, value, where: str, path) -> int | None:
    """The order number of hypothesis entry ``key``; None for a non-hypothesis field.

    An object value is a hypothesis and its key must end in a number; a key that
    ends in a number but holds no object (``"hyp_3": "a b"``) is an error rather
    than a hypothesis silently skipped.
    """
    m = _HYP_NUMBER.search(key)
    if not isinstance(value, dict):
        if m and key != "ref":
            raise InputError(f'{where} {key}: expected a hypothesis {{"score": s, "text": t}}, '
                             f"got {one_line(repr(value), 60)}", path)
        return None
    if not m or len(m.group(1)) > 18:
        raise InputError(f"{where}: expected hypothesis keys like hyp_1, "
                         f"got {one_line(repr(key), 60)}", path)
    return int(m.group(1))


def read_json(path) -> NBest:
    """Read a HyPoradise list or an mlm-scoring object (see module docstring)."""
    obj = _load(path)
    if isinstance(obj, list):
        return _hyporadise(obj, path)
    if isinstance(obj, dict):
        return _mlm(obj, path)
    raise InputError("expected a JSON list (HyPoradise) or object (mlm-scoring)", path, 1)
