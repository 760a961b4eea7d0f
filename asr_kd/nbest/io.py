"""Read and write N-best lists in any supported format, and the parsing helpers
the per-format readers share.

``read_nbest(path, fmt=None, **opts)`` returns an :class:`NBest`; with
``fmt=None`` the format is detected from the path:

- folder holding ``<K>best_recog/`` folders (or itself one)  -> ``espnet``
- folder holding ``acwt`` / ``words_text`` / ``words`` (or ``archives.*/``) -> ``kaldi``
- ``*.jsonl`` / ``*.jsonl.gz``                              -> ``jsonl``
- ``*.json`` / ``*.json.gz``                                -> ``json``
- ``*.tsv``                                                 -> ``nemo``
- folder of files (or one file) whose first line is ``NBestList1.0``/``2.0``,
  ``(score) ...`` or ``ascore lscore nwords ...``           -> ``srilm``

``opts`` go to the reader: ``words_txt`` (kaldi), ``n`` and ``manifest``
(nemo).  Writers exist for ``jsonl`` (lossless) and ``kaldi``.

Shared policies (every reader): scores must be finite numbers (NaN/inf is an
InputError); every bad-input error is an :class:`InputError` naming the file
and, for line-based files, the line.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import re
from pathlib import Path
from typing import Iterator

from ..errors import InputError
from ..fileio import read_lines
from .model import NBest

FORMATS = ("kaldi", "espnet", "srilm", "json", "nemo", "jsonl")
WRITABLE_FORMATS = ("jsonl", "kaldi")

# format -> (module, reader function); imported on use so that the readers can
# import the helpers below without a circular import.
_READERS = {
    "kaldi": ("kaldi", "read_kaldi"),
    "espnet": ("espnet", "read_espnet"),
    "srilm": ("srilm", "read_srilm"),
    "json": ("jsonfmt", "read_json"),
    "nemo": ("nemo", "read_nemo"),
    "jsonl": ("jsonl", "read_jsonl"),
}

_RECOG_DIR = re.compile(r"^(\d+)best_recog$")


# ---------------------------------------------------------------- helpers --

def parse_score(text: str, path, line: int | None, what: str = "score") -> float:
    """``text`` as a finite float, else ``InputError('path:line: expected ...')``."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"expected a number for the {what}, got {text!r}", path, line) from None
    if not math.isfinite(value):
        raise InputError(f"expected a finite {what}, got {text!r}", path, line)
    return value


def check_number(value, path, line: int | None, what: str = "score") -> float:
    """A JSON value as a finite float (bools and strings are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected a number for the {what}, got {value!r}", path, line)
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"expected a finite {what}, got {value!r}", path, line)
    return value


def iter_json_lines(path) -> Iterator[tuple[int, object]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file."""
    for n, line in read_lines(path):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise InputError(f"expected one JSON object per line ({e.msg})", path, n) from None


def recog_dirs(folder: Path) -> dict[int, Path]:
    """``{K: folder/Kbest_recog}`` for the ESPnet result folders inside ``folder``."""
    found = {}
    for child in folder.iterdir():
        m = _RECOG_DIR.match(child.name)
        if m and child.is_dir():
            found[int(m.group(1))] = child
    return found


# --------------------------------------------------------------- dispatch --

def _first_line(path: Path) -> str:
    for _, line in read_lines(path):
        if line.strip():
            return line.strip()
    return ""


def looks_like_srilm_line(line: str) -> bool:
    """True for an SRILM header, a ``(score) ...`` line or ``ascore lscore nwords ...``."""
    if line.startswith("NBestList") or re.match(r"^\(\S+\)", line):
        return True
    parts = line.split()
    if len(parts) < 3 or not parts[2].isdigit():
        return False
    try:
        float(parts[0]), float(parts[1])
    except ValueError:
        return False
    return True


def detect_format(path) -> str:
    """Guess the N-best format of ``path`` (see the module docstring)."""
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", path)
    if p.is_dir():
        if _RECOG_DIR.match(p.name) or recog_dirs(p):
            return "espnet"
        kaldi_files = ("acwt", "words_text", "words")
        if any((p / f).is_file() for f in kaldi_files) or any(
                (d / "acwt").is_file() for d in p.glob("archives.*")):
            return "kaldi"
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
        if files and looks_like_srilm_line(_first_line(files[0])):
            return "srilm"
        raise InputError("cannot tell the N-best format of this folder (expected <K>best_recog/, "
                         "Kaldi archives or SRILM files); name the format", path)
    name = p.name.lower()
    if name.endswith((".jsonl", ".jsonl.gz")):
        return "jsonl"
    if name.endswith((".json", ".json.gz")):
        return "json"
    if name.endswith((".tsv", ".tsv.gz")):
        return "nemo"
    if looks_like_srilm_line(_first_line(p)):
        return "srilm"
    raise InputError("cannot tell the N-best format of this file; name the format", path)


def read_nbest(path, fmt: str | None = None, **opts) -> NBest:
    """Read an N-best set in format ``fmt`` (one of FORMATS; None: detect)."""
    fmt = fmt or detect_format(path)
    if fmt not in _READERS:
        raise InputError(f"unknown N-best format {fmt!r}; expected one of {', '.join(FORMATS)}")
    module, func = _READERS[fmt]
    reader = getattr(importlib.import_module(f"{__package__}.{module}"), func)
    return reader(os.fspath(path), **opts)


def write_nbest(nbest: NBest, path, fmt: str = "jsonl", **opts) -> None:
    """Write ``nbest`` as ``jsonl`` (a file, lossless) or ``kaldi`` (a folder)."""
    if fmt == "jsonl":
        from .jsonl import write_jsonl
        write_jsonl(nbest, path)
    elif fmt == "kaldi":
        from .kaldi import write_kaldi_nbest
        write_kaldi_nbest(nbest, path, **opts)
    else:
        raise InputError(f"cannot write N-best format {fmt!r}; "
                         f"expected one of {', '.join(WRITABLE_FORMATS)}", path)
