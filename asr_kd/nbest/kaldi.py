"""Kaldi ``nbest-to-linear`` archive folders (steps/rnnlmrescore.sh,
scripts/rnnlm/lmrescore_nbest.sh).

Layout: archives keyed ``<uttid>-<n>`` (n = 1, 2, ... in first-pass order; the
utterance id is everything before the LAST ``-``, so ids may contain dashes):

- ``words_text``: ``key w1 w2 ...`` (or integer ``words`` + a ``words.txt``
  symbol table, found in the folder or given as ``words_txt``); ``key`` alone
  is an empty hypothesis;
- ``acwt``: acoustic cost; ``lmwt.withlm``: graph + LM cost (both required);
- optional ``lmwt.nolm`` (graph cost without the LM), ``lmwt.lmonly`` (LM
  cost) and ``lmwt.<name>`` for any other LM (as written by us or by Kaldi's
  scripts, e.g. ``lmwt.rnn``).

Costs are negated log-likelihoods, so scores are stored negated:
``am = -acwt``, ``lm0 = -lmwt.withlm``, ``graph = -lmwt.nolm``,
``lm0only = -lmwt.lmonly``, ``lm:<name> = -lmwt.<name>``.

A folder holding ``archives.<job>/`` sub-folders (one per parallel job) is read
job by job in job order.  Every archive must hold exactly the keys of the words
archive; a key missing from one archive is an InputError naming that file.

Float archives are read in Kaldi's text ``BaseFloat`` layout (``key 12.5``), in
kaldiio's one-element vector layout (``key [ 12.5 ]``, what
``kaldiio.WriteHelper('ark,t:...')`` writes) and in Kaldi binary form.  We do
not parse text archives with kaldiio itself: for a scalar written without
brackets it returns float32 values and misreads integral costs (``key 7`` comes
back as an int vector ``[-2, 7]``), and its errors carry no line numbers.
kaldiio reads the binary vector layout; binary ``BaseFloat`` (``\\0B\\4`` +
4 bytes), which kaldiio mistakes for an int vector, is decoded here.

Policies: fields are separated by any whitespace (spaces, TABs); CRLF and a
leading BOM are accepted.  A key listed twice in one archive is an InputError
naming both lines; so are two keys giving one utterance the same hypothesis
number (``u-1`` and ``u-01``).  Hypothesis numbers may have gaps (``u-1``,
``u-3``): hypotheses are ordered by number and none is invented.  An
utterance id in two job folders, a word id missing from words.txt and an id
listed twice in words.txt are InputErrors.  Costs must be finite (text and
binary archives alike).  Utterances with no hypotheses (N = 0) cannot be
expressed in these archives and are skipped on writing.
"""
from __future__ import annotations

import io
import math
import os
import re
import struct
from pathlib import Path

from ..errors import InputError
from ..fileio import atomic_write, fsync_dir, open_text, staging_folder
from .io import keyed_lines, one_line, parse_score
from .model import Hyp, NBest, Utterance

# archive file -> score key (sign flipped on reading); other lmwt.<x> -> lm:<x>
_FIXED = {"acwt": "am", "lmwt.withlm": "lm0", "lmwt.nolm": "graph", "lmwt.lmonly": "lm0only"}
_KEY_FILE = {v: k for k, v in _FIXED.items()}


def split_key(key: str, path, line) -> tuple[str, int]:
    """``'utt-a-3'`` -> ``('utt-a', 3)``; n must be a positive (ASCII) integer."""
    utt, dash, n = key.rpartition("-")
    if (not dash or not utt or not (n.isascii() and n.isdigit()) or len(n) > 9
            or int(n) < 1):
        raise InputError(f"expected a key <uttid>-<n> with n >= 1 (at most 9 digits), "
                         f"got {one_line(repr(key))}", path, line)
    return utt, int(n)


