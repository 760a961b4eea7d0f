"""N-best lists in one JSON document (optionally ``.gz``), two styles told apart
by shape:

- HyPoradise (a list): ``[{"input": [hyp1, ..., hypN], "output": ref,
  "score": [...], "am_score": [...], "id": ...}, ...]``.  ``output``, ``score``,
  ``am_score`` and ``id`` are optional; ids default to the list index ("0",
  "1", ...).  Score keys: ``score`` -> ``"score"``, ``am_score`` -> ``"am"``.
  An empty ``input`` list is an utterance with N = 0.
- mlm-scoring (an object): ``{utt: {"ref": ..., "hyp_1": {"score": s, "text": t}, ...}}``.
  Hypotheses are the entries whose value is an object; their keys must end in
  a number, which gives the order (``hyp_2`` before ``hyp_10``).  ``score`` ->
  ``"score"``; any other field besides ``text`` must be a number and keeps its
  name.  ``ref`` is optional.

Malformed JSON is reported with its line; shape errors name the entry (index or
utterance id), since a parsed document has no line numbers.
"""
from __future__ import annotations

import json
import re

from ..errors import InputError
from ..fileio import open_text
from .io import check_number
from .model import Hyp, NBest, Utterance

_HYP_NUMBER = re.compile(r"(\d+)$")


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"duplicate key {dup!r}")
    return dict(pairs)


def _load(path):
    with open_text(path) as f:
        try:
            data = f.read()
        except (OSError, EOFError) as e:
            raise InputError(f"cannot read: {e}", path) from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"not valid UTF-8 (byte {e.start})", path,
                         data[:e.start].count(b"\n") + 1) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as e:
        raise InputError(f"expected valid JSON ({e.msg})", path, e.lineno) from None
    except ValueError as e:   # a duplicate key (utterance id or field)
        raise InputError(f"expected unique keys: {e}", path) from None


def _hyporadise(items: list, path) -> NBest:
    nbest, seen = NBest(), set()
    for i, item in enumerate(items):
        where = f"entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("input"), list):
            raise InputError(f'{where}: expected {{"input": [hyp, ...], ...}}', path)
        utt = str(item.get("id", i))
        where = f"entry {i} (id {utt!r})"
        if utt in seen:
            raise InputError(f"{where}: duplicate id", path)
        seen.add(utt)
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
                h.scores[key] = check_number(v, path, None, f"{where} {field}")
        nbest.utts.append(Utterance(utt, hyps, ref))
    return nbest


def _mlm(obj: dict, path) -> NBest:
    nbest = NBest()
    for utt, entry in obj.items():
        where = f"utterance {utt!r}"
        if not isinstance(entry, dict):
            raise InputError(f'{where}: expected {{"hyp_1": {{"score": s, "text": t}}, ...}}', path)
        ref = entry.get("ref")
        if ref is not None and not isinstance(ref, str):
            raise InputError(f'{where}: expected "ref" to be a string', path)
        numbered = {}
        for key, h in entry.items():
            if not isinstance(h, dict):
                continue
            m = _HYP_NUMBER.search(key)
            if not m:
                raise InputError(f"{where}: expected hypothesis keys like hyp_1, got {key!r}", path)
            if int(m.group(1)) in numbered:
                raise InputError(f"{where}: two hypotheses numbered {m.group(1)}", path)
            if not isinstance(h.get("text"), str):
                raise InputError(f'{where} {key}: expected a string "text"', path)
            scores = {k: check_number(v, path, None, f"{where} {key} {k}")
                      for k, v in h.items() if k != "text"}
            numbered[int(m.group(1))] = Hyp(" ".join(h["text"].split()), scores)
        nbest.utts.append(Utterance(str(utt), [numbered[k] for k in sorted(numbered)], ref))
    return nbest


def read_json(path) -> NBest:
    """Read a HyPoradise list or an mlm-scoring object (see module docstring)."""
    obj = _load(path)
    if isinstance(obj, list):
        return _hyporadise(obj, path)
    if isinstance(obj, dict):
        return _mlm(obj, path)
    raise InputError("expected a JSON list (HyPoradise) or object (mlm-scoring)", path, 1)
