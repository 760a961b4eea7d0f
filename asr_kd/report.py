"""Comparison report: one table per set, significance, and plots.

Reads the files a recipe run leaves in its experiment folder ``exp``:

* ``<model dir>/config.json`` and ``metrics.csv``   size, training curves;
* ``exp/ppl/<system>.json``                         ``asr-kd ppl --json`` output;
* ``exp/rescore/<set>.<system>.stats.json``          ``asr-kd rescore --stats-out``;
* ``exp/score/<system>/<set>.json``                  ``asr-kd score --json``;
* ``exp/score/<system>/curve.json``                  ``asr-kd tune --curve-out``;
* ``exp/compare/<set>.<a>_vs_<b>.json``              ``asr-kd compare --json``.

Writes ``report.md``, ``results.json`` and PNGs (WER against model size, WER
against the LM weight on dev, training curves) to the output folder.  Missing
pieces show as ``-`` rather than failing, so a partial run still reports.
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field

from .fileio import atomic_write


@dataclass
class System:
    """A row of the report: a name and the model folder(s) it uses (none: first pass)."""

    name: str
    models: list[str] = field(default_factory=list)


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def _model_size(models: list[str]):
    params = mb = 0
    for d in models:
        cfg = _load(os.path.join(d, "config.json"))
        if cfg is None:
            return None, None
        params += cfg.get("num_params", 0)
        mb += cfg.get("size_mb", 0.0)
    return (params, mb) if models else (None, None)


def collect(exp: str, systems: list[System], sets: list[str]) -> dict:
    """Everything the report shows, as plain data (also written as results.json)."""
    rows = []
    for s in systems:
        params, mb = _model_size(s.models)
        row = {"system": s.name, "models": s.models, "params": params, "size_mb": mb,
               "ppl": (_load(os.path.join(exp, "ppl", f"{s.name}.json")) or {}).get("ppl"),
               "curve": _load(os.path.join(exp, "score", s.name, "curve.json")),
               "weights": _load(os.path.join(exp, "score", s.name, "weights.json"))}
        for st in sets:
            row[st] = _load(os.path.join(exp, "score", s.name, f"{st}.json"))
            stats = _load(os.path.join(exp, "rescore", f"{st}.{s.name}.stats.json"))
            row[f"{st}_hyps_per_s"] = stats.get("hyps_per_s") if stats else None
        rows.append(row)
    comparisons = []
    cdir = os.path.join(exp, "compare")
    if os.path.isdir(cdir):
        for fn in sorted(os.listdir(cdir)):
            if fn.endswith(".json"):
                c = _load(os.path.join(cdir, fn))
                if c:
                    st, pair = fn[:-5].split(".", 1)
                    a, b = pair.split("_vs_")
                    boot, sign = c.get("bootstrap", {}), c.get("sign_test", {})
                    comparisons.append({
                        "set": st, "a": a, "b": b, "wer_a": c.get("a", {}).get("wer"),
                        "wer_b": c.get("b", {}).get("wer"), "diff": boot.get("diff"),
                        "low": boot.get("low"), "high": boot.get("high"),
                        "p_b_better": boot.get("p_b_better"), "sign_p": sign.get("p_value")})
    return {"systems": rows, "sets": sets, "comparisons": comparisons}


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def _row_name(system: str, scores: dict) -> str:
    """The system's name, with the decode mode when it is not 1-best (``score --json``)."""
    if scores.get("decode") == "consensus":
        return f"{system} (consensus, scale {scores.get('posterior_scale', 0):g})"
    return system


