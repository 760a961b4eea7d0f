"""Reference transcripts: read them and attach them to an N-best set.

Two layouts, one utterance per line (blank lines skipped, words may be empty):

- Kaldi ``text``: ``uttid w1 w2 ...``;
- sclite ``trn``: ``w1 w2 ... (uttid)`` -- the id is the text inside the last
  parentheses.  Chosen when the file name ends in ``.trn`` or every line ends
  in ``(token)``.  ESPnet writes ``(spk-uttid)`` where ``uttid`` itself starts
  with ``spk-``; when every id of a file has that shape, the ``spk-`` prefix is
  removed so the ids match the N-best ids (``1272-128104-1272-128104-0000`` ->
  ``1272-128104-0000``).

JSON files are refused (references inside JSON N-best files are read with the
N-best).  Fields are separated by any whitespace (spaces, TABs); CRLF and a
leading BOM are accepted (a BOM starting a later line is an InputError).
Duplicate ids are an InputError naming both lines (after the ``spk-`` prefix
is removed, so two trn ids that collapse to one id are caught too).

:func:`attach_refs` policy: every N-best utterance needs a reference (the
missing ids are listed in the error); references without an N-best utterance
are returned to the caller, which reports them, and are never an error.
"""
from __future__ import annotations

import json
import re

from ..errors import InputError
from .io import keyed_lines
from .model import NBest

_TRN_ID = re.compile(r"[^()\s]+")


def _split_trn(line: str) -> tuple[str, str] | None:
    """``'w1 w2 (uttid)'`` -> ``('w1 w2', 'uttid')``; None when the line has no
    ``(id)`` at its end.  Scans once from the right: a regex with a lazy prefix
    took quadratic time on a long run of blanks."""
    line = line.rstrip()
    if not line.endswith(")"):
        return None
    open_at = line.rfind("(")
    if open_at < 0 or not _TRN_ID.fullmatch(line, open_at + 1, len(line) - 1):
        return None
    return line[:open_at].rstrip(), line[open_at + 1:-1]


def _espnet_utt(trn_id: str) -> str | None:
    """``'spk-spk-rest'`` -> ``'spk-rest'``; None when the id has no such prefix."""
    for i, c in enumerate(trn_id):
        if c == "-" and trn_id[i + 1:].startswith(trn_id[:i] + "-"):
            return trn_id[i + 1:]
    return None


def _is_json(path, first: str) -> bool:
    name = str(path).lower()
    if name.endswith((".json", ".jsonl", ".json.gz", ".jsonl.gz")) or first.startswith("{"):
        return True
    if first.startswith("["):   # "[noise] words (id)" is a trn line, not JSON
        try:
            json.loads(first)
        except (ValueError, RecursionError):   # not JSON, or not worth parsing
            return first == "["
        return True
    return False


def read_refs(path) -> dict[str, str]:
    """``{uttid: reference text}`` from a Kaldi ``text`` or sclite ``trn`` file."""
    lines = [(n, line.strip()) for n, line in keyed_lines(path) if line.strip()]
    if _is_json(path, lines[0][1] if lines else ""):
        raise InputError("expected a Kaldi text or sclite trn reference file, got JSON",
                         path, lines[0][0])
    trn = str(path).endswith(".trn") or (bool(lines) and all(_split_trn(s) for _, s in lines))
    pairs = []
    for n, line in lines:
        if trn:
            parsed = _split_trn(line)
            if not parsed:
                raise InputError("expected 'words (uttid)'", path, n)
            pairs.append((n, parsed[1], parsed[0]))
        else:
            parts = line.split(maxsplit=1)
            pairs.append((n, parts[0], parts[1] if len(parts) > 1 else ""))
    if trn and pairs:
        stripped = [_espnet_utt(u) for _, u, _ in pairs]
        if all(stripped):
            pairs = [(n, s, t) for (n, _, t), s in zip(pairs, stripped)]
    refs: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for n, utt, text in pairs:
        if utt in refs:
            raise InputError(f"duplicate utterance id {utt!r} (first on line "
                             f"{first_line[utt]})", path, n)
        refs[utt] = " ".join(text.split())
        first_line[utt] = n
    return refs


def attach_refs(nbest: NBest, refs: dict[str, str], path=None) -> list[str]:
    """Set ``utt.ref`` for every utterance from ``refs`` (read from ``path``).

    Every N-best utterance needs a reference: missing ones are an InputError
    listing up to 10 ids and the count.  Returns the ids of references that have
    no N-best entry (the caller decides whether to warn).
    """
    missing = [u.utt for u in nbest if u.utt not in refs]
    if missing:
        shown = ", ".join(missing[:10]) + (", ..." if len(missing) > 10 else "")
        raise InputError(f"{len(missing)} of {len(nbest)} N-best utterances have no "
                         f"reference: {shown}", path)
    for u in nbest:
        u.ref = refs[u.utt]
    ids = {u.utt for u in nbest}
    return [r for r in refs if r not in ids]