def _read_words(path: Path, symtab: dict[str, str] | None) -> dict[str, tuple[str, int]]:
    """``{key: (text, line)}`` from ``words_text`` (or integer ``words`` via ``symtab``)."""
    out: dict[str, tuple[str, int]] = {}
    for n, line in keyed_lines(path):
        parts = line.split()
        if not parts:
            continue
        key, words = parts[0], parts[1:]
        split_key(key, path, n)
        if key in out:
            raise InputError(f"duplicate key {key!r} (first on line {out[key][1]})", path, n)
        if symtab is not None:
            try:
                words = [symtab[w] for w in words]
            except KeyError as e:
                raise InputError(f"expected word ids from words.txt, got {e.args[0]!r}",
                                 path, n) from None
        out[key] = (" ".join(words), n)
    return out


def _read_symtab(path) -> dict[str, str]:
    """words.txt (``word id``) as ``{id: word}``; an id listed twice is an error
    (which word a ``words`` archive meant would be a guess)."""
    table: dict[str, str] = {}
    where: dict[str, int] = {}
    for n, line in keyed_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2 or not (parts[1].isascii() and parts[1].isdigit()):
            raise InputError("expected 'word id'", path, n)
        word, i = parts
        if i in table:
            raise InputError(f"id {i} used twice (first on line {where[i]})", path, n)
        table[i], where[i] = word, n
    return table


def _cost(value: float, key: str, path) -> float:
    """A binary archive's float, which must be finite."""
    if not math.isfinite(value):
        raise InputError(f"expected a finite cost for key {one_line(repr(key))}, got {value}",
                         path)
    return value


def _read_binary_floats(path: Path, data: bytes) -> dict[str, tuple[float, int | None]]:
    out: dict[str, tuple[float, int | None]] = {}
    pos = 0
    if data[data.index(b" ") + 1:data.index(b" ") + 4] not in (b"\0B\x04", b"\0B\x08"):
        import kaldiio  # binary vectors ("\0BFV"): kaldiio reads those correctly
        try:
            items = [(k, v) for k, v in kaldiio.load_ark(io.BytesIO(data))]
        except Exception as e:  # kaldiio raises assorted types on corrupt input
            raise InputError(f"expected a Kaldi archive of floats ({one_line(e)})",
                             path) from None
        for k, v in items:
            if getattr(v, "size", 0) != 1 or not hasattr(v, "reshape"):
                shape = getattr(v, "shape", type(v).__name__)
                raise InputError(f"expected one float per key, got {shape} for "
                                 f"{one_line(repr(k))}", path)
            if k in out:
                raise InputError(f"duplicate key {one_line(repr(k))}", path)
            out[k] = (_cost(float(v.reshape(-1)[0]), k, path), None)
        return out
    while pos < len(data):
        sp = data.find(b" ", pos)
        size = data[sp + 3:sp + 4] if sp >= 0 else b""
        if sp < 0 or data[sp + 1:sp + 3] != b"\0B" or size not in (b"\x04", b"\x08"):
            raise InputError(f"expected a binary float record at byte {pos}", path)
        fmt, width = ("<f", 4) if size == b"\x04" else ("<d", 8)
        key = data[pos:sp].decode("utf-8", "replace")
        if len(data) < sp + 4 + width:
            raise InputError(f"truncated binary record {one_line(repr(key))}", path)
        value = struct.unpack(fmt, data[sp + 4:sp + 4 + width])[0]
        if key in out:
            raise InputError(f"duplicate key {one_line(repr(key))}", path)
        out[key] = (_cost(value, key, path), None)
        pos = sp + 4 + width
    return out


def _read_floats(path: Path) -> dict[str, tuple[float, int | None]]:
    """``{key: (cost, line)}`` from a text or binary float archive."""
    with open_text(path) as f:
        head = f.read(4096)
    sp = head.find(b" ")
    if sp > 0 and head[sp + 1:sp + 3] == b"\0B":
        return _read_binary_floats(path, Path(path).read_bytes())
    out: dict[str, tuple[float, int | None]] = {}
    for n, line in keyed_lines(path):
        parts = line.split()
        if not parts:
            continue
        if len(parts) == 4 and parts[1] == "[" and parts[3] == "]":
            parts = [parts[0], parts[2]]   # kaldiio's one-element vector layout
        if len(parts) != 2:
            raise InputError("expected '<uttid>-<n> <cost>'", path, n)
        if parts[0] in out:
            raise InputError(f"duplicate key {parts[0]!r} (first on line {out[parts[0]][1]})",
                             path, n)
        out[parts[0]] = (parse_score(parts[1], path, n, "cost"), n)
    return out


