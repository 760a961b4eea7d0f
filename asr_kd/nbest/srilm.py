"""SRILM N-best lists, the three formats of ``nbest-format(5)``.

One file per utterance (optionally ``.gz``).  ``path`` is a folder (every
regular, non-hidden file, in name order; in the order of its ``nbest-files``
list when it has one, as :func:`write_srilm` leaves), a list file (SRILM's
``-nbest-files``: one N-best file path per line, relative paths resolved against
the list's folder; utterances in its order) or a single N-best file.  The utterance id is the file name minus ``.gz`` and then minus one of
``.nbest``, ``.score``, ``.txt`` if present (``sw_4390-A_0012.nbest.gz`` ->
``sw_4390-A_0012``).

Formats, converted to natural log (larger is better):

- ``NBestList1.0`` header, then ``(score) w1 w2 ...``: ``score`` is a bytelog
  (log base 1.0001 divided by 1024); ln p = bytelog * 1024 / 10000.5, SRILM's
  own BytelogToLogP constant.  Key ``"score"``.  Headerless lines that start
  with ``(`` are read the same way, as SRILM does.
- ``NBestList2.0`` header, then ``(score) w1 ( st: s et: e g: lm a: ac ) w2 ( ... )``:
  ``score`` as above; ``am`` = sum of the words' ``a:``, ``lm0`` = sum of ``g:``
  (bytelogs).  (``am`` and ``lm0`` here and below are the default key names;
  ``read_srilm(am=..., lm=...)`` stores the two columns under others.)  Phone / HMM-state tokens, recognised like SRILM does by a start
  time not after the previous word's end time, are skipped.
- headerless ``ascore lscore nwords w1 w2 ...`` in log base 10: ``am`` and
  ``lm0``, and ``nwords`` kept as a score of that name (a plain count, not a
  log score).  ``nwords`` must be a non-negative integer but may differ from
  the number of tokens (SRILM multiplies it by ``-rescore-wtw``, the word
  transition weight; asr_kd's ``wip`` multiplies the number of words in the
  text instead, so tune ``nwords`` as a score to reproduce SRILM exactly).

Extra score folders (``scores={"NAME": DIR}``; nbest-optimize's ``scoredir``
arguments, rescore-reweight's ``score-dir1 score-weight1``): in each folder one
file per utterance, named by the utterance id (optionally ``.gz``), holding one
log10 score per line in hypothesis order; it becomes score ``NAME`` (times
ln 10, like the log10 columns, so a weight means the same in SRILM and here).
A missing file, a line that is not one number, a name already used by another
score, or a count of scores that differs from the number of hypotheses is an
InputError naming the score file (and the N-best file).

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
import shutil
from pathlib import Path

from ..errors import InputError
from ..fileio import read_lines
from .io import SRILM_LIST, looks_like_srilm_line, parse_score
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


def _parse_v2(tokens: list[str], path, n, am: str = "am", lm_key: str = "lm0") -> Hyp:
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
        am: _converted(ac * BYTELOG_TO_LN, path, n, "sum of the a: scores"),
        lm_key: _converted(lm * BYTELOG_TO_LN, path, n, "sum of the g: scores")})


def _parse_v3(tokens: list[str], path, n, am_key: str = "am", lm_key: str = "lm0") -> Hyp:
    if len(tokens) < 3:
        raise InputError("expected 'ascore lscore nwords w1 w2 ...'", path, n)
    am = _converted(parse_score(tokens[0], path, n, "acoustic score") * LOG10_TO_LN,
                    path, n, "acoustic score")
    lm = _converted(parse_score(tokens[1], path, n, "LM score") * LOG10_TO_LN,
                    path, n, "LM score")
    if not (tokens[2].isascii() and tokens[2].isdigit()):
        raise InputError(f"expected the word count (an integer), got {tokens[2]!r}", path, n)
    if len(tokens[2].lstrip("0")) > 9:      # SRILM reads it as a 32-bit unsigned int
        raise InputError(f"word count {tokens[2][:20]}... is too large (over 9 digits)", path, n)
    return Hyp(_text(tokens[3:]), {am_key: am, lm_key: lm, "nwords": float(int(tokens[2]))})


def read_srilm_file(path, utt: str | None = None, am: str = "am", lm: str = "lm0") -> Utterance:
    """One SRILM N-best file as an :class:`Utterance` (id from the name by default);
    the acoustic and LM columns become scores ``am`` and ``lm``."""
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
            hyps.append(_parse_v2(tokens, path, n, am, lm))
        elif version == 1 or tokens[0].startswith("("):
            hyps.append(Hyp(_text(tokens[1:]), {"score": _bytelog(tokens[0], path, n)}))
        else:
            hyps.append(_parse_v3(tokens, path, n, am, lm))
    return Utterance(utt if utt is not None else utt_id_from_name(Path(path).name), hyps)


def _list_files(path: Path) -> list[tuple[Path, str, int | None]]:
    """``[(file, where it was named, line)]`` for a folder or a list file."""
    if path.is_dir():
        files = [f for f in sorted(path.iterdir())
                 if f.is_file() and not f.name.startswith(".") and f.name != SRILM_LIST]
        if (path / SRILM_LIST).is_file():
            return _in_list_order(path, files)
        return [(f, os.fspath(path), None) for f in files]
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


def _in_list_order(folder: Path, files: list[Path]) -> list[tuple[Path, str, int | None]]:
    """``files`` of ``folder`` in the order of its ``nbest-files`` list (matched by file
    name, so a moved folder still reads); the list and the folder must agree."""
    lst = folder / SRILM_LIST
    by_name = {f.name: f for f in files}
    out, listed = [], set()
    for n, line in read_lines(lst):
        if not line.strip():
            continue
        name = Path(line.strip()).name
        if name not in by_name or name in listed:
            why = "is listed twice" if name in listed else "is not in the folder"
            raise InputError(f"N-best file {_short(name)!r} {why}; remove {SRILM_LIST} to read "
                             "the folder in file-name order", lst, n)
        listed.add(name)
        out.append((by_name[name], os.fspath(lst), n))
    extra = [f.name for f in files if f.name not in listed]
    if extra:
        raise InputError(f"{len(extra)} N-best files of the folder are not listed (first: "
                         f"{extra[0]}); remove {SRILM_LIST} to read the folder in file-name "
                         "order", lst)
    return out


def _is_file(f: Path) -> bool:
    """``f.is_file()``, False for names the OS cannot even look up (NUL, too long)."""
    try:
        return f.is_file()
    except (OSError, ValueError):
        return False


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def read_srilm(path, scores: dict[str, str] | None = None, am: str = "am",
               lm: str = "lm0") -> NBest:
    """Read SRILM N-best files (a folder, a list file or one file), with the extra
    score folders ``scores`` (``{name: folder}``) merged by utterance and position.
    ``am`` and ``lm``: the score names of the acoustic and LM columns (NBestList2.0's
    ``a:``/``g:`` sums, the headerless format's first two fields)."""
    check_column_keys(am, lm)
    p = Path(path)
    if not p.exists():
        raise InputError("no such file or folder", path)
    for name, folder in (scores or {}).items():
        if not Path(folder).is_dir():
            raise InputError(f"score folder for {name!r}: no such folder", folder)
    nbest, seen = NBest(), {}
    for f, where, n in _list_files(p):
        u = read_srilm_file(f, am=am, lm=lm)
        if u.utt in seen:
            raise InputError(f"utterance id {u.utt!r} of {f.name} repeats that of "
                             f"{seen[u.utt].name}", where, n)
        seen[u.utt] = f
        for name, folder in (scores or {}).items():
            _merge_scores(u, f, name, Path(folder))
        nbest.utts.append(u)
    return nbest


def check_column_keys(am: str, lm: str) -> None:
    """InputError unless ``am`` and ``lm`` can name SRILM's two columns: distinct, not
    empty, and not ``score`` or ``nwords`` (the lists' other scores)."""
    for opt, key in (("--srilm-am", am), ("--srilm-lm", lm)):
        if not key or key != key.strip() or key in ("score", WT, "wip"):
            raise InputError(f"{opt} {key!r}: expected a score name other than score, "
                             f"{WT} and wip")
    if am == lm:
        raise InputError(f"--srilm-am and --srilm-lm are both {am!r}: the acoustic and LM "
                         "columns need two names")


def _score_file(folder: Path, utt: str, nbest_file: Path) -> Path:
    found = [f for f in (folder / utt, folder / (utt + ".gz")) if _is_file(f)]
    if not found:
        raise InputError(f"no score file {utt!r} (or {utt}.gz) for {nbest_file}", folder)
    if len(found) > 1:
        raise InputError(f"both {found[0].name} and {found[1].name} give scores for {utt!r}",
                         folder)
    return found[0]


def _merge_scores(u: Utterance, nbest_file: Path, name: str, folder: Path) -> None:
    """Add score ``name`` to every hypothesis of ``u`` from its file in ``folder``."""
    sf = _score_file(folder, u.utt, nbest_file)
    values = []
    for n, line in read_lines(sf):
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) > 1:
            raise InputError(f"expected one score per line, got {len(tokens)} fields", sf, n)
        values.append((parse_score(tokens[0], sf, n, f"score {name!r}"), n))
    if len(values) != len(u.hyps):
        raise InputError(f"{len(values)} scores but {nbest_file} has {len(u.hyps)} hypotheses",
                         sf)
    for h, (v, n) in zip(u.hyps, values):
        if name in h.scores:
            raise InputError(f"score name {name!r} is already used by {nbest_file}; "
                             "give the folder another name", sf)
        h.scores[name] = _converted(v * LOG10_TO_LN, sf, n, f"score {name!r}")


