"""Where two systems differ: the utterances they decide differently, with each one's errors.

Input: the references and, per system, K runs of hypotheses (K = 1 for one model;
K seed runs are pooled as ``asr-kd compare`` pools them: an utterance's errors are
summed over the runs).  Output (:func:`write_differences`, into a folder, all or none):

* ``differences.txt``: the summary (utterances where B makes fewer errors, more,
  the same; the last split into identical choices and different words with equal
  errors), then every utterance where any run's A and B texts differ, with each
  run's alignment of A and of B against the reference (sclite ``pra`` style),
  sorted by the difference of errors, largest first (B better first among equal sizes);
* ``differences.json``: the same as data.

The win/loss/tie counts are exactly the sign test's inputs
(:func:`asr_kd.significance.sign_test` on the same pooled errors).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Sequence

from .details import align_texts, pra_block
from .fileio import FileSet


@dataclass(frozen=True)
class Differences:
    """``utts`` and pooled errors ``errs_a``/``errs_b`` (U,), per utterance; ``aligns_a``
    and ``aligns_b``: per run, the alignments of every utterance; ``order``: the
    indices of the utterances where the systems choose differently, sorted."""

    utts: list[str]
    errs_a: list[int]
    errs_b: list[int]
    aligns_a: list[list]
    aligns_b: list[list]
    order: list[int]

    @property
    def b_better(self) -> int:
        return sum(b < a for a, b in zip(self.errs_a, self.errs_b))

    @property
    def a_better(self) -> int:
        return sum(a < b for a, b in zip(self.errs_a, self.errs_b))

    @property
    def ties(self) -> int:
        return len(self.utts) - self.a_better - self.b_better

    @property
    def identical(self) -> int:
        return len(self.utts) - len(self.order)


def differences(utts: Sequence[str], refs: Sequence[str], runs_a: Sequence[Sequence[str]],
                runs_b: Sequence[Sequence[str]]) -> Differences:
    """Align every run of both systems; ``runs_x[k][i]`` is run k's text for ``utts[i]``."""
    if len(runs_a) != len(runs_b) or not runs_a:
        raise ValueError(f"{len(runs_a)} runs of A, {len(runs_b)} of B")
    al_a = [align_texts(utts, refs, r) for r in runs_a]
    al_b = [align_texts(utts, refs, r) for r in runs_b]
    ea = [sum(run[i].errors for run in al_a) for i in range(len(utts))]
    eb = [sum(run[i].errors for run in al_b) for i in range(len(utts))]
    differ = [i for i in range(len(utts))
              if any(ra[i].hyp != rb[i].hyp for ra, rb in zip(al_a, al_b))]
    differ.sort(key=lambda i: (-abs(eb[i] - ea[i]), eb[i] - ea[i], i))
    return Differences(list(utts), ea, eb, al_a, al_b, differ)


def summary_lines(d: Differences, names: tuple[str, str] = ("A", "B")) -> list[str]:
    a, b = names
    return [f"{len(d.utts)} utterances: {b} better on {d.b_better}, {a} better on {d.a_better}, "
            f"ties {d.ties} ({d.identical} with the same choice, {d.ties - d.identical} with "
            f"different words and as many errors)",
            f"utterances where {a} and {b} choose differently: {len(d.order)}"]


def write_differences(out_dir: str, d: Differences, names: tuple[str, str] = ("A", "B"),
                      paths: tuple[str, str] = ("", ""), extra: dict | None = None) -> None:
    """Write ``differences.txt`` and ``differences.json`` into ``out_dir`` together."""
    k = len(d.aligns_a)
    label = (lambda n, r: n) if k == 1 else (lambda n, r: f"{n}{r + 1}")  # noqa: E731
    lines = [f"{names[0]}: {paths[0]}", f"{names[1]}: {paths[1]}", ""] + summary_lines(d, names)
    if k > 1:
        lines.append(f"errors are summed over the {k} runs of each system")
    lines += ["", f"sorted by |errors {names[1]} - errors {names[0]}|, largest first", ""]
    rows = []
    for i in d.order:
        lines.append(f"== {d.utts[i]}: errors {names[0]} {d.errs_a[i]}, {names[1]} "
                     f"{d.errs_b[i]}, {names[1]} - {names[0]} {d.errs_b[i] - d.errs_a[i]:+d}")
        for r in range(k):
            for n, al in ((names[0], d.aligns_a[r][i]), (names[1], d.aligns_b[r][i])):
                lines += pra_block(al, ("REF", label(n, r)))[1:]
        lines.append("")
        rows.append({"utt": d.utts[i], "errors_a": d.errs_a[i], "errors_b": d.errs_b[i],
                     "diff": d.errs_b[i] - d.errs_a[i], "ref": " ".join(d.aligns_a[0][i].ref),
                     "a": [" ".join(run[i].hyp) for run in d.aligns_a],
                     "b": [" ".join(run[i].hyp) for run in d.aligns_b],
                     "ops_a": [run[i].ops for run in d.aligns_a],
                     "ops_b": [run[i].ops for run in d.aligns_b]})
    obj = {**(extra or {}), "a": {"name": names[0], "path": paths[0]},
           "b": {"name": names[1], "path": paths[1]}, "runs": k, "utts": len(d.utts),
           "b_better": d.b_better, "a_better": d.a_better, "ties": d.ties,
           "identical": d.identical, "differ": len(d.order), "utterances": rows}
    os.makedirs(out_dir, exist_ok=True)
    with FileSet() as fs:
        with fs.open(os.path.join(out_dir, "differences.txt")) as f:
            f.write("\n".join(lines) + "\n")
        with fs.open(os.path.join(out_dir, "differences.json")) as f:
            json.dump(obj, f)
