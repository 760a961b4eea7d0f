"""Comparison report: one table per set, significance, and plots.

Reads the files a run leaves, where its :class:`asr_kd.results.RunLayout` says
they are (the files and who writes them: :mod:`asr_kd.results`):

* ``<model dir>/config.json`` and ``metrics.csv``   size, training curves;
* the systems' perplexities                          ``asr-kd ppl --json`` output;
* rescoring stats per set and system                 ``asr-kd rescore --stats-out``;
* scores per system and set                          ``asr-kd score --json``;
* a system's tuning curve and weights                ``asr-kd tune --curve-out``, ``--out``;
* comparisons per set and pair of systems            ``asr-kd compare --json``;
* ``exp/frontier/``                                   the size frontier (:mod:`asr_kd.frontier`).

Writes ``report.md``, ``results.json`` and PNGs (WER against model size, WER
against the LM weight on dev, training curves) to the output folder, and
``report.html`` (:mod:`asr_kd.report_html`: the same, self-contained, with an
utterance browser over ``exp/score/<system>/details/<set>/``, and the details
and leakage-check sections also added to ``report.md``).

What happens when an input is not usable, per input:

* **present but unreadable or malformed** (any of the JSON files above, the
  ``results.json`` of a run given to ``--runs``, a ``metrics.csv``): refused,
  one :class:`~asr_kd.errors.InputError` naming the file.  A truncated file
  never turns into a ``-`` in the tables.
* **missing by design**: nothing is said and the cell shows ``-``.  That is a
  system without models (the first pass: no config, perplexity or rescoring
  speed), ``curve.json`` (only ``asr-kd tune --curve-out`` writes it),
  ``metrics.csv`` (an exported model has none) and comparisons not run.
* **missing otherwise** (a model's ``config.json``, a system's perplexity,
  rescoring stats, per-set scores or ``weights.json``): the cell shows ``-``, so
  a partial run still reports, and the report ends with a "Missing inputs"
  section listing those files (``results.json``: ``"missing"``, present only
  when something is).

``results.json``: ``systems`` (per system ``system``, ``models``, ``params``,
``size_mb``, ``training``, ``seeds``, ``ppl``, ``ppl_mode``, ``ppl_unit``,
``word_ppl``, ``curve``, ``weights``, then per set the ``score --json`` object
under the set's name and ``<set>_hyps_per_s``), ``sets``, ``comparisons`` (per
compare file: set, a, b, both WERs, the bootstrap figures, ``sign_p``, ``runs``),
``noise`` (the distinct scoring filters behind the tables) and ``missing``.  A
report of K seed runs (``--runs``) adds ``runs`` = K and per system and set the
mean ``wer``, ``ser``, ``oracle_wer`` with ``wer_min``, ``wer_max``, ``wers``, and
``ppl_min``, ``ppl_max``; a size frontier adds ``frontier``
(:mod:`asr_kd.frontier`).
"""
from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field

from .errors import InputError
from .fileio import atomic_write, read_json
from .frontier import collect_frontier, frontier_markdown, frontier_plots
from .results import RunLayout
from .weights_file import TUNED_ON


@dataclass
class System:
    """A row of the report: a name and the model folder(s) it uses (none: first pass)."""

    name: str
    models: list[str] = field(default_factory=list)


def _load(path: str, missing: list[str] | None = None) -> dict | None:
    """The JSON object in ``path``; None when there is no such file (appended to
    ``missing`` when given: an input that should be there).  A file that exists
    but cannot be read or parsed is an InputError naming it."""
    if not os.path.exists(path):
        if missing is not None:
            missing.append(path)
        return None
    return read_json(path, os.path.basename(path))


def _model_size(cfgs: list[dict | None]):
    """(parameters, MB) summed over a system's model configs; (None, None) if one is missing."""
    params = mb = 0
    for cfg in cfgs:
        if cfg is None:
            return None, None
        params += cfg.get("num_params", 0)
        mb += cfg.get("size_mb", 0.0)
    return (params, mb) if cfgs else (None, None)