# ----------------------------------------------------------------- writer --

VERSIONS = ("1", "2", "3")    # NBestList1.0, NBestList2.0, headerless log10 (format 3)


def _to_bytelog(value: float) -> int:
    """A natural-log score as SRILM's integer bytelog (rounded; 0.1024 nat a step)."""
    return int(round(value / BYTELOG_TO_LN))


def _log10(value: float) -> str:
    return repr(value / LOG10_TO_LN)


def _safe_name(name: str, what: str, folder) -> str:
    if not name or name.startswith(".") or "/" in name or "\0" in name or name != name.strip():
        raise InputError(f"{what} {name!r} cannot be a file name (empty, leading '.', '/' "
                         "or surrounding spaces)", folder)
    return name


# Public: other writers of SRILM's one-file-per-utterance layout (meshes) name files so too.
safe_name = _safe_name


def _consumed(keys: list[str], version: str, am: str, lm: str, folder) -> set[str]:
    """The score keys a version writes into the N-best lines themselves (version 1
    without a ``score`` writes am + lm as its total and keeps both in folders)."""
    if version == "1" and "score" in keys:
        return {"score"}
    missing = [k for k in (am, lm) if k not in keys]
    if missing:
        raise InputError(f"NBestList{'1.0' if version == '1' else '2.0' if version == '2' else ''}"
                         f"{' (headerless)' if version == '3' else ''} needs scores {am!r} and "
                         f"{lm!r} on every hypothesis (or 'score' for version 1); this N-best "
                         f"has: {', '.join(keys) or 'none'}", folder)
    return (set() if version == "1" else {am, lm, "score"} if version == "2"
            else {am, lm, "nwords"})


