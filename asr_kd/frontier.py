"""The size frontier section of the report: WER and perplexity against model size.

Reads what ``recipes/wsj/run.sh --frontier SIZES`` (stage 10) leaves in ``exp/frontier``:

* ``sizes.json``                                  the sizes, in the order given;
* ``SIZE/seedR/models.json``                      system -> model folder (its config.json:
                                                  parameters, MB);
* ``SIZE/seedR/ppl/SYSTEM.json``                  ``asr-kd ppl --json`` (validation text,
                                                  sentence mode), ``SYSTEM.test.MODE.json``;
* ``SIZE/seedR/score/SYSTEM/SET.json``            ``asr-kd score --json``;
* ``SIZE/compare/SET.baseline_vs_SYSTEM.json``     ``asr-kd compare --json``, pooled over runs.

Systems per size: ``baseline`` (hard labels), ``student`` (distilled), ``student_MODE`` (other
trust modes), ``student_int8`` (the student exported to int8). The teacher and the first
pass are the report's own rows. Per system and set it gives the WER's mean and range over
the seed runs and the share of the teacher's gain kept, ``(first - x) / (first - teacher)``
in %; per student the bootstrap interval of student - baseline and the share of the
perplexity gap closed, ``(baseline - student) / (baseline - teacher)`` in %.

A file present but malformed is an InputError naming it; a missing one shows ``-`` and
is listed under the report's missing inputs.
"""
from __future__ import annotations

import os
import re

from .errors import InputError
from .fileio import atomic_write, read_json


def gain_kept(first: float | None, teacher: float | None, x: float | None) -> float | None:
    """Share (%) of the teacher's WER gain over the first pass that WER ``x`` keeps:
    100 at the teacher's WER, 0 at the first pass's, above 100 when better than the
    teacher. None when a value is missing or the teacher gains nothing (no share of
    nothing; a negative gain would turn the scale around)."""
    if first is None or teacher is None or x is None or first - teacher <= 0:
        return None
    return 100.0 * (first - x) / (first - teacher)


def gap_closed(baseline: float | None, teacher: float | None,
               student: float | None) -> float | None:
    """Share (%) of the perplexity gap from the baseline to the teacher that the student
    closes: 0 at the baseline's perplexity, 100 at the teacher's. None when a value is
    missing or the teacher is not better than the baseline."""
    if baseline is None or teacher is None or student is None or baseline - teacher <= 0:
        return None
    return 100.0 * (baseline - student) / (baseline - teacher)


def spread(values: list[float | None]) -> dict | None:
    """Mean, min, max and the values over seed runs; None when any run lacks the value
    (a mean over some runs only would not be the same quantity as the others')."""
    if not values or any(v is None for v in values):
        return None
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values),
            "values": list(values)}


def _ppl(d: dict | None) -> float | None:
    if not d:
        return None
    return d.get("word_ppl") if d.get("word_ppl") is not None else d.get("ppl")


def _seed_dirs(size_dir: str) -> list[str]:
    """``seed1``, ``seed2``, ... in numerical order (the runs of one size)."""
    found = [n for n in os.listdir(size_dir) if re.fullmatch(r"seed\d+", n)] \
        if os.path.isdir(size_dir) else []
    return [os.path.join(size_dir, n) for n in sorted(found, key=lambda n: int(n[4:]))]


def _made(runs: list[str]) -> set[str] | None:
    """The systems the first run's ``models.json`` names (None: no such file yet)."""
    path = os.path.join(runs[0], "models.json") if runs else None
    return set(read_json(path, "models.json")) if path and os.path.exists(path) else None


def _load(path: str, missing: list[str]) -> dict | None:
    if not os.path.exists(path):
        missing.append(path)
        return None
    return read_json(path, os.path.basename(path))


def _reference(res: dict, name: str) -> dict:
    """The report row of the teacher or the first pass: params, ppl, WER per set."""
    row = next((r for r in res["systems"] if r["system"] == name), None) or {}
    return {"params": row.get("params"), "ppl": _ppl(row),
            **{st: (row.get(st) or {}).get("wer") for st in res["sets"]}}