def _score_files(folder: Path) -> dict[str, Path]:
    """``{score key: archive}`` for acwt and every lmwt.* archive in ``folder``."""
    found = {}
    for f in sorted(folder.iterdir()):
        if f.name in _FIXED:
            found[_FIXED[f.name]] = f
        elif f.name.startswith("lmwt.") and f.is_file():
            found["lm:" + f.name[len("lmwt."):]] = f
    for need in ("acwt", "lmwt.withlm"):
        if _FIXED[need] not in found:
            raise InputError(f"expected a Kaldi archive {need!r} in this folder", folder)
    return found


def _read_job(folder: Path, words_txt) -> list[Utterance]:
    if (folder / "words_text").is_file():
        words = _read_words(folder / "words_text", None)
        words_path = folder / "words_text"
    elif (folder / "words").is_file():
        table = words_txt or (folder / "words.txt")
        if not Path(table).is_file():
            raise InputError("found an integer 'words' archive but no words.txt; "
                             "give the symbol table (words_txt / --words-txt)", folder)
        words_path = folder / "words"
        words = _read_words(words_path, _read_symtab(table))
    else:
        raise InputError("expected a 'words_text' (or 'words') archive in this folder", folder)

    scores: dict[str, dict[str, float]] = {k: {} for k in words}
    for name, path in _score_files(folder).items():
        table = _read_floats(path)
        for key, (cost, n) in table.items():
            if key not in scores:
                raise InputError(f"key {one_line(repr(key))} is not in {words_path.name}",
                                 path, n)
            scores[key][name] = -cost
        if len(table) != len(words):
            missing = next(k for k in words if k not in table)
            raise InputError(f"key {missing!r} (line {words[missing][1]} of "
                             f"{words_path.name}) is missing", path)

    by_utt: dict[str, list[tuple[int, Hyp]]] = {}
    numbers: dict[tuple[str, int], int] = {}
    for key, (text, line) in words.items():
        utt, n = split_key(key, words_path, line)
        if (utt, n) in numbers:    # 'u-1' and 'u-01': two hypotheses claim one rank
            raise InputError(f"key {key!r} repeats hypothesis number {n} of {utt!r} "
                             f"(line {numbers[utt, n]})", words_path, line)
        numbers[utt, n] = line
        by_utt.setdefault(utt, []).append((n, Hyp(text, scores[key])))
    return [Utterance(utt, [h for _, h in sorted(hs, key=lambda x: x[0])])
            for utt, hs in by_utt.items()]