def _hyp_line(h: Hyp, version: str, am: str, lm: str) -> str:
    s = h.scores
    if version == "1":
        total = s["score"] if "score" in s else s[am] + s[lm]
        return " ".join([f"({_to_bytelog(total)})"] + h.words)
    if version == "2":
        a, g = _to_bytelog(s[am]), _to_bytelog(s[lm])
        total = _to_bytelog(s["score"]) if "score" in s else a + g
        parts = [f"({total})"]
        # word scores sum to the totals: all on word 1; an empty hypothesis carries them
        # on a sentence end, which readers (SRILM's and ours) count but do not score as a word
        words = h.words or (["</s>"] if a or g else [])
        for i, w in enumerate(words):
            parts.append(f"{w} ( st: {i} et: {i}.5 g: {g if i == 0 else 0} "
                         f"a: {a if i == 0 else 0} )")
        return " ".join(parts)
    nw = s.get("nwords")
    nwords = int(nw) if nw is not None and nw >= 0 and nw == int(nw) else len(h.words)
    return " ".join([_log10(s[am]), _log10(s[lm]), str(nwords)] + h.words)


def written_score_names(nbest: NBest, version: str, am: str = "am", lm: str = "lm0",
                        folder=None) -> list[str]:
    """The scores :func:`write_srilm` puts in extra score folders (InputError if the
    version's own scores are missing)."""
    if not nbest.num_hyps():
        return []
    keys = nbest.score_keys()
    used = _consumed(keys, version, am, lm, folder)
    return [_safe_name(k, "score name", folder) for k in keys if k not in used]