def _training(cfgs: list[dict | None]) -> tuple[str | None, list]:
    """How a system's model(s) were trained, in a few words, and their seeds."""
    cfgs = [c for c in cfgs if c]
    if not cfgs:
        return None, []
    if cfgs[0].get("format") == "asr_kd-exported-lm":  # asr-kd export: no training of its own
        src = (cfgs[0].get("source") or {}).get("model", "?")
        return (f"{cfgs[0].get('precision', '?')} ONNX export of {src} "
                f"({cfgs[0].get('runtime', 'onnxruntime')})"), []
    seeds = [c.get("seed") for c in cfgs]
    kd = cfgs[0].get("kd")
    if kd:
        trust = kd.get("trust", "none")
        trust += {"rank": f" (k {kd.get('trust_k')})",
                  "margin": f" (beta {kd.get('trust_beta')})"}.get(trust, "")
        return (f"distilled: alpha {kd.get('alpha')}, tau {kd.get('tau')}, trust {trust}, "
                f"teacher ensemble {kd.get('ensemble')}"), seeds
    what = "language model" if len(cfgs) == 1 else f"ensemble of {len(cfgs)} language models"
    return f"{what} on hard labels", seeds


def collect(run: RunLayout, systems: list[System], sets: list[str]) -> dict:
    """Everything the report shows, as plain data (also written as results.json);
    ``run``: where the run's result files are."""
    rows = []
    missing: list[str] = []    # inputs that should be there (see the module docstring)
    for s in systems:
        # a system without models (the first pass) has no config, perplexity or speed
        lm = missing if s.models else None
        cfgs = [_load(os.path.join(d, "config.json"), lm) for d in s.models]
        params, mb = _model_size(cfgs)
        ppl = _load(run.ppl(s.name), lm) or {}
        row = {"system": s.name, "models": s.models, "params": params, "size_mb": mb,
               **dict(zip(("training", "seeds"), _training(cfgs))),
               "ppl": ppl.get("ppl"), **_ppl_kind(ppl),
               "curve": _load(run.curve(s.name)),
               "weights": _load(run.weights(s.name), missing)}
        for st in sets:
            row[st] = _load(run.score(s.name, st), missing)
            stats = _load(run.stats(st, s.name), lm)
            row[f"{st}_hyps_per_s"] = stats.get("hyps_per_s") if stats else None
        rows.append(row)
    res = {"systems": rows, "sets": sets,
           "comparisons": load_comparisons(run, [s.name for s in systems], sets),
           "noise": _noise_filters(rows, sets)}
    if missing:  # absent when nothing is missing
        res["missing"] = missing
    return res


def _ppl_kind(ppl: dict) -> dict:
    """What a system's perplexity is: ``ppl_mode`` (stream | sentence), ``ppl_unit``
    (word | token: per SentencePiece piece) and ``word_ppl`` (per word, for every
    tokenizer), from ``asr-kd ppl --json``; None where the file does not say."""
    return {"ppl_mode": ppl.get("mode"), "ppl_unit": ppl.get("unit"),
            "word_ppl": ppl.get("word_ppl")}


def load_comparisons(run: RunLayout, systems: list[str] | None = None,
                     sets: list[str] | None = None) -> list[dict]:
    """The ``<set>.<a>_vs_<b>.json`` files (``asr-kd compare --json``) of the run's
    compare folder; with ``systems`` / ``sets``, only those between two of the systems
    on one of the sets (a folder reused for other runs holds comparisons of systems
    not reported)."""
    comparisons = []
    cdir = run.compare_dir()
    if os.path.isdir(cdir):
        for fn in sorted(os.listdir(cdir)):
            if fn.endswith(".json"):
                c = _load(os.path.join(cdir, fn))
                if c:
                    st, pair = fn[:-5].split(".", 1)
                    a, b = pair.split("_vs_")
                    if (systems is not None and not {a, b} <= set(systems)) or \
                            (sets is not None and st not in sets):
                        continue
                    boot, sign = c.get("bootstrap", {}), c.get("sign_test", {})
                    comparisons.append({
                        "set": st, "a": a, "b": b, "wer_a": c.get("a", {}).get("wer"),
                        "wer_b": c.get("b", {}).get("wer"), "diff": boot.get("diff"),
                        "low": boot.get("low"), "high": boot.get("high"),
                        "p_b_better": boot.get("p_b_better"), "sign_p": sign.get("p_value"),
                        "runs": c.get("runs", 1)})
    return comparisons


