#!/usr/bin/env python3
"""Are two runs of the recipe the same? Compares two folders (a recipe's exp/ or data/) file by
file and prints one line per file that differs, then a summary.

    local/compare_exp.py OLD_DIR NEW_DIR [--ignore-name train.log --ignore-name ...]

A file is the same when its bytes are; or, for ``.gz``, its decompressed bytes (the gzip
header holds a time); or, for ``.json``, its values with the volatile ones left out (keys
naming a time, a speed or a path: see VOLATILE); or, for ``metrics.csv``, its columns but
the time and speed ones; or, for a checkpoint (``.pt``), its tensors and values; or, for
other text, its text, and in the report (``report.md``, ``report.html``) the cells of the
speed column (``hyps/s``) masked. Before comparing, each side's repository root (the folder above it
holding ``.git``) is replaced by ``<repo>`` in every text, so two clones compare equal. Logs, sentinels (``.done/``, their signatures hold paths and
mtimes), locks and temporaries are not compared; ``--ignore-name`` leaves out more file names.
Exit 0 when everything compared is the same, 1 otherwise.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import os
import sys

# JSON keys whose values are times, speeds or host facts, and keys that hold paths when their
# value is text: they differ between two runs of the same computation (paths between clones).
VOLATILE = {"seconds", "elapsed_s", "hyps_per_s", "utts_per_s", "tokens_per_s", "wall_s",
            "time", "date", "created", "host", "threads", "speed", "rate", "peak_rss_mb"}
PATHISH = {"path", "paths", "exp", "out", "model", "models", "teacher", "dir", "folder", "file"}
CSV_VOLATILE = {"seconds", "tokens_per_s"}
# Checkpoint keys renamed between versions, compared under their current name.
RENAMED = {"progress": "position"}
SKIP_DIRS = {".done"}
SKIP_SUFFIXES = (".log", ".lock")


def _text(v) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))


def _strip(obj):
    """A JSON value without its volatile keys (recursively)."""
    if isinstance(obj, str):
        return _unroot(obj)
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE
                and not k.endswith(("_s", "_per_s")) and not
                ((k in PATHISH or k.endswith(("_path", "_dir"))) and _text(v))}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _csv_rows(data: bytes):
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8"))))
    return [{k: v for k, v in r.items() if k not in CSV_VOLATILE} for r in rows]


_ROOTS: list[str] = []  # the two repository roots, longest first


def repo_root(folder: str) -> str | None:
    d = os.path.abspath(folder)
    while d != os.path.dirname(d):
        if os.path.exists(os.path.join(d, ".git")):
            return d
        d = os.path.dirname(d)
    return None


def _unroot(text: str) -> str:
    for root in _ROOTS:
        text = text.replace(root, "<repo>")
    return text


SPEED_COLUMN = "hyps/s"


def _mask_speed_md(text: str) -> str:
    """Markdown tables with the cells of the speed column replaced by '*'."""
    out, col = [], None
    for line in text.split("\n"):
        if not line.startswith("|"):
            col = None
        else:
            cells = line.split("|")
            if col is None and SPEED_COLUMN in [c.strip() for c in cells]:
                col = [c.strip() for c in cells].index(SPEED_COLUMN)
            elif col is not None and len(cells) > col and not set(cells[col].strip()) <= {"-", ":"}:
                cells[col] = " * "
                line = "|".join(cells)
        out.append(line)
    return "\n".join(out)


def _mask_speed_html(text: str) -> str:
    """HTML tables with the cells of the speed column replaced by '*'."""
    import re
    out = []
    for table in re.split(r"(?=<table)", text):
        heads = re.findall(r"<th[^>]*>(.*?)</th>", table, re.S)
        if SPEED_COLUMN in heads:
            col = heads.index(SPEED_COLUMN)

            def row(m, col=col):
                cells = re.split(r"(?=<td)", m.group(0))
                if len(cells) > col + 1:  # (cells[0]: the text before the first <td>)
                    cells[col + 1] = re.sub(r">[^<]*<", ">*<", cells[col + 1], count=1)
                return "".join(cells)
            table = re.sub(r"<tr>.*?</tr>", row, table, flags=re.S)
        out.append(table)
    return "".join(out)


def _same_value(x, y) -> bool:
    """Checkpoint contents: tensors by value, texts without the repository roots."""
    import torch
    if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
        return (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor)
                and x.dtype == y.dtype and x.shape == y.shape and torch.equal(x, y))
    if isinstance(x, dict) and isinstance(y, dict):  # (times and speeds left out)
        return list(x) == list(y) and all(_same_value(x[k], y[k]) for k in x
                                          if k not in VOLATILE and k not in CSV_VOLATILE)
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same_value(a, b) for a, b in zip(x, y))
    if isinstance(x, str) and isinstance(y, str):
        return _unroot(x) == _unroot(y)
    return x == y


def same(a: str, b: str) -> tuple[bool, str]:
    """(same?, how it was compared) for two files of the same relative path."""
    with open(a, "rb") as f:
        da = f.read()
    with open(b, "rb") as f:
        db = f.read()
    if da == db:
        return True, "bytes"
    if a.endswith(".gz"):
        return gzip.decompress(da) == gzip.decompress(db), "decompressed"
    if a.endswith(".json"):
        try:
            return _strip(json.loads(da)) == _strip(json.loads(db)), "json without volatile keys"
        except ValueError:
            return False, "bytes (not JSON)"
    if os.path.basename(a) == "metrics.csv":
        return _csv_rows(da) == _csv_rows(db), "metrics without time and speed"
    if a.endswith(".pt"):
        import torch
        ca, cb = (torch.load(io.BytesIO(d), weights_only=True) for d in (da, db))
        for c in (ca, cb):  # its checksum covers the texts with the roots in them
            c.pop("crc32", None)
        ca, cb = ({RENAMED.get(k, k): v for k, v in c.items()} for c in (ca, cb))
        return _same_value(ca, cb), "checkpoint values"
    try:
        ta, tb = da.decode("utf-8"), db.decode("utf-8")
    except UnicodeDecodeError:
        return False, "bytes"
    ta, tb = _unroot(ta), _unroot(tb)
    name = os.path.basename(a)
    if name == "report.md":
        return _mask_speed_md(ta) == _mask_speed_md(tb), "report without speeds"
    if name == "report.html":
        return _mask_speed_html(ta) == _mask_speed_html(tb), "report without speeds"
    return ta == tb, "text without the repository roots"


def files(root: str, ignore: set[str]) -> set[str]:
    out = set()
    for d, dirs, names in os.walk(root):
        dirs[:] = [x for x in dirs if x not in SKIP_DIRS]
        for n in names:
            if n.endswith(SKIP_SUFFIXES) or n.startswith((".tmp-", ".lock", ".sig")) or n in ignore:
                continue
            out.add(os.path.relpath(os.path.join(d, n), root))
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--ignore-name", action="append", default=[],
                    help="a file name left out of the comparison (repeatable)")
    args = ap.parse_args(argv)
    for d in (args.old, args.new):
        if not os.path.isdir(d):
            print(f"compare_exp.py: error: {d}: not a folder", file=sys.stderr)
            return 2
    ignore = set(args.ignore_name)
    roots = {repo_root(args.old), repo_root(args.new)} - {None}
    _ROOTS[:] = sorted(roots, key=len, reverse=True)
    fa, fb = files(args.old, ignore), files(args.new, ignore)
    counts: dict[str, int] = {}
    bad = 0
    for rel in sorted(fa - fb):
        print(f"only in {args.old}: {rel}")
        bad += 1
    for rel in sorted(fb - fa):
        print(f"only in {args.new}: {rel}")
        bad += 1
    for rel in sorted(fa & fb):
        ok, how = same(os.path.join(args.old, rel), os.path.join(args.new, rel))
        if ok:
            counts[how] = counts.get(how, 0) + 1
        else:
            print(f"differs ({how}): {rel}")
            bad += 1
    summary = ", ".join(f"{n} by {how}" for how, n in sorted(counts.items()))
    print(f"{sum(counts.values())} of {len(fa | fb)} files the same ({summary}); {bad} not")
    return 0 if bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