def write_srilm(nbest: NBest, folder, version: str = "3", am: str = "am",
                lm: str = "lm0") -> list[str]:
    """Write one SRILM N-best file per utterance, ``folder/<utt>.nbest``.

    ``version``: ``"1"`` (NBestList1.0: ``(bytelog total)``, the ``score`` key,
    else ``am`` + ``lm``, both also kept in score folders), ``"2"`` (NBestList2.0:
    per-word ``a:``/``g:`` bytelogs that sum to ``am`` / ``lm``, all on the first
    word, times ``st: i et: i.5`` as placeholders since no times are kept; an
    empty hypothesis carries non-zero ones on a ``</s>`` token) or ``"3"``
    (headerless ``am lm nwords words`` in log10, full precision; ``nwords`` from the
    score of that name, else the word count).
    Bytelogs are integers: a natural-log score moves by at most 0.0512 there.
    Every other score present on every hypothesis goes to an extra score folder
    ``folder/<name>/<utt>`` (log10, one per line), read back with
    ``read_srilm(folder, scores={name: folder/name})``; scores on only some
    hypotheses are not written.  Returns the extra score names written.
    ``folder/nbest-files`` lists the N-best files' absolute paths in utterance order
    (SRILM's ``-nbest-files`` argument); reading the folder (or that list) back keeps
    the utterance order.
    Everything is checked before anything is written.  The folder is written
    whole or not at all: the files are made in a staging folder beside it, which
    then takes its place in one step (:func:`~asr_kd.fileio.replace_folder`;
    a killed writer's staging folder is removed by the next write), so the time
    is linear in the number of files.  An existing ``folder`` may hold only an
    earlier write's lists and score folders of these utterances (it is replaced
    whole); a second writer of the same folder is refused while one runs
    (:func:`~asr_kd.fileio.output_lock`).
    """
    from ..fileio import new_temp_dir, output_lock, replace_folder, sync_folder_files

    if version not in VERSIONS:
        raise InputError(f"SRILM N-best version {version!r}: expected one of "
                         f"{', '.join(VERSIONS)}")
    folder = Path(folder)
    extras = written_score_names(nbest, version, am, lm, folder)
    names = [_safe_name(u.utt, "utterance id", folder) + ".nbest" for u in nbest]
    clash = set(names) & set(extras) | {SRILM_LIST} & set(extras)
    if clash:
        raise InputError(f"score name {sorted(clash)[0]!r} is also the name of an N-best file or "
                         f"of the {SRILM_LIST} list", folder)
    header = {"1": "NBestList1.0\n", "2": "NBestList2.0\n", "3": ""}[version]
    texts = [header + "".join(_hyp_line(h, version, am, lm) + "\n" for h in u.hyps)
             for u in nbest]
    with output_lock(folder, "SRILM folder"):
        _check_replaceable(folder, names, {u.utt for u in nbest})
        stage = new_temp_dir(folder)
        try:
            written = []
            for k in extras:
                os.mkdir(os.path.join(stage, k))
            for u, name, text in zip(nbest, names, texts):
                written.append(_write_new(os.path.join(stage, name), text))
                for k in extras:
                    written.append(_write_new(os.path.join(stage, k, u.utt),
                                              "".join(_log10(h.scores[k]) + "\n"
                                                      for h in u.hyps)))
            written.append(_write_new(os.path.join(stage, SRILM_LIST),
                                      "".join(os.path.abspath(folder / name) + "\n"
                                              for name in names)))
            sync_folder_files(stage, written)
            replace_folder(stage, folder)
        except OSError as e:
            where = e.filename if isinstance(e.filename, str) else str(folder)
            if where.startswith(stage):
                where = str(folder) + where[len(stage):]
            raise InputError(f"cannot write: {e.strerror or e}", where) from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)
    return extras