def _noise_filters(rows: list[dict], sets: list[str]) -> list[list[str]]:
    """The distinct scoring filters (``"noise"`` of ``score --json``) behind the tables:
    one list when every result was scored alike, several when they differ."""
    seen = []
    for r in rows:
        for st in sets:
            pats = (r.get(st) or {}).get("noise")
            if pats is not None and pats not in seen:
                seen.append(pats)
    return seen


def combine_runs(runs: list[dict], comparisons: list[dict]) -> dict:
    """One report of K runs of the same systems (models trained with K seeds).

    ``runs``: each run's :func:`collect` output (its ``results.json``). Per system and
    set, ``wer``, ``ser`` and ``oracle_wer`` become the mean over runs, with
    ``wer_min``/``wer_max``/``wers`` beside; ``ppl`` likewise; size, models and weights
    are the first run's. ``comparisons`` are pooled over the runs (``asr-kd compare``
    with comma-separated run lists).
    """
    if not runs:
        raise ValueError("no runs to combine")
    names = [r["system"] for r in runs[0]["systems"]]
    sets = runs[0]["sets"]
    for i, res in enumerate(runs[1:], 2):
        if [r["system"] for r in res["systems"]] != names or res["sets"] != sets:
            raise ValueError(f"run {i} has other systems or sets than run 1")
    _check_distinct_seeds(runs)

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs else None

    rows = []
    for k, name in enumerate(names):
        per = [res["systems"][k] for res in runs]
        row = dict(per[0])
        ppls = [p.get("ppl") for p in per]
        row.update(ppl=mean(ppls), ppl_min=min((x for x in ppls if x is not None), default=None),
                   ppl_max=max((x for x in ppls if x is not None), default=None),
                   word_ppl=mean([p.get("word_ppl") for p in per]))
        row["seeds"] = [x for p in per for x in p.get("seeds") or []]
        for st in sets:
            scores = [p.get(st) for p in per]
            if any(x is None for x in scores):
                row[st] = None
                continue
            wers = [x["wer"] for x in scores]
            row[st] = {"wer": mean(wers), "wer_min": min(wers), "wer_max": max(wers),
                       "wers": wers, "ser": mean([x.get("ser") for x in scores]),
                       "oracle_wer": mean([x.get("oracle_wer") for x in scores]),
                       **{k: mean([x.get(k) for x in scores]) for k in ("sub", "del", "ins")},
                       **{k: scores[0][k] for k in ("noise", "decode", "posterior_scale",
                                                    "utts", "words") if k in scores[0]}}
            row[f"{st}_hyps_per_s"] = mean([p.get(f"{st}_hyps_per_s") for p in per])
        rows.append(row)
    res = {"systems": rows, "sets": sets, "comparisons": comparisons, "runs": len(runs),
           "noise": _noise_filters(rows, sets)}
    missing = sorted({p for r in runs for p in r.get("missing", [])})
    if missing:
        res["missing"] = missing
    return res


def check_distinct_runs(runs: list[str]) -> None:
    """InputError when a report folder is given twice (one run would count as two
    seeds: a spread of 0 and significance from a duplicated sample)."""
    seen: dict[str, str] = {}
    for d in runs:
        key = os.path.realpath(d)
        if key in seen:
            raise InputError(f"--runs names one run twice ({seen[key]} and {d}): each run "
                             "must be another training seed", d)
        seen[key] = d


