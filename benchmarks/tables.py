"""Output shared by the benchmark scripts: a Markdown table on stdout, rows as a CSV."""
from __future__ import annotations

import csv
import os


def print_markdown(rows: list[dict], cols: list[str], headers: list[str] | None = None) -> None:
    """``rows`` as a Markdown table of the columns ``cols`` (titled ``headers``, else the keys)."""
    print("| " + " | ".join(headers or cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


def write_csv(path: str, rows: list[dict]) -> None:
    """``rows`` (dicts with the keys of the first) as a CSV at ``path``, folders made."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
