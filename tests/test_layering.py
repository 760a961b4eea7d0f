"""The package's layering (docs/design.md, section 'Layering'), checked on the source.

Each module may import from its own layer or the layers below it; ``asr_kd/ops``
imports nothing from ``asr_kd`` outside ``ops``; nothing outside ``cli`` imports
``cli``.  The function-level crossings the design lists are the only exceptions.
"""
from __future__ import annotations

import ast
import pathlib

PKG = pathlib.Path(__file__).resolve().parents[1] / "asr_kd"

LAYERS = {
    0: ["errors", "fileio", "progress", "threads", "dist", "device", "jobs"],
    1: ["nbest", "vocab", "corpus", "textfilter", "noise", "ops"],
    2: ["lm", "models", "modeldir", "config", "checkpoint", "train", "distill", "teacher_cache",
        "perplexity", "export"],
    3: ["rescore", "scoring", "score_stream", "tune", "consensus", "tune_consensus",
        "significance", "tuned_on", "checks", "report", "details", "system_diff", "overlap",
        "report_html", "frontier", "frontier_sizes", "sharding"],
    4: ["cli", "__main__"],
    9: ["synth"],  # beside the stack: only the recipe's stage 0 uses it
}
LAYER = {m: k for k, ms in LAYERS.items() for m in ms}
# (importer, imported): function-level imports the design lists, kept local (no cycle at import)
ALLOWED = {("export", "rescore")}


def _top(path: pathlib.Path, root: pathlib.Path) -> str:
    rel = path.relative_to(root).parts
    return rel[0][:-3] if len(rel) == 1 else rel[0]


def _imports(path: pathlib.Path, root: pathlib.Path):
    """(top-level asr_kd module, line) of every import anywhere in ``path``, module- or
    function-level, relative or absolute."""
    pkg_parts = list(path.relative_to(root).parts[:-1])   # [] for asr_kd/x.py, ["ops"] for ops/x.py
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level - 1 > len(pkg_parts):
                    continue
                full = pkg_parts[:len(pkg_parts) - (node.level - 1)]
                full += node.module.split(".") if node.module else []
                yield (full[0] if full else node.names[0].name), node.lineno
            elif node.module and node.module.split(".")[0] == "asr_kd":
                parts = node.module.split(".")
                yield (parts[1] if len(parts) > 1 else node.names[0].name), node.lineno
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "asr_kd" and len(parts) > 1:
                    yield parts[1], node.lineno


def _modules(root: pathlib.Path):
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def violations(root: pathlib.Path = PKG) -> list[str]:
    """Every import of the package below ``root`` that breaks the layering."""
    bad = []
    for p in _modules(root):
        me = _top(p, root)
        if me == "__init__":
            continue
        where = f"{p.relative_to(root)}"
        for dep, line in _imports(p, root):
            if dep == me or dep not in LAYER or (me, dep) in ALLOWED:
                continue
            if me == "ops":
                bad.append(f"{where}:{line}: ops imports {dep} (ops imports only ops)")
            elif me == "synth":
                if LAYER[dep] > 1:
                    bad.append(f"{where}:{line}: synth imports {dep}")
            elif dep == "synth":
                bad.append(f"{where}:{line}: {me} imports synth (the synth extra)")
            elif LAYER[dep] > LAYER[me]:
                bad.append(f"{where}:{line}: {me} (layer {LAYER[me]}) imports {dep} "
                           f"(layer {LAYER[dep]})")
    return bad


def test_every_module_has_a_layer():
    missing = sorted({_top(p, PKG) for p in _modules(PKG)} - set(LAYER) - {"__init__"})
    assert not missing, f"add to LAYERS (and docs/design.md): {missing}"


def test_no_import_breaks_the_layering():
    bad = violations()
    assert not bad, "\n".join(bad)


def test_the_checker_finds_planted_violations(tmp_path):
    root = tmp_path / "asr_kd"
    (root / "ops").mkdir(parents=True)
    (root / "errors.py").write_text("import os\n\ndef f():\n    from .report import x\n")
    (root / "report.py").write_text("from .errors import InputError\nfrom asr_kd.models import m\n")
    (root / "models.py").write_text("from . import cli\n")
    (root / "ops" / "dispatch.py").write_text("from .kd_reference import KDConfig\n"
                                              "from ..errors import InputError\n")
    (root / "ops" / "kd_reference.py").write_text("")
    assert sorted(violations(root)) == [
        "errors.py:4: errors (layer 0) imports report (layer 3)",
        "models.py:1: models (layer 2) imports cli (layer 4)",
        "ops/dispatch.py:2: ops imports errors (ops imports only ops)",
    ]