def _check_distinct_seeds(runs: list[dict]) -> None:
    """ValueError when two runs' trained systems have the same seeds (the same run
    copied, or a recipe run twice with one seed)."""
    for k, row in enumerate(runs[0]["systems"]):
        seen: dict[tuple, int] = {}
        for i, res in enumerate(runs, 1):
            seeds = tuple(res["systems"][k].get("seeds") or [])
            if not seeds or None in seeds:
                continue
            if seeds in seen:
                raise ValueError(f"runs {seen[seeds]} and {i} trained system "
                                 f"{row['system']!r} with the same seed(s) "
                                 f"{', '.join(map(str, seeds))}: not two seed runs")
            seen[seeds] = i


def load_results(report_dir: str) -> dict:
    """A run's ``results.json``; InputError when missing or not valid JSON."""
    path = os.path.join(report_dir, "results.json")
    if not os.path.isfile(path):
        raise InputError("cannot read: no such file (not a report folder?)", path)
    res = read_json(path, "results.json", template="not valid JSON: {error}",
                    not_object="not a report's results.json (no systems/sets)")
    if "systems" not in res or "sets" not in res:
        raise InputError("not a report's results.json (no systems/sets)", path)
    return res


def _fmt(x, spec=".2f"):
    return "-" if x is None else format(x, spec)


def _row_name(system: str, scores: dict) -> str:
    """The system's name, with the decode mode when it is not 1-best (``score --json``)."""
    if scores.get("decode") == "consensus":
        return f"{system} (consensus, scale {scores.get('posterior_scale', 0):g})"
    return system


def _ppl_column(rows: list[dict]):
    """(header, cell function) of the perplexity column: per word where known (a
    SentencePiece model's per-piece perplexity is not comparable with a word model's),
    with the mode (stream | sentence) and unit in the header when every row agrees,
    else in each cell."""
    def value(r):
        return r.get("word_ppl") if r.get("word_ppl") is not None else r.get("ppl")

    def unit(r):
        if r.get("word_ppl") is not None or r.get("ppl_unit") == "word":
            return "per word"
        return "per token" if r.get("ppl_unit") == "token" else "unit not recorded"

    def kind(r):
        return f"{r.get('ppl_mode') or 'mode not recorded'}, {unit(r)}"

    have = [r for r in rows if value(r) is not None]
    kinds = {kind(r) for r in have}
    if len(kinds) <= 1:
        head = f"ppl ({kinds.pop()})" if kinds else "ppl"
        return head, lambda r: _fmt(value(r), ".1f")
    return "ppl", lambda r: ("-" if value(r) is None else f"{value(r):.1f} ({kind(r)})")


def _set_size(rows: list[dict], st: str) -> list[str]:
    """The line under a set's heading: its utterances and reference words (after the
    scoring filter), as ``score --json`` counted them; says so when systems differ."""
    sizes = {(sc.get("utts"), sc.get("words")) for sc in (r.get(st) for r in rows)
             if sc and sc.get("words") is not None}
    if not sizes:
        return []
    if len(sizes) == 1:
        utts, words = sizes.pop()
        return [f"{utts:,} utterances, {words:,} reference words.", ""]
    shown = ", ".join(f"{u:,} / {w:,}" for u, w in sorted(sizes, key=str))
    return [f"**The systems were scored on different sets** (utterances / reference words: "
            f"{shown}): their WERs are not comparable.", ""]


