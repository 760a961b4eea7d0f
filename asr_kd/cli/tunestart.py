"""`tune --start WEIGHTS --fixed KEYS`: a start point for the search and weights kept
as they are (SRILM nbest-optimize's -init-lambdas, with '=' for a fixed weight)."""
from __future__ import annotations


def add_start_args(p) -> None:
    """``--start`` and ``--fixed``."""
    p.add_argument("--start", metavar="WEIGHTS",
                   help="weights JSON (e.g. a previous tune --out, or the recogniser's own "
                   "weights) used as one more start point: the result is never worse on dev; "
                   "keys it lacks start at 0")
    p.add_argument("--fixed", default="", metavar="KEY[,KEY...]",
                   help="keys (not the first) kept at their --start weight, relative to the "
                   "first key's, instead of tuned")

