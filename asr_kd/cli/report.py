"""asr-kd report: the comparison report of a recipe run."""
from __future__ import annotations

from ..errors import InputError
from ..report import System, write_report
from ..results import RunLayout


def register(sub) -> None:
    p = sub.add_parser(
        "report", help="write the comparison report (Markdown + PNG) of an experiment folder",
        description="Collect WER, SER, oracle, size, perplexity, speed and significance from an "
        "experiment folder (see asr_kd/report.py for the files read) into report.md, "
        "results.json and plots, and print the tables.")
    p.add_argument("--exp", required=True, help="experiment folder")
    p.add_argument("--out", required=True, help="report folder")
    p.add_argument("--system", action="append", metavar="NAME[=DIR[,DIR...]]",
                   help="a system and its model folder(s); no DIR for the first pass (repeatable)")
    p.add_argument("--runs", nargs="+", metavar="REPORT_DIR",
                   help="combine the reports of several runs (each LM trained with another "
                   "seed): means and ranges per system, significance from EXP/compare, which "
                   "holds comparisons pooled over the runs (asr-kd compare A1,A2 B1,B2)")
    p.add_argument("--sets", default="dev,eval", help="comma-separated set names")
    p.set_defaults(func=run)


def run(args) -> int:
    if bool(args.runs) == bool(args.system):
        raise InputError("give --system (one run) or --runs (several), not both or neither")
    systems = []
    for spec in args.system or []:
        name, _, dirs = spec.partition("=")
        if not name:
            raise InputError(f"--system {spec!r}: expected NAME[=DIR[,DIR...]]")
        systems.append(System(name, [d for d in dirs.split(",") if d]))
    sets = [s for s in args.sets.split(",") if s]
    try:
        print(write_report(RunLayout(args.exp), systems, sets, args.out, runs=args.runs))
    except ValueError as e:  # runs that do not match
        raise InputError(str(e)) from None
    return 0