def markdown(res: dict) -> str:
    """The report as Markdown tables."""
    rows, sets = res["systems"], res["sets"]
    teacher = next((r for r in rows if r["system"] == "teacher" and r["params"]), None)
    out = ["# Rescoring report", ""]
    first = next((r for r in rows if r["system"] == "first_pass"), None)
    for st in sets:
        # WER change relative to the first pass, in percent of its WER (-5.0: 5 % fewer errors).
        base = ((first or {}).get(st) or {}).get("wer")
        out += [f"## {st}", "",
                "| system | WER | rel. to first pass % | SER | oracle WER | params | % of teacher | "
                "MB | ppl | hyps/s |",
                "|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            sc = r.get(st) or {}
            rel = (100.0 * r["params"] / teacher["params"]) if (teacher and r["params"]) else None
            gain = (100.0 * (sc["wer"] - base) / base) if (base and sc.get("wer") is not None) else None
            out.append(f"| {_row_name(r['system'], sc)} | {_fmt(sc.get('wer'))} | {_fmt(gain, '+.1f')} | "
                       f"{_fmt(sc.get('ser'))} | "
                       f"{_fmt(sc.get('oracle_wer'))} | {_fmt(r['params'], ',d') if r['params'] else '-'} | "
                       f"{_fmt(rel, '.1f')} | {_fmt(r['size_mb'], '.2f')} | {_fmt(r['ppl'], '.1f')} | "
                       f"{_fmt(r.get(f'{st}_hyps_per_s'), '.0f')} |")
        out.append("")
    if res["comparisons"]:
        out += ["## Significance (bootstrap over utterances)", "",
                "| set | A | B | WER A | WER B | B - A | 95 % interval | P(B better) | sign test p |",
                "|---|---|---|---|---|---|---|---|---|"]
        for c in res["comparisons"]:
            out.append(f"| {c['set']} | {c['a']} | {c['b']} | {_fmt(c.get('wer_a'))} | "
                       f"{_fmt(c.get('wer_b'))} | {_fmt(c.get('diff'), '+.2f')} | "
                       f"[{_fmt(c.get('low'), '+.2f')}, {_fmt(c.get('high'), '+.2f')}] | "
                       f"{_fmt(c.get('p_b_better'), '.3f')} | {_fmt(c.get('sign_p'), '.3f')} |")
        out.append("")
    out += ["## Tuned weights (dev)", ""]
    for r in rows:
        if r["weights"]:
            out.append(f"- {r['system']}: `{json.dumps(r['weights'])}`")
    out += ["", "Plots: `wer_vs_size.png`, `wer_vs_lm_weight.png`, `training_curves.png`.", ""]
    return "\n".join(out)


def plots(res: dict, out_dir: str) -> list[str]:
    """Write the three PNGs; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    rows, sets = res["systems"], res["sets"]

    def save(fig, name):
        path = os.path.join(out_dir, name)
        fig.tight_layout()
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for st, marker, color in zip(sets, "os^D", ("C0", "C1", "C2", "C3")):
        have = [r for r in rows if r["params"] and r.get(st)]
        ax.scatter([r["params"] / 1e6 for r in have], [r[st]["wer"] for r in have],
                   marker=marker, color=color, label=st)
        for r in have:
            ax.annotate(r["system"], (r["params"] / 1e6, r[st]["wer"]), fontsize=8,
                        xytext=(3, 3), textcoords="offset points")
        first = next((r for r in rows if not r["params"] and r.get(st)), None)
        if first:
            ax.axhline(first[st]["wer"], ls="--", lw=0.8, color=color,
                       label=f"{st} first pass")
    ax.legend(fontsize=8)
    ax.set_xlabel("LM parameters (millions)")
    ax.set_ylabel("WER (%)")
    ax.set_title("WER against LM size")
    save(fig, "wer_vs_size.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for r in rows:
        c = r.get("curve")
        if c and c.get("points") and c.get("key") != "posterior_scale":  # not an LM weight
            xs, ys = zip(*c["points"])
            ax.plot(xs, ys, label=f"{r['system']} ({c['key']})")
    ax.set_xlabel("LM weight (others at their best)")
    ax.set_ylabel("dev WER (%)")
    ax.legend(fontsize=8)
    ax.set_title("WER against LM weight on dev")
    save(fig, "wer_vs_lm_weight.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for r in rows:
        for d in r["models"]:
            path = os.path.join(d, "metrics.csv")
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    m = list(csv.DictReader(f))
                ax.plot([int(x["epoch"]) for x in m], [float(x["valid_ppl"]) for x in m],
                        marker=".", label=f"{r['system']} ({os.path.basename(d)})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation perplexity")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Training curves")
    save(fig, "training_curves.png")
    return written


def write_report(exp: str, systems: list[System], sets: list[str], out_dir: str) -> str:
    """Collect, write report.md / results.json / PNGs to ``out_dir``; return the Markdown."""
    os.makedirs(out_dir, exist_ok=True)
    res = collect(exp, systems, sets)
    md = markdown(res)
    with atomic_write(os.path.join(out_dir, "report.md")) as f:
        f.write(md)
    with atomic_write(os.path.join(out_dir, "results.json")) as f:
        json.dump(res, f, indent=2)
    plots(res, out_dir)
    return md
