"""SRILM N-best lists, the three formats of ``nbest-format(5)``.

One file per utterance (optionally ``.gz``).  ``path`` is a folder (every
regular, non-hidden file, in name order), a list file (one N-best file path per
line, relative paths resolved against the list's folder) or a single N-best
file.  The utterance id is the file name minus ``.gz`` and then minus one of
``.nbest``, ``.score``, ``.txt`` if present (``sw_4390-A_0012.nbest.gz`` ->
``sw_4390-A_0012``).

Formats, converted to natural log (larger is better):

- ``NBestList1.0`` header, then ``(score) w1 w2 ...``: ``score`` is a bytelog
  (log base 1.0001 divided by 1024); ln p = bytelog * 1024 / 10000.5, SRILM's
  own BytelogToLogP constant.  Key ``"score"``.  Headerless lines that start
  with ``(`` are read the same way, as SRILM does.
- ``NBestList2.0`` header, then ``(score) w1 ( st: s et: e g: lm a: ac ) w2 ( ... )``:
  ``score`` as above; ``am`` = sum of the words' ``a:``, ``lm0`` = sum of ``g:``
  (bytelogs).  Phone / HMM-state tokens, recognised like SRILM does by a start
  time not after the previous word's end time, are skipped.
- headerless ``ascore lscore nwords w1 w2 ...`` in log base 10: ``am`` and
  ``lm0``.  ``nwords`` must be a non-negative integer but may differ from the
  number of tokens (SRILM uses it for the word penalty only).

``<s>`` and ``</s>`` tokens are dropped from the hypothesis text (SRILM tools
write them); their scores still count.  Blank lines are skipped; a file with no
hypotheses is an utterance with N = 0; a hypothesis with no words is an empty
hypothesis.  Tokens are separated by any whitespace (spaces, TABs); CRLF and a
leading BOM are accepted.  Two files giving the same utterance id
(``a.nbest`` and ``a.nbest.gz``) are an InputError naming both.  In a list
file, a line naming no readable file is an InputError naming that line.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path

from ..errors import InputError
from ..fileio import read_lines
from .io import looks_like_srilm_line, parse_score
from .model import Hyp, NBest, Utterance

BYTELOG_TO_LN = 1024.0 / 10000.5   # natural log per bytelog (SRILM Prob.h)
LOG10_TO_LN = math.log(10.0)
SUFFIXES = (".nbest", ".score", ".txt")
_SENT_MARKS = {"<s>", "</s>"}
_PAREN_SCORE = re.compile(r"^\((.*)\)$")


def utt_id_from_name(name: str) -> str:
    """``'a.nbest.gz'`` -> ``'a'`` (strip ``.gz``, then one known suffix)."""
    if name.endswith(".gz"):
        name = name[:-3]
    for suffix in SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)]
    return name


def _text(words: list[str]) -> str:
    return " ".join(w for w in words if w not in _SENT_MARKS)


def _bytelog(token: str, path, n) -> float:
    m = _PAREN_SCORE.match(token)
    if not m:
        raise InputError(f"expected '(score)' at the start of the line, got {token!r}", path, n)
    return parse_score(m.group(1), path, n, "bytelog score") * BYTELOG_TO_LN


def _converted(value: float, path, n, what: str) -> float:
    """A score after the change of log base (or a sum of word scores), still finite:
    ``1e308`` in log10 is a valid float but not a valid natural-log score."""
    if not math.isfinite(value):
        raise InputError(f"the {what} overflows when converted to natural log", path, n)
    return value


def _parse_v2(tokens: list[str], path, n) -> Hyp:
    total = _bytelog(tokens[0], path, n)
    words, ac, lm = [], 0.0, 0.0
    prev_end = -math.inf
    i = 1
    while i < len(tokens):
        word = tokens[i]
        if i + 1 >= len(tokens) or tokens[i + 1] != "(":
            raise InputError(f"expected '( st: .. et: .. g: .. a: .. )' after {word!r}", path, n)
        try:
            close = tokens.index(")", i + 2)
        except ValueError:
            raise InputError(f"expected ')' closing the fields of {word!r}", path, n) from None
        fields = tokens[i + 2:close]
        if len(fields) % 2:
            raise InputError(f"expected 'name: value' pairs after {word!r}", path, n)
        info = {fields[j].rstrip(":"): fields[j + 1] for j in range(0, len(fields), 2)}
        missing = [k for k in ("st", "et", "g", "a") if k not in info]
        if missing:
            raise InputError(f"expected field {missing[0]}: after {word!r}", path, n)
        start = parse_score(info["st"], path, n, "start time")
        if start > prev_end:       # a word; else a phone/state inside the previous word
            words.append(word)
            ac += parse_score(info["a"], path, n, "acoustic bytelog")
            lm += parse_score(info["g"], path, n, "LM bytelog")
            prev_end = parse_score(info["et"], path, n, "end time")
        i = close + 1
    return Hyp(_text(words), {
        "score": total,
        "am": _converted(ac * BYTELOG_TO_LN, path, n, "sum of the a: scores"),
        "lm0": _converted(lm * BYTELOG_TO_LN, path, n, "sum of the g: scores")})


def _parse_v3(tokens: list[str], path, n) -> Hyp:
    if len(tokens) < 3:
        raise InputError("expected 'ascore lscore nwords w1 w2 ...'", path, n)
    am = _converted(parse_score(tokens[0], path, n, "acoustic score") * LOG10_TO_LN,
                    path, n, "acoustic score")
    lm = _converted(parse_score(tokens[1], path, n, "LM score") * LOG10_TO_LN,
                    path, n, "LM score")
    if not (tokens[2].isascii() and tokens[2].isdigit()):
        raise InputError(f"expected the word count (an integer), got {tokens[2]!r}", path, n)
    return Hyp(_text(tokens[3:]), {"am": am, "lm0": lm})


def read_srilm_file(path, utt: str | None = None) -> Utterance:
    """One SRILM N-best file as an :class:`Utterance` (id from the name by default)."""
    version = 0
    hyps = []
    for n, line in read_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        if not hyps and version == 0 and tokens[0].startswith("NBestList"):
            if tokens[0] not in ("NBestList1.0", "NBestList2.0"):
                raise InputError(f"expected NBestList1.0 or NBestList2.0, got {tokens[0]!r}",
                                 path, n)
            version = 1 if tokens[0] == "NBestList1.0" else 2
            continue
        if version == 2:
            hyps.append(_parse_v2(tokens, path, n))
        elif version == 1 or tokens[0].startswith("("):
            hyps.append(Hyp(_text(tokens[1:]), {"score": _bytelog(tokens[0], path, n)}))
        else:
            hyps.append(_parse_v3(tokens, path, n))
    return Utterance(utt if utt is not None else utt_id_from_name(Path(path).name), hyps)


def _list_files(path: Path) -> list[tuple[Path, str, int | None]]:
    """``[(file, where it was named, line)]`` for a folder or a list file."""
    if path.is_dir():
        return [(f, os.fspath(path), None) for f in sorted(path.iterdir())
                if f.is_file() and not f.name.startswith(".")]
    first = next((line for _, line in read_lines(path) if line.strip()), "")
    if not first.strip() or looks_like_srilm_line(first.strip()):
        return [(path, os.fspath(path), None)]     # a single N-best file
    out = []
    for n, line in read_lines(path):
        if line.strip():
            f = Path(line.strip())
            f = f if f.is_absolute() else path.parent / f
            if not _is_file(f):
                raise InputError(f"expected an N-best file, {_short(os.fspath(f))!r} "
                                 "does not exist", path, n)
            out.append((f, os.fspath(path), n))
    return out


def _is_file(f: Path) -> bool:
    """``f.is_file()``, False for names the OS cannot even look up (NUL, too long)."""
    try:
        return f.is_file()
    except (OSError, ValueError):
        return False


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def read_srilm(path) -> NBest:
    """Read SRILM N-best files (a folder, a list file or one file)."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", path)
    nbest, seen = NBest(), {}
    for f, where, n in _list_files(p):
        u = read_srilm_file(f)
        if u.utt in seen:
            raise InputError(f"utterance id {u.utt!r} of {f.name} repeats that of "
                             f"{seen[u.utt].name}", where, n)
        seen[u.utt] = f
        nbest.utts.append(u)
    return nbest
