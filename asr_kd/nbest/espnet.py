"""ESPnet ``asr_inference`` output: ``1best_recog/ ... <N>best_recog/``.

Each ``<K>best_recog/`` holds the K-th hypothesis of every utterance:

- ``text``:   ``uttid w1 w2 ...`` (``uttid`` alone: empty hypothesis) -- required;
- ``score``:  ``uttid tensor(-46.63)`` (or a plain float) -- required, key ``"score"``;
- ``scores``: ``uttid {"decoder": "tensor(-0.36)", "ctc": ..., "lm": ...}`` --
  optional; each entry becomes its own score key (``"decoder"``, ``"ctc"``, ...),
  values may be ``tensor(...)`` strings or plain numbers.

``path`` may be the folder holding the ``<K>best_recog`` folders (other files
and folders such as ``logdir/`` are ignored) or one ``<K>best_recog`` folder
(its parent is read).  K must run 1..N without gaps.  An utterance may be
missing from higher-K folders (fewer hypotheses), but one present in K-best
must be present in every k < K.  Utterances keep the order of
``1best_recog/text``; hypotheses are ordered by K.  Within a folder, ``score``
and ``scores`` must hold exactly the ids of ``text``.

Policies: ids and fields are whitespace-separated (spaces or TABs); a
duplicate id within a file is an InputError naming both lines; an id in
``score``/``scores`` but not in ``text`` (or the reverse) names the id and the
file.  Every utterance has N >= 1 (it is in ``1best_recog``); N = 0 cannot be
expressed.  A ``scores`` entry repeating a name inside its object is an error.
"""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import InputError
from .io import check_number, keyed_lines, load_json, parse_score, recog_dirs
from .model import Hyp, NBest, Utterance

# "tensor(-46.63)", "tensor(-46.63, device='cuda:0')" or a plain number
_TENSOR = re.compile(r"^tensor\(\s*([^,)\s]+)\s*(?:,[^)]*)?\)$")


def _value(text: str, path, line, what: str) -> float:
    text = text.strip()
    if text.startswith("tensor(") and text.endswith(")") and "," not in text:
        text = text[7:-1]       # the common case, without the regex
    else:
        m = _TENSOR.match(text)
        text = m.group(1) if m else text
    return parse_score(text, path, line, what)


def _id_lines(path: Path):
    """Yield ``(line, uttid, rest)`` with duplicate ids rejected."""
    seen: dict[str, int] = {}
    for n, line in keyed_lines(path):
        parts = line.strip().split(maxsplit=1)
        if not parts:
            continue
        if parts[0] in seen:
            raise InputError(f"duplicate utterance id {parts[0]!r} (first on line "
                             f"{seen[parts[0]]})", path, n)
        seen[parts[0]] = n
        yield n, parts[0], parts[1] if len(parts) > 1 else ""


def _read_scores(path: Path, rest: str, n: int) -> dict[str, float]:
    obj = load_json(rest, path, n, 'uttid {"name": score, ...}')
    if not isinstance(obj, dict):
        raise InputError('expected "uttid {"name": score, ...}"', path, n)
    out = {}
    for k, v in obj.items():
        if k == "score":
            raise InputError("a 'scores' entry may not be named 'score'", path, n)
        out[k] = (_value(v, path, n, f"score {k!r}") if isinstance(v, str)
                  else check_number(v, path, n, f"score {k!r}"))
    return out


def _read_k(folder: Path) -> tuple[dict[str, tuple[Hyp, int]], Path]:
    """``{uttid: (hyp, line in text)}`` for one ``<K>best_recog`` folder."""
    text_path = folder / "text"
    hyps = {u: (Hyp(" ".join(rest.split()), {}), n) for n, u, rest in _id_lines(text_path)}
    for name in ("score", "scores"):
        path = folder / name
        if not path.is_file():
            if name == "score":
                raise InputError("expected a 'score' file beside 'text'", folder)
            continue
        seen = set()
        for n, u, rest in _id_lines(path):
            if u not in hyps:
                raise InputError(f"utterance {u!r} is not in {text_path}", path, n)
            if name == "score":
                hyps[u][0].scores["score"] = _value(rest, path, n, "score")
            else:
                hyps[u][0].scores.update(_read_scores(path, rest, n))
            seen.add(u)
        if len(seen) != len(hyps):
            missing = next(u for u in hyps if u not in seen)
            raise InputError(f"utterance {missing!r} of {text_path} is missing", path)
    return hyps, text_path


def read_espnet(path) -> NBest:
    """Read ESPnet N-best folders into an :class:`NBest` (see module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise InputError("expected an ESPnet decoding folder with <K>best_recog/ folders", path)
    if re.match(r"^\d+best_recog$", root.name) and not recog_dirs(root):
        root = root.parent
    dirs = recog_dirs(root)
    if not dirs:
        raise InputError("expected <K>best_recog/ folders (1best_recog, 2best_recog, ...)", root)
    kmax = max(dirs)
    for k in range(1, kmax + 1):
        if k not in dirs:
            raise InputError(f"expected folder {k}best_recog (found up to {kmax}best_recog)", root)

    from ..progress import progress

    bar = progress(total=kmax, desc=f"read {root}", unit="folder")
    first, _ = _read_k(dirs[1])
    bar.update(1)
    utts = {u: Utterance(u, [h]) for u, (h, _) in first.items()}
    prev = utts.keys()
    for k in range(2, kmax + 1):
        bar.update(1)
        hyps, text_path = _read_k(dirs[k])
        present = set()
        for u, (h, n) in hyps.items():
            if u not in prev:
                raise InputError(f"utterance {u!r} is in {k}best_recog but not in "
                                 f"{k - 1}best_recog", text_path, n)
            utts[u].hyps.append(h)
            present.add(u)
        prev = present
    bar.close()
    return NBest(list(utts.values()))