def _system(runs: list[str], name: str, sets: list[str], missing: list[str]) -> dict:
    models = [(_load(os.path.join(r, "models.json"), missing) or {}).get(name) for r in runs]
    cfg = None
    if models and models[0]:
        cfg = _load(os.path.join(models[0], "config.json"), missing)
    out = {"params": (cfg or {}).get("num_params"), "size_mb": (cfg or {}).get("size_mb"),
           "kd": (cfg or {}).get("kd"),
           "ppl": spread([_ppl(_load(os.path.join(r, "ppl", f"{name}.json"), missing))
                          for r in runs])}
    for mode in ("stream", "sentence"):
        paths = [os.path.join(r, "ppl", f"{name}.test.{mode}.json") for r in runs]
        if all(os.path.exists(p) for p in paths):
            out[f"test_ppl_{mode}"] = spread([_ppl(read_json(p, os.path.basename(p)))
                                              for p in paths])
    for st in sets:
        out[st] = spread([(_load(os.path.join(r, "score", name, f"{st}.json"), missing) or {})
                          .get("wer") for r in runs])
    return out


def collect_frontier(exp: str, res: dict, missing: list[str]) -> dict | None:
    """The frontier of ``exp`` (None when it has none), against the teacher and first
    pass rows of ``res`` (:func:`asr_kd.report.collect` or ``combine_runs`` output).
    Sizes are sorted by the baseline's parameters."""
    fdir = os.path.join(exp, "frontier")
    plan_path = os.path.join(fdir, "sizes.json")
    if not os.path.isfile(plan_path):
        return None
    plan = _read_plan(plan_path)
    sets = res["sets"]
    teacher, first = _reference(res, "teacher"), _reference(res, "first_pass")
    teacher.update(_teacher_test_ppl(exp))
    sizes = []
    for entry in plan:
        sdir = os.path.join(fdir, entry["name"])
        runs = _seed_dirs(sdir)
        if not runs:
            missing.append(os.path.join(sdir, "seed1"))
        names = ["baseline"] + ["student" if k == 0 else f"student_{m}"
                                for k, m in enumerate(entry.get("trust") or ["none"])]
        if entry.get("int8"):
            names.append("student_int8")
        made = _made(runs)
        # an int8 export the recipe could not make (it says so in its log) is no row
        no_int8 = entry.get("int8") and made is not None and "student_int8" not in made
        if no_int8:
            names.remove("student_int8")
        systems = {n: _system(runs, n, sets, missing) for n in names} if runs else {}
        base = systems.get("baseline") or {}
        for n, s in systems.items():
            # per run, then over runs: gain kept is linear in the WER, so its mean is the
            # gain kept by the mean WER
            s["gain_kept"] = {st: spread([gain_kept(first.get(st), teacher.get(st), w)
                                          for w in (s[st] or {}).get("values", [])])
                              for st in sets}
            if n != "baseline":
                s["ppl_gap_closed"] = gap_closed((base.get("ppl") or {}).get("mean"),
                                                 teacher["ppl"], (s["ppl"] or {}).get("mean"))
                for mode in ("stream", "sentence"):
                    if f"test_ppl_{mode}" in s:
                        s[f"test_ppl_{mode}_gap_closed"] = gap_closed(
                            (base.get(f"test_ppl_{mode}") or {}).get("mean"),
                            teacher.get(f"test_ppl_{mode}"),
                            (s[f"test_ppl_{mode}"] or {}).get("mean"))
        compare = {}
        for st in sets:
            for n in names[1:]:
                c = _load(os.path.join(sdir, "compare", f"{st}.baseline_vs_{n}.json"),
                          missing) if runs else None
                if c:
                    b = c.get("bootstrap", {})
                    compare.setdefault(st, {})[n] = {
                        "diff": b.get("diff"), "low": b.get("low"), "high": b.get("high"),
                        "p_b_better": b.get("p_b_better"),
                        "sign_p": c.get("sign_test", {}).get("p_value"), "runs": c.get("runs", 1)}
        params = base.get("params")
        sizes.append({"name": entry["name"], "arch": {k: entry.get(k) for k in (
            "num_layers", "hidden_dim", "embed_dim", "proj_dim")}, "runs": len(runs),
            "int8_not_made": bool(no_int8),
            "params": params,
            "pct_teacher": 100.0 * params / teacher["params"] if params and teacher["params"]
            else None, "systems": systems, "compare": compare})
    sizes.sort(key=lambda s: (s["params"] is None, s["params"] or 0))
    return {"sets": sets, "teacher": teacher, "first_pass": first, "sizes": sizes}


def _teacher_test_ppl(exp: str) -> dict:
    """The teacher's test perplexities (``--lm-test``; ``test_ppl_stream``,
    ``test_ppl_sentence``) from ``exp/ppl``, or the mean over ``exp/seedR/ppl`` of a
    report of seed runs; absent where not measured."""
    out = {}
    for mode in ("stream", "sentence"):
        name = f"teacher.test.{mode}.json"
        paths = [os.path.join(exp, "ppl", name)]
        if not os.path.exists(paths[0]):
            paths = [os.path.join(r, "ppl", name) for r in _seed_dirs(exp)]
        if paths and all(os.path.exists(p) for p in paths):
            vals = spread([_ppl(read_json(p, name)) for p in paths])
            if vals:
                out[f"test_ppl_{mode}"] = vals["mean"]
    return out


