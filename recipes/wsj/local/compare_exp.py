#!/usr/bin/env python3
"""Are two runs of the recipe the same? Compares two folders (a recipe's exp/ or data/) file by
file and prints one line per file that differs, then a summary.

    local/compare_exp.py OLD_DIR NEW_DIR [--ignore-name train.log --ignore-name ...]

A file is the same when its bytes are; or, for ``.gz``, its decompressed bytes (the gzip
header holds a time); or, for ``.json``, its values with the volatile ones left out (keys
naming a time, a speed or a path: see VOLATILE); or, for ``metrics.csv``, its columns but
the time and speed ones. Logs, sentinels (``.done/``, their signatures hold paths and
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
SKIP_DIRS = {".done"}
SKIP_SUFFIXES = (".log", ".lock")


def _text(v) -> bool:
    return isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v))


def _strip(obj):
    """A JSON value without its volatile keys (recursively)."""
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
    return False, "bytes"


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