def markdown(res: dict) -> str:
    """The report as Markdown tables."""
    rows, sets = res["systems"], res["sets"]
    teacher = next((r for r in rows if r["system"] == "teacher" and r["params"]), None)
    out = ["# Rescoring report", ""]
    if res.get("runs", 1) > 1:
        out += [f"Every LM trained {res['runs']} times with different seeds: WER, SER, oracle "
                "and perplexity are means over the runs, the WER's range over runs in brackets; "
                "the significance tests pool the runs (each utterance's errors summed over "
                "them, utterances resampled with all their runs).", ""]
    else:
        out += ["One training run per LM (one seed): differences of the size of the "
                "seed-to-seed spread are not established by this report; `run.sh --seeds 3` "
                "trains every LM three times and reports means, ranges and pooled tests.", ""]
    filters = res.get("noise") or []
    if filters:
        shown = "; ".join(" ".join(f"`{p}`" for p in f) or "none" for f in filters)
        note = (" (**differs between results**: they are not comparable)"
                if len(filters) > 1 else "")
        out += [f"Scoring filter (words removed from hypotheses and references before WER, "
                f"SER and oracle): {shown}{note}", ""]
    first = next((r for r in rows if r["system"] == "first_pass"), None)
    ppl_head, ppl_cell = _ppl_column(rows)
    for st in sets:
        # WER change relative to the first pass, in percent of its WER (-5.0: 5 % fewer errors).
        base = ((first or {}).get(st) or {}).get("wer")
        out += [f"## {st}", ""] + _set_size(rows, st) + [
                "| system | WER | rel. to first pass % | SER | oracle WER | params | % of teacher | "
                f"MB | {ppl_head} | hyps/s | sub | del | ins |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            sc = r.get(st) or {}
            rel = (100.0 * r["params"] / teacher["params"]) if (teacher and r["params"]) else None
            gain = (100.0 * (sc["wer"] - base) / base) if (base and sc.get("wer") is not None) else None
            wer = _fmt(sc.get("wer"))
            if sc.get("wer_min") is not None:
                wer += f" ({sc['wer_min']:.2f}-{sc['wer_max']:.2f})"
            out.append(f"| {_row_name(r['system'], sc)} | {wer} | {_fmt(gain, '+.1f')} | "
                       f"{_fmt(sc.get('ser'))} | "
                       f"{_fmt(sc.get('oracle_wer'))} | {_fmt(r['params'], ',d') if r['params'] else '-'} | "
                       f"{_fmt(rel, '.1f')} | {_fmt(r['size_mb'], '.2f')} | {ppl_cell(r)} | "
                       f"{_fmt(r.get(f'{st}_hyps_per_s'), '.0f')} | "
                       + " | ".join(_fmt(sc.get(k), ".0f") for k in ("sub", "del", "ins")) + " |")
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
    trained = [r for r in rows if r.get("training")]
    if trained:
        out += ["## Models", ""]
        out += [f"- {r['system']}: {r['training']}" + (
                f"; seed{'s' if len(r['seeds']) > 1 else ''} {', '.join(map(str, r['seeds']))}"
                if r.get("seeds") else "") for r in trained]
        out.append("")
    out += ["## Tuned weights (dev)", ""]
    for r in rows:
        if r["weights"]:
            # the weights only; what they were tuned on stays in results.json
            shown = {k: v for k, v in r["weights"].items() if k != TUNED_ON}
            out.append(f"- {r['system']}: `{json.dumps(shown)}`")
    out += ["", "Plots: `wer_vs_size.png`, `wer_vs_lm_weight.png`, `training_curves.png`.", ""]
    if res.get("missing"):
        out += ["## Missing inputs", "",
                "These files were not found; their cells show `-`:", ""]
        out += [f"- `{p}`" for p in res["missing"]]
        out.append("")
    return "\n".join(out)


def _read_metrics(path: str) -> tuple[list[int], list[float]]:
    """(epochs, validation perplexities) of a model folder's ``metrics.csv``."""
    try:
        with open(path, encoding="utf-8") as f:
            m = list(csv.DictReader(f))
        return [int(x["epoch"]) for x in m], [float(x["valid_ppl"]) for x in m]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise InputError(f"corrupt metrics.csv ({e!r})", path) from None


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
        # size on disk, not parameters: an int8 export has the fp32 model's parameters
        have = [r for r in rows if r.get("size_mb") and r.get(st)]
        ax.scatter([r["size_mb"] for r in have], [r[st]["wer"] for r in have],
                   marker=marker, color=color, label=st)
        for r in have:
            ax.annotate(r["system"], (r["size_mb"], r[st]["wer"]), fontsize=8,
                        xytext=(3, 3), textcoords="offset points")
        first = next((r for r in rows if not r.get("size_mb") and r.get(st)), None)
        if first:
            ax.axhline(first[st]["wer"], ls="--", lw=0.8, color=color,
                       label=f"{st} first pass")
    ax.legend(fontsize=8)
    ax.set_xlabel("LM size (MB)")
    ax.set_ylabel("WER (%)")
    ax.set_title("WER against LM size")
    save(fig, "wer_vs_size.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    keys = []
    for r in rows:
        c = r.get("curve")
        if c and c.get("points") and c.get("key") != "posterior_scale":  # not a weight
            xs, ys = zip(*c["points"])
            ax.plot(xs, ys, label=f"{r['system']} ({c['key']})")
            keys.append(c["key"])
    # tune's curve follows the LM's weight unless --lm-key named another one
    what = "LM weight" if all(k.startswith("lm") for k in keys) else "weight in the legend"
    ax.set_xlabel(f"{what} (others at their best)")
    ax.set_ylabel("dev WER (%)")
    ax.legend(fontsize=8)
    ax.set_title(f"WER against the {what} on dev")
    save(fig, "wer_vs_lm_weight.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for r in rows:
        for d in r["models"]:
            path = os.path.join(d, "metrics.csv")
            if os.path.isfile(path):
                epochs, ppls = _read_metrics(path)
                ax.plot(epochs, ppls, marker=".", label=f"{r['system']} ({os.path.basename(d)})")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation perplexity")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Training curves")
    save(fig, "training_curves.png")
    return written


def write_report(run: RunLayout, systems: list[System], sets: list[str], out_dir: str,
                 runs: list[str] | None = None) -> str:
    """Collect, write report.md / results.json / PNGs to ``out_dir``; return the Markdown.

    ``run``: where the result files are (:class:`asr_kd.results.RunLayout`; the size
    frontier, the details and the leakage check are read from its ``exp`` folder).
    With ``runs`` (the report folders of K runs, each with its ``results.json``), the
    report combines them (:func:`combine_runs`) with the pooled comparisons of ``run``.
    """
    exp = run.exp
    if runs:
        check_distinct_runs(runs)
    os.makedirs(out_dir, exist_ok=True)
    if runs:
        loaded = [load_results(d) for d in runs]
        res = combine_runs(loaded, load_comparisons(
            run, [r["system"] for r in loaded[0]["systems"]], loaded[0]["sets"]))
    else:
        res = collect(run, systems, sets)
    # The size frontier (run.sh --frontier), when exp holds one: against this report's
    # teacher and first pass.
    fr_missing: list[str] = []
    fr = collect_frontier(exp, res, fr_missing)
    if fr is not None:
        res["frontier"] = fr
        if fr_missing:
            res["missing"] = list(dict.fromkeys(res.get("missing", []) + fr_missing))
    md = markdown(res)
    if fr is not None:
        md = md.rstrip("\n") + "\n\n" + frontier_markdown(fr) + "\n"
    from .report_html import details_markdown, runs_markdown, write_html
    names = [r["system"] for r in res["systems"]]
    md = "\n".join(x for x in (md.rstrip("\n"), details_markdown(exp, out_dir, names, res["sets"]),
                                runs_markdown(runs or [], out_dir)) if x) + "\n"
    with atomic_write(os.path.join(out_dir, "report.md")) as f:
        f.write(md)
    with atomic_write(os.path.join(out_dir, "results.json")) as f:
        json.dump(res, f, indent=2)
    plots(res, out_dir)
    if fr is not None:
        frontier_plots(fr, out_dir)
    write_html(out_dir, md, None if runs else exp, names, res["sets"])
    return md