def _read_plan(path: str) -> list[dict]:
    """The sizes of ``sizes.json`` (``{"sizes": [{"name": ..., ...}, ...]}``)."""
    sizes = read_json(path, "sizes.json").get("sizes")
    if not isinstance(sizes, list) or not all(
            isinstance(x, dict) and isinstance(x.get("name"), str) for x in sizes):
        raise InputError("not a frontier plan (expected {\"sizes\": [{\"name\": ...}, ...]})",
                         path)
    return sizes


def _f(x, spec=".2f") -> str:
    return "-" if x is None else format(x, spec)


def _with_range(s: dict | None, spec=".2f") -> str:
    """``mean (min-max)`` over seed runs; the value alone for one run."""
    if not s:
        return "-"
    if len(s["values"]) == 1:
        return format(s["mean"], spec)
    return f"{s['mean']:{spec}} ({s['min']:{spec}}-{s['max']:{spec}})"


def _label(size: str, system: str) -> str:
    return size if system == "student" else f"{size} ({system})"


def frontier_markdown(fr: dict) -> str:
    """The frontier section of report.md: one table per set."""
    t, fp = fr["teacher"], fr["first_pass"]
    runs = sorted({s["runs"] for s in fr["sizes"]})
    out = ["## Size frontier", "",
           "Baseline (hard labels) and distilled student at each size, "
           f"{'/'.join(map(str, runs)) or 0} seed run(s) per size: WER mean (range over runs). "
           "*gain kept* = (first pass - WER) / (first pass - teacher): 100 % keeps all of the "
           "teacher's gain, 0 % none. *student - baseline*: bootstrap over utterances, pooled "
           "over the runs, with its 95 % interval (negative: the student is better). *gap "
           "closed* = (baseline ppl - student ppl) / (baseline ppl - teacher ppl). Perplexity: "
           "validation text, sentence mode. Plots: `frontier_wer.png`, `frontier_ppl.png` "
           "(parameters on a log axis).", ""]
    for st in fr["sets"]:
        t_params = _f(t.get("params"), ",d") if t.get("params") else "-"
        no_gain = None not in (fp.get(st), t.get(st)) and \
            gain_kept(fp.get(st), t.get(st), t.get(st)) is None
        out += [f"### {st}: teacher WER {_f(t.get(st))} ({t_params} parameters, ppl "
                f"{_f(t.get('ppl'), '.1f')}), first pass WER {_f(fp.get(st))}"
                + (" (the teacher gains nothing over the first pass here: no gain to keep)"
                   if no_gain else ""), "",
                "| size | params | % of teacher | baseline WER | student WER | student - baseline "
                "[95 % interval] | P(student better) | gain kept: baseline % | gain kept: student % "
                "| ppl: baseline | ppl: student | gap closed % |",
                "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for size in fr["sizes"]:
            sy = size["systems"]
            base = sy.get("baseline") or {}
            for name, s in sy.items():
                if name == "baseline":
                    continue
                c = size["compare"].get(st, {}).get(name) or {}
                out.append(
                    f"| {_label(size['name'], name)} | "
                    f"{_f(s.get('params'), ',d') if s.get('params') else '-'} | "
                    f"{_f(size['pct_teacher'], '.2f')} | {_with_range(base.get(st))} | "
                    f"{_with_range(s.get(st))} | {_f(c.get('diff'), '+.2f')} "
                    f"[{_f(c.get('low'), '+.2f')}, {_f(c.get('high'), '+.2f')}] | "
                    f"{_f(c.get('p_b_better'), '.3f')} | "
                    f"{_with_range(_gain_spread(base, st), '.1f')} | "
                    f"{_with_range(_gain_spread(s, st), '.1f')} | "
                    f"{_with_range(base.get('ppl'), '.1f')} | {_with_range(s.get('ppl'), '.1f')} | "
                    f"{_f(s.get('ppl_gap_closed'), '.1f')} |")
        out.append("")
    out += _test_ppl_markdown(fr)
    no_int8 = [s["name"] for s in fr["sizes"] if s.get("int8_not_made")]
    if no_int8:
        out += [f"No int8 student at {', '.join(no_int8)}: asked for, but `asr-kd export` "
                "refused it (the recipe's log says why; LSTMP sizes have no ONNX export).", ""]
    return "\n".join(out)


def _test_ppl_markdown(fr: dict) -> list[str]:
    """The test-text perplexities (``run.sh --lm-test``, e.g. PTB's test set), when measured."""
    modes = [m for m in ("stream", "sentence") if any(
        f"test_ppl_{m}" in s for size in fr["sizes"] for s in size["systems"].values())]
    if not modes:
        return []
    t = fr["teacher"]
    out = ["### Test perplexity: teacher " + ", ".join(
        f"{_f(t.get(f'test_ppl_{m}'), '.1f')} ({m} mode)" for m in modes), "",
        "| size | params | " + " | ".join(f"{m}: baseline | {m}: student | {m}: gap closed %"
                                          for m in modes) + " |",
        "|---|---|" + "---|---|---|" * len(modes)]
    for size in fr["sizes"]:
        base = size["systems"].get("baseline") or {}
        for name, s in size["systems"].items():
            if name == "baseline":
                continue
            cells = [f"{_with_range(base.get(f'test_ppl_{m}'), '.1f')} | "
                     f"{_with_range(s.get(f'test_ppl_{m}'), '.1f')} | "
                     f"{_f(s.get(f'test_ppl_{m}_gap_closed'), '.1f')}" for m in modes]
            out.append(f"| {_label(size['name'], name)} | "
                       f"{_f(s.get('params'), ',d') if s.get('params') else '-'} | "
                       + " | ".join(cells) + " |")
    return out + [""]


def _gain_spread(s: dict, st: str) -> dict | None:
    return (s.get("gain_kept") or {}).get(st)


def _curve(fr: dict, name: str, key) -> tuple[list, list, list, list]:
    """(params, mean, min, max) of one system over the sizes that have both."""
    xs, ms, lo, hi = [], [], [], []
    for size in fr["sizes"]:
        s = size["systems"].get(name)
        v = key(s) if s else None
        if s and s.get("params") and v:
            xs.append(s["params"])
            ms.append(v["mean"])
            lo.append(v["min"])
            hi.append(v["max"])
    return xs, ms, lo, hi


def frontier_plots(fr: dict, out_dir: str) -> list[str]:
    """``frontier_wer.png`` (one panel per set) and ``frontier_ppl.png``: baseline and
    students as lines with their seed range as a band, int8 students as points, the
    teacher and first pass as horizontal lines; parameters on a log axis."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = []
    for size in fr["sizes"]:
        students += [n for n in size["systems"] if n not in students and n != "baseline"]
    colors = {"baseline": "C0", "student": "C1"}
    written = []

    def draw(ax, key):
        for k, name in enumerate(["baseline"] + students):
            xs, ms, lo, hi = _curve(fr, name, key)
            if not xs:
                continue
            color = colors.get(name, f"C{k + 2}")
            if name == "student_int8":  # the same parameters as the student: points
                ax.scatter(xs, ms, marker="x", color=color, zorder=3, label=name)
                continue
            # the seed range as error bars and, between sizes, as a band
            ax.errorbar(xs, ms, yerr=[[m - a for m, a in zip(ms, lo)],
                                      [b - m for m, b in zip(ms, hi)]],
                        marker="o", capsize=3, color=color, label=name)
            if any(a != b for a, b in zip(lo, hi)):
                ax.fill_between(xs, lo, hi, color=color, alpha=0.2, lw=0)
        ax.set_xscale("log")
        ax.set_xlabel("parameters")

    def save(fig, ax, name):
        ax.legend(fontsize=7)
        path = os.path.join(out_dir, name)
        fig.tight_layout()
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format="png", dpi=110)
        plt.close(fig)
        written.append(path)

    sets = fr["sets"]
    fig, axes = plt.subplots(1, len(sets), figsize=(5.0 * len(sets), 3.8), squeeze=False)
    for ax, st in zip(axes[0], sets):
        draw(ax, lambda s, st=st: s.get(st))
        if fr["teacher"].get(st) is not None:
            ax.axhline(fr["teacher"][st], color="C2", lw=1, label="teacher")
        if fr["first_pass"].get(st) is not None:
            ax.axhline(fr["first_pass"][st], color="gray", ls="--", lw=1, label="first pass")
        ax.set_ylabel(f"{st} WER (%)")
        ax.set_title(f"WER against size ({st})")
        if ax is not axes[0][-1]:
            ax.legend(fontsize=7)
    save(fig, axes[0][-1], "frontier_wer.png")

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    draw(ax, lambda s: s.get("ppl"))
    if fr["teacher"].get("ppl") is not None:
        ax.axhline(fr["teacher"]["ppl"], color="C2", lw=1, label="teacher")
    ax.set_ylabel("validation perplexity")
    ax.set_title("Perplexity against size")
    save(fig, ax, "frontier_ppl.png")
    return written
