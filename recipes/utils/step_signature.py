#!/usr/bin/env python3
"""What a recipe step was made from, so run.sh can tell a finished step from a stale one.

    step_signature.py sign WORD...        print the signature of a command line
    step_signature.py diff OLD NEW        one line naming what differs (options, inputs)

The signature has one ``arg`` line per word of the command from ``asr-kd`` on (the
job runner and its log before it are not part of what the step means), minus
options that do not change the result (``--resume``, ``--quiet``, ``--threads N``),
then one ``in`` line per input it names (a word that is a path, the value of
``--name=PATH``, or the file a word starts with, as in ``--text-filter "FILE -BLOCK"``):

- a file: its md5, so a file rewritten with the same bytes (the data stage copies the
  LM text on every run) is the same input;
- a folder (a model, a vocabulary, a teacher cache): each file's md5 when small (a
  vocabulary made again with the same words is the same input), else its size and
  mtime (large model weights and caches are outputs of earlier steps, rewritten only
  when those steps rerun); logs left out.

Values of output options (``--out``, ``--stats-out``, ...) are not inputs: they exist
after the first run. A command without ``asr-kd`` in it (a shell function) is signed
by its words alone.
"""
from __future__ import annotations

import hashlib
import os
import sys

SKIP_FLAGS = {"--resume", "--quiet"}
SKIP_WITH_VALUE = {"--threads"}
SMALL = 16 << 20  # files in a folder up to this size are checksummed


def _is_output_option(word: str) -> bool:
    return word.startswith("--") and "out" in word[2:]


def _md5(path: str) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _folder_stamp(path: str) -> list[str]:
    lines = []
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for fn in sorted(files):
            if fn.endswith(".log") or fn.startswith("."):
                continue
            p = os.path.join(root, fn)
            st = os.stat(p)
            stamp = (f"md5:{_md5(p)}" if st.st_size <= SMALL
                     else f"size:{st.st_size}:mtime:{int(st.st_mtime_ns)}")
            lines.append(f"{os.path.relpath(p, path)}:{stamp}")
    return lines


def _named_paths(word: str) -> list[str]:
    """The input files or folders a word names: itself, or the first of its
    space-separated parts (a rules file followed by switches, ``"FILE -BLOCK"``)."""
    parts = word.split()
    for p in ([word] + parts[:1]) if parts else []:
        if os.path.exists(p) and not p.endswith(".log"):
            return [p]
    return []


def sign(words: list[str]) -> list[str]:
    """The signature lines of a command line (see the module docstring)."""
    if "asr-kd" in words:
        words = words[words.index("asr-kd"):]
        stamp = True
    else:
        stamp = False
    out, inputs, skip_next, is_output = [], [], False, False
    for w in words:
        if skip_next:
            skip_next = False
            continue
        flag, eq, value = w.partition("=") if w.startswith("--") else (w, "", "")
        if flag in SKIP_FLAGS or (eq and flag in SKIP_WITH_VALUE):
            continue
        if w in SKIP_WITH_VALUE:
            skip_next = True
            continue
        out.append(f"arg {w}")
        if w.startswith("--"):
            is_output = _is_output_option(flag)
            if not eq:
                continue
            w = value  # --name=VALUE: the value may name an input too
        if stamp and not is_output:
            inputs += _named_paths(w)
    for p in inputs:
        if os.path.isdir(p):
            for s in _folder_stamp(p):
                out.append(f"in {p}\t{s}")
        else:
            out.append(f"in {p}\tmd5:{_md5(p)}")
    return out


def _options(lines: list[str]) -> dict[str, str]:
    """``--name value`` pairs of a signature (a flag without value maps to '')."""
    words = [ln[4:] for ln in lines if ln.startswith("arg ")]
    opts, i = {}, 0
    while i < len(words):
        w = words[i]
        if w.startswith("--") and "=" in w:
            k, _, v = w.partition("=")
            opts[k] = v
        elif w.startswith("--"):
            vals = []
            while i + 1 < len(words) and not words[i + 1].startswith("--"):
                i += 1
                vals.append(words[i])
            opts[w] = " ".join(vals)
        i += 1
    return opts


def diff(old: list[str], new: list[str]) -> str:
    """A one-line account of what changed between two signatures."""
    parts = []
    a, b = _options(old), _options(new)
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            parts.append(f"{k} {a.get(k, '(unset)') or '(on)'} -> {b.get(k, '(unset)') or '(on)'}")
    ia = {ln for ln in old if ln.startswith("in ")}
    ib = {ln for ln in new if ln.startswith("in ")}
    changed = sorted({ln[3:].split("\t")[0] for ln in ia ^ ib})
    if changed:
        parts.append("inputs changed: " + ", ".join(changed[:4]) + (" ..." if len(changed) > 4 else ""))
    if not parts and [x for x in old if x.startswith("arg ")] != [x for x in new if x.startswith("arg ")]:
        parts.append("command changed")
    return "; ".join(parts) or "no difference"


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "sign":
        print("\n".join(sign(argv[1:])))
        return 0
    if len(argv) == 3 and argv[0] == "diff":
        with open(argv[1], encoding="utf-8") as f:
            old = f.read().splitlines()
        with open(argv[2], encoding="utf-8") as f:
            new = f.read().splitlines()
        print(diff(old, new))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
