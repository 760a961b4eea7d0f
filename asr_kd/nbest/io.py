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
(nemo), ``scores`` (srilm extra score folders).  Writers exist for ``jsonl``
(lossless), ``kaldi`` and ``srilm`` (a folder; ``version``, ``am``, ``lm``).

Shared policies (every reader):

- every bad-input error is an :class:`InputError` whose message is one line
  naming the file and, for line-based files, the line; no other exception
  escapes a reader, whatever the bytes (checked by tests/reliability);
- scores are natural logs, larger is better, in every format once read
  (readers convert costs and other log bases); they must be finite numbers:
  ``nan``, ``inf``, ``1e999`` (overflows to inf) and JSON integers too large
  for a float are InputErrors;
- text is UTF-8; a leading BOM is dropped and CRLF line ends are accepted
  (``fileio.read_lines``); a BOM starting a later line of an id-first file
  (Kaldi archives and text, ESPnet files, references) is an InputError naming
  the line (see :func:`keyed_lines`); elsewhere U+FEFF is an ordinary
  character;
- utterance ids are unique within a file: a repeat is an InputError naming
  the repeat's line and the first one's;
- empty hypotheses are valid (empty text); an utterance with no hypotheses
  (N = 0) is kept where the format can express it (srilm, json, jsonl);
- JSON documents nested more than a few hundred levels deep are refused as
  malformed (Python's parser would overflow its stack).
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
from ..fileio import DuplicateKey, read_lines, require_regular, unique_keys  # noqa: F401
from .model import NBest

FORMATS = ("kaldi", "espnet", "srilm", "json", "nemo", "jsonl")
WRITABLE_FORMATS = ("jsonl", "kaldi", "srilm")

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
# The -nbest-files list that `convert-nbest --to srilm` writes into its folder: the
# lists' paths in utterance order (asr_kd.nbest.srilm); not an N-best list itself.
SRILM_LIST = "nbest-files"


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


def one_line(text, limit: int = 200) -> str:
    """``text`` (e.g. a third-party error message) squeezed onto one short line."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def check_number(value, path, line: int | None, what: str = "score") -> float:
    """A JSON value as a finite float (bools and strings are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"expected a number for the {what}, got {one_line(repr(value))}",
                         path, line)
    try:
        value = float(value)
    except OverflowError:       # a JSON integer beyond float range
        raise InputError(f"expected a finite {what}, got an integer of "
                         f"{len(str(abs(value)))} digits", path, line) from None
    if not math.isfinite(value):
        raise InputError(f"expected a finite {what}, got {value!r}", path, line)
    return value


def load_json(text: str, path, line: int | None, what: str):
    """``json.loads(text)`` with every failure as an InputError ``expected {what} (...)``.

    Besides malformed JSON this covers a repeated object key, an integer longer
    than Python converts (4300 digits) and nesting deep enough to overflow the
    parser's recursion.  ``line`` is the line ``text`` starts on (None: the
    error's own line within ``text`` is used).
    """
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as e:
        at = e.lineno if line is None else line
        raise InputError(f"expected {what} ({e.msg}, column {e.colno})", path, at) from None
    except DuplicateKey as e:
        raise InputError(f"expected {what} (duplicate key {one_line(repr(e.args[0]), 80)} "
                         "in one object)", path, line) from None
    except RecursionError:
        raise InputError(f"expected {what} (nested too deeply)", path, line) from None
    except ValueError as e:     # int longer than sys.get_int_max_str_digits()
        raise InputError(f"expected {what} ({one_line(e, 80)})", path, line) from None


BOM_LINE = ("line starts with a byte-order mark (U+FEFF), as left by concatenating "
            "files that had one; remove it")


def keyed_lines(path) -> Iterator[tuple[int, str]]:
    """``read_lines`` for files whose lines start with an id or key.

    A BOM that starts a later line (``cat a b`` where ``b`` had one) would
    silently become part of that id, which then matches nothing; it is an
    InputError naming the line instead.
    """
    for n, line in read_lines(path):
        if line.lstrip().startswith("\ufeff"):
            raise InputError(BOM_LINE, path, n)
        yield n, line


def iter_json_lines(path) -> Iterator[tuple[int, object]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file."""
    for n, line in read_lines(path):
        if line.strip():
            yield n, load_json(line, path, n, "one JSON object per line")


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
    if len(parts) < 3 or not (parts[2].isascii() and parts[2].isdigit()):
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
        files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                       and f.name != SRILM_LIST)
        # the first file with a line decides (an utterance with N = 0 is an empty file)
        first = next((line for line in map(_first_line, files[:100]) if line), "")
        if looks_like_srilm_line(first):
            return "srilm"
        raise InputError("cannot tell the N-best format of this folder (expected <K>best_recog/, "
                         "Kaldi archives or SRILM files); name the format", path)
    name = p.name.lower()
    if p.name == SRILM_LIST:
        return "srilm"
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
    """Read an N-best set in format ``fmt`` (one of FORMATS; None: detect).  ``path``
    must be a regular file or a folder (a FIFO or device is an InputError)."""
    # format detection and some readers read a file twice: a FIFO would block forever
    require_regular(path, folder_ok=True,
                    why=": N-best input is read more than once; write it to a file first")
    fmt = fmt or detect_format(path)
    if fmt not in _READERS:
        raise InputError(f"unknown N-best format {fmt!r}; expected one of {', '.join(FORMATS)}")
    module, func = _READERS[fmt]
    reader = getattr(importlib.import_module(f"{__package__}.{module}"), func)
    return reader(os.fspath(path), **opts)


def write_nbest(nbest: NBest, path, fmt: str = "jsonl", **opts) -> None:
    """Write ``nbest`` as ``jsonl`` (a file, lossless), ``kaldi`` or ``srilm`` (folders)."""
    if fmt == "jsonl":
        from .jsonl import write_jsonl
        write_jsonl(nbest, path)
    elif fmt == "kaldi":
        from .kaldi import write_kaldi_nbest
        write_kaldi_nbest(nbest, path, **opts)
    elif fmt == "srilm":
        from .srilm import write_srilm
        write_srilm(nbest, path, **opts)
    else:
        raise InputError(f"cannot write N-best format {fmt!r}; "
                         f"expected one of {', '.join(WRITABLE_FORMATS)}", path)