def read_kaldi(path, words_txt=None) -> NBest:
    """Read an nbest-to-linear folder (or a folder of ``archives.<job>/``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InputError("expected a folder of Kaldi archives", path)
    jobs = [folder]
    if not (folder / "acwt").exists():
        subs = [d for d in folder.glob("archives.*") if d.is_dir()]
        if subs:
            jobs = sorted(subs, key=lambda d: [int(t) if t.isdigit() else t
                                               for t in re.split(r"(\d+)", d.name)])
    nbest, seen = NBest(), set()
    for job in jobs:
        for u in _read_job(job, words_txt):
            if u.utt in seen:
                raise InputError(f"utterance {u.utt!r} appears in two job folders", job)
            seen.add(u.utt)
            nbest.utts.append(u)
    return nbest


def _key_of(u: Utterance, folder) -> str:
    if not u.utt or any(c.isspace() for c in u.utt):
        raise InputError(f"utterance id {u.utt!r} cannot be a Kaldi key", folder)
    return u.utt


def _write_costs(nbest: NBest, path, score_key: str) -> None:
    with atomic_write(path) as f:
        for u in nbest:
            for i, h in enumerate(u.hyps, 1):
                if score_key not in h.scores:
                    raise InputError(f"utterance {u.utt!r} hyp {i} has no score {score_key!r}",
                                     path)
                # repr keeps every digit; Kaldi's float reader accepts it
                f.write(f"{_key_of(u, path)}-{i} {-h.scores[score_key]!r}\n")


def write_kaldi_scores(nbest: NBest, folder, name: str) -> Path:
    """Write score ``lm:<name>`` as the cost archive ``folder/lmwt.<name>``.

    The keys are ``<uttid>-<n>``, so the archive lines up with the folder's
    other archives for ``linear-to-nbest``.  Returns the archive path.
    """
    name = name[3:] if name.startswith("lm:") else name
    if not name or "/" in name or any(c.isspace() for c in name):
        raise InputError(f"expected a plain score name, got {name!r}")
    path = Path(folder) / f"lmwt.{name}"
    _write_costs(nbest, path, f"lm:{name}")
    return path


def write_kaldi_nbest(nbest: NBest, folder, words_txt=None) -> None:
    """Write ``words_text``, ``acwt`` and ``lmwt.withlm`` (from ``am``, ``lm0``),
    plus ``lmwt.nolm`` / ``lmwt.lmonly`` / ``lmwt.<name>`` for ``graph`` /
    ``lm0only`` / ``lm:<name>`` where every hypothesis has them.  Other score
    keys have no Kaldi archive and are not written.  With ``words_txt`` the
    integer ``words`` archive is written too (an unknown word is an error).
    """
    folder = Path(folder)
    present = nbest.score_keys()
    if nbest.num_hyps() and not {"am", "lm0"} <= set(present):
        raise InputError("Kaldi archives need scores 'am' and 'lm0' on every hypothesis; "
                         f"this N-best has: {', '.join(present) or 'none'}", folder)
    os.makedirs(folder, exist_ok=True)
    symtab = None
    if words_txt is not None:
        symtab = {w: i for i, w in _read_symtab(words_txt).items()}
    with atomic_write(folder / "words_text") as f:
        for u in nbest:
            for i, h in enumerate(u.hyps, 1):
                f.write(" ".join([f"{_key_of(u, folder)}-{i}"] + h.words) + "\n")
    if symtab is not None:
        with atomic_write(folder / "words") as f:
            for u in nbest:
                for i, h in enumerate(u.hyps, 1):
                    missing = [w for w in h.words if w not in symtab]
                    if missing:
                        raise InputError(f"word {missing[0]!r} of {u.utt!r} is not in words.txt",
                                         words_txt)
                    f.write(" ".join([f"{u.utt}-{i}"] + [symtab[w] for w in h.words]) + "\n")
    for key in ("am", "lm0"):
        _write_costs(nbest, folder / _KEY_FILE[key], key)
    for key in present:
        if key in ("graph", "lm0only"):
            _write_costs(nbest, folder / _KEY_FILE[key], key)
        elif key.startswith("lm:"):
            write_kaldi_scores(nbest, folder, key)


def write_kaldi_folder(nbest: NBest, out: str, name: str) -> None:
    """``rescore --out-format kaldi``: the archives of :func:`write_kaldi_nbest` and
    ``lmwt.<name>`` (:func:`write_kaldi_scores`) written into a new folder beside
    ``out``, then moved in.

    A failed write (disk full) leaves ``out`` as it was; files of ``out`` that
    are not rewritten (e.g. other ``lmwt.*`` of an input folder) are kept.
    """
    out = os.path.abspath(out)
    parent = os.path.dirname(out)
    try:
        with staging_folder(out) as stage:
            write_kaldi_nbest(nbest, stage)
            write_kaldi_scores(nbest, stage, name)
            if not os.path.isdir(out):
                os.replace(stage, out)  # a new folder appears whole
            else:
                for f in sorted(os.listdir(stage)):
                    os.replace(os.path.join(stage, f), os.path.join(out, f))
            fsync_dir(out)
            fsync_dir(parent)
    except OSError as e:
        raise InputError(f"cannot write: {e.strerror or e}", e.filename or out) from None