def _write_new(path: str, text: str) -> str:
    """Write ``text`` to the new file ``path`` of a staging folder (no temporary name
    of its own: the folder is what appears whole); returns ``path``."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    return path


def _check_replaceable(folder: Path, names: list[str], utts: set[str]) -> None:
    """Refuse an existing ``folder`` that holds more than an earlier write of these
    utterances (lists ``names``, score folders of files named by ``utts``): it is
    replaced whole, and anything else in it would be lost, or read as a list."""
    if not folder.is_dir():
        return
    ours = set(names) | {SRILM_LIST}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith(".tmp-"):
            continue  # a killed writer's leftover temporary
        if entry.is_file(follow_symlinks=False):
            if entry.name in ours:
                continue
            raise InputError(f"folder holds other files ({entry.name} ...) that would be read "
                             "as N-best lists; use an empty folder", folder)
        if entry.is_dir(follow_symlinks=False) and not entry.name.startswith("."):
            inner = [e for e in os.scandir(entry.path)]
            if all(e.is_file(follow_symlinks=False) and
                   (e.name[:-3] if e.name.endswith(".gz") else e.name) in utts for e in inner):
                continue  # a score folder of these utterances
            raise InputError(f"folder holds {entry.name}/, not a score folder of these "
                             "utterances; the folder is replaced whole: use an empty folder",
                             folder)
        raise InputError(f"folder holds {entry.name}, which is not an earlier SRILM output; "
                         "the folder is replaced whole: use an empty folder", folder)


def reader_options(pairs: list[str] | None, am: str | None, lm: str | None,
                   fmt: str | None, path: str, keys_used: bool = False) -> dict:
    """Reader options for :func:`read_srilm` from ``--srilm-scores NAME=DIR`` strings
    (``pairs``) and the column keys ``am`` / ``lm`` (None: not given), for the N-best
    input ``path`` in format ``fmt`` (None: detect).  InputError unless the input is
    srilm, except that the keys may be given for other input when ``keys_used``
    (they also name the columns of ``--print-srilm`` and of convert-nbest ``--to
    srilm``); a pair that is not ``NAME=DIR`` or a name given twice is an InputError."""
    if not pairs and am is None and lm is None:
        return {}
    from .io import detect_format
    if (fmt or detect_format(path)) != "srilm":
        if pairs:
            raise InputError("--srilm-scores applies to srilm input only", path)
        if not keys_used:
            raise InputError("--srilm-am / --srilm-lm apply to srilm input, --print-srilm "
                             "and convert-nbest --to srilm only", path)
        return {}
    keys = {k: v for k, v in (("am", am), ("lm", lm)) if v is not None}
    if not pairs:
        return keys
    scores = {}
    for s in pairs:
        name, eq, folder = s.partition("=")
        if not eq or not name or not folder:
            raise InputError(f"--srilm-scores {s!r}: expected NAME=DIR")
        if name in scores:
            raise InputError(f"--srilm-scores: score name {name!r} given twice")
        scores[name] = folder
    return {"scores": scores, **keys}


# ---------------------------------------------------------------- weights --

WT = "nwords"   # SRILM's word-count dimension (wtw); asr_kd's wip maps here too


def srilm_weights(weights: dict[str, float], am: str | None = None,
                  lm: str | None = None, posterior_scale: float | None = None) -> dict:
    """``weights`` (asr_kd: natural-log scores, ``wip`` per word) in SRILM's form.

    SRILM adds log10 scores: every log score here is ln 10 times SRILM's, so a
    score's weight is the same number, and the word-count weight (``wip`` or a
    weight on the ``nwords`` score, which are plain counts) is divided by ln 10.
    Order as nbest-optimize prints its lambdas: acoustic (``am``; when there is no
    ``am`` but an ``lm0``, the list's acoustic column with weight 0; else the
    first key), LM (``lm``: ``lm0`` if weighted, else the next key), word count,
    then the remaining keys as extra score folders in the order given.  ``normed``
    divides by the first non-zero weight (nbest-optimize's ``normed =`` line);
    ``rescore_lmw`` / ``rescore_wtw`` divide by the acoustic weight (None when it
    is 0), for ``-rescore-lmw`` / ``-rescore-wtw`` and rescore-reweight.

    ``posterior_scale`` (consensus weights, S > 0): posteriors are
    softmax(total / S), so nbest-optimize's lambdas (its ``weights =`` line, the
    log10 weights of the posteriors) are the weights divided by S and its
    ``scale`` (nbest-lattice's ``-posterior-scale`` for the normed weights) is S
    divided by the first non-zero weight; ``posterior_scale`` in the result is
    S / the acoustic weight, for ``nbest-lattice -rescore-lmw ... -posterior-scale``.
    Without it (1-best) any common scale picks the same, and ``scale`` is
    1 / the first non-zero weight.
    """
    if "wip" in weights and WT in weights:
        raise InputError("weights 'wip' and 'nwords' both set: SRILM has one word-count "
                         "weight (-rescore-wtw)")
    keys = [k for k in weights if k not in ("wip", WT)]
    if am is None:
        am = "am" if "am" in weights or "lm0" in weights else (keys[0] if keys else "am")
    rest = [k for k in keys if k != am]
    if lm is None:
        lm = "lm0" if "lm0" in weights and am != "lm0" else (rest[0] if rest else "lm0")
    extra = [k for k in rest if k != lm]
    wt = weights.get("wip", weights.get(WT, 0.0)) / LOG10_TO_LN
    lam = [weights.get(am, 0.0), weights.get(lm, 0.0), wt] + [weights[k] for k in extra]
    norm = next((x for x in lam if x != 0.0), 0.0)
    a = lam[0]
    s = posterior_scale if posterior_scale else None   # 0: the 1-best choice
    out = {"order": [am, lm, WT] + extra, "weights": [x / s for x in lam] if s else lam,
           "normed": [x / norm for x in lam] if norm else None,
           "scale": (s if s else 1.0) / norm if norm else None,
           "rescore_lmw": lam[1] / a if a else None, "rescore_wtw": wt / a if a else None,
           "score_dirs": [[k, weights[k] / a if a else weights[k]] for k in extra]}
    if s:
        out["posterior_scale"] = s / a if a else None
    return out


def rover_control(weights: dict[str, float], scale: float, nbest_dir, score_dirs: dict,
                  am: str | None = None, lm: str | None = None, max_nbest: int = 0) -> str:
    """An ``nbest-rover`` control file for consensus ``weights`` and posterior ``scale``,
    as ``nbest-optimize -write-rover-control`` writes it: one ``DIR<TAB>WEIGHT +`` line
    per extra score folder, then ``NBEST_DIR<TAB>lmw wtw 1.0 max_nbest scale``.

    nbest-rover weights the acoustic score by 1, so every weight and the scale are
    divided by the acoustic weight (posteriors ``10^(total / scale)`` equal asr_kd's
    ``exp(total / S)``; see :func:`srilm_weights` for the units).  ``score_dirs``:
    key -> the folder holding that score (``--srilm-scores``).  InputError when the
    acoustic weight is 0 or a weighted key has no folder.
    """
    s = srilm_weights(weights, am, lm)
    a = s["weights"][0]
    if not a:
        raise InputError(f"an nbest-rover control file needs a non-zero weight on the "
                         f"acoustic score {s['order'][0]!r} (rover weights it by 1)")
    missing = [k for k, w in s["score_dirs"] if w and k not in score_dirs]
    if missing:
        raise InputError(f"no SRILM score folder for {', '.join(missing)}: read the list with "
                         f"--srilm-scores {missing[0]}=DIR (convert-nbest --to srilm writes "
                         f"OUT/{missing[0]}), or give it weight 0")
    g = lambda x: f"{x:.10g}"  # noqa: E731
    lines = [f"{os.path.abspath(score_dirs[k])}\t{g(w)} +" for k, w in s["score_dirs"]
             if k in score_dirs]
    lines.append(f"{os.path.abspath(nbest_dir)}\t{g(s['rescore_lmw'])} {g(s['rescore_wtw'])} "
                 f"1.0 {int(max_nbest)} {g(scale / a)}")
    return "\n".join(lines) + "\n"


def write_rover_control(path: str, weights: dict[str, float], scale: float, nbest_dir,
                        score_dirs: dict, am: str | None = None, lm: str | None = None) -> None:
    """``score --write-rover-control FILE``: :func:`rover_control`, written atomically."""
    from ..fileio import atomic_write

    text = rover_control(weights, scale, nbest_dir, score_dirs, am, lm)
    with atomic_write(path) as f:
        f.write(text)


def format_srilm_weights(s: dict) -> list[str]:
    """The lines ``asr-kd score/tune --print-srilm`` prints for :func:`srilm_weights`."""
    g = lambda x: f"{x:.6g}"  # noqa: E731  (nbest-optimize prints 6 significant digits)
    lines = [f"SRILM weights (log10 scores; nbest-optimize order: {' '.join(s['order'])}):",
             "   weights = " + " ".join(map(g, s["weights"]))]
    if s["normed"] is not None:
        lines += ["   normed = " + " ".join(map(g, s["normed"])), f"   scale = {g(s['scale'])}"]
    if s["rescore_lmw"] is None:
        lines.append(f"   no -rescore-lmw form: the weight of {s['order'][0]!r} is 0")
    else:
        lines.append(f"   -rescore-lmw {g(s['rescore_lmw'])} -rescore-wtw {g(s['rescore_wtw'])}")
        dirs = "".join(f" SCORE_DIR[{k}] {g(w)}" for k, w in s["score_dirs"])
        lines.append(f"   rescore-reweight NBEST_DIR {g(s['rescore_lmw'])} "
                     f"{g(s['rescore_wtw'])}{dirs}")
        if s.get("posterior_scale") is not None:
            lines.append(f"   nbest-lattice -use-mesh -rescore-lmw {g(s['rescore_lmw'])} "
                         f"-rescore-wtw {g(s['rescore_wtw'])} -posterior-scale "
                         f"{g(s['posterior_scale'])}"
                         + ("  (score folders: add them with rescore-reweight first)"
                            if s["score_dirs"] else ""))
    return lines
