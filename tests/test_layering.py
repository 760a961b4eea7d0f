"""The package's layering (docs/design.md, section 'Layering'), checked on the source.

Each module may import from its own layer or the layers below it; ``asr_kd/ops``
imports nothing from ``asr_kd`` outside ``ops``; nothing outside ``cli`` imports
``cli``.  The function-level crossings the design lists are the only exceptions.

Placement: every file format has one home in the library.  No command module of
``cli/`` (one defining ``register``) is imported by another module: commands share
only the argparse helpers (``cli/common.py``, ``cli/scoringopts.py``, ...).  The
weights file is written only by ``weights_file.py`` and the result files
(``score --json``, ``compare --json``, rescoring stats, tuning curves) are built
only in ``results.py``; the KD types live in ``ops/kd_types.py``, not in the
reference loss.
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
        "report_html", "frontier", "frontier_sizes", "sharding", "compare", "results",
        "weights_file", "score_input", "score_set", "tune_set"],
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


# ------------------------------------------------------------------ placement

CLI = PKG / "cli"


def _cli_imports(path: pathlib.Path, where: list[str] | None = None) -> list[tuple[str, int]]:
    """(cli module name, line) of every import of a module of ``asr_kd/cli`` in ``path``
    (``where``: its package, e.g. ``["asr_kd", "cli"]``; default: from its place)."""
    if where is None:
        where = ["asr_kd", *path.parent.relative_to(PKG).parts]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = where[:len(where) - node.level + 1] if node.level else []
            full = base + (node.module.split(".") if node.module else [])
            if full[:2] != ["asr_kd", "cli"]:
                continue
            names = full[2:3] or [a.name for a in node.names]
            out += [(n, node.lineno) for n in names]
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[:2] == ["asr_kd", "cli"] and len(parts) > 2:
                    out.append((parts[2], node.lineno))
    return out


def _command_modules() -> set[str]:
    """The subcommand modules of ``cli/``: the ones that define ``register``."""
    return {p.stem for p in CLI.glob("*.py")
            if any(isinstance(n, ast.FunctionDef) and n.name == "register"
                   for n in ast.parse(p.read_text(encoding="utf-8")).body)}


def test_no_command_module_is_imported_by_another_module():
    commands = _command_modules()
    assert {"score", "tune", "compare", "rescore", "train_lm", "distill"} <= commands
    bad = [f"{p.relative_to(PKG)}:{line}: imports cli/{name}.py"
           for p in _modules(PKG) if p.name != "__init__.py" or p.parent != CLI
           for name, line in _cli_imports(p) if name in commands and name != p.stem]
    assert not bad, "\n".join(bad)


def test_the_cli_import_finder_sees_every_form(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from .cli.score import x\nimport asr_kd.cli.tune\n"
                     "from asr_kd.cli import compare\nfrom ..errors import InputError\n")
    assert _cli_imports(probe, ["asr_kd"]) == [("score", 1), ("tune", 2), ("compare", 3)]
    probe.write_text("from .score import x\nfrom . import tune\nfrom ..compare import y\n")
    assert _cli_imports(probe, ["asr_kd", "cli"]) == [("score", 1), ("tune", 2)]


def test_kd_types_live_in_kd_types():
    from asr_kd import ops
    from asr_kd.ops import kd_reference, kd_types
    from asr_kd.ops.kd_types import KDConfig, KDParts, TeacherLogits, TeacherTopK

    assert ops.KDConfig is KDConfig and ops.KDParts is KDParts
    for cls in (KDConfig, KDParts, TeacherLogits, TeacherTopK):
        assert cls.__module__ == kd_types.__name__
    defined = {n.name for n in ast.parse(pathlib.Path(kd_reference.__file__).read_text()).body
               if isinstance(n, ast.ClassDef)}
    assert not defined, f"classes in the reference loss: {defined}"


# keys that only the home module of a format puts into one dict it builds
FORMAT_KEYS = {
    "weights_file.py": [{"TUNED_ON"}],                   # weights + the tuning record
    "results.py": [{"hyps_per_s", "token_evals"},        # rescore --stats-out
                   {"key", "best", "points"},            # tune --curve-out
                   {"bootstrap", "sign_test"},           # compare --json
                   {"unit", "word_ppl"}],                # ppl --json
}


def _built_keys(path: pathlib.Path) -> list[set[str]]:
    """Per dict display in ``path`` (and per function, the keys assigned as
    ``d["key"] = ...``), its string keys and the names used as keys."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            out.append({k.value if isinstance(k, ast.Constant) else k.id
                        for k in node.keys if isinstance(k, (ast.Constant, ast.Name))})
        elif isinstance(node, (ast.FunctionDef, ast.Module)):
            assigned = {t.slice.value for n in ast.walk(node) if isinstance(n, ast.Assign)
                        for t in n.targets if isinstance(t, ast.Subscript)
                        and isinstance(t.slice, ast.Constant)}
            out.append(assigned)
    return out


def test_each_file_format_is_written_by_its_home_module_only():
    for home, signatures in FORMAT_KEYS.items():
        assert (PKG / home).exists()
        for p in _modules(PKG):
            if p.name == home:
                continue
            for keys in _built_keys(p):
                for sig in signatures:
                    assert not sig <= keys, f"{p.relative_to(PKG)} builds {sorted(sig)}: {home}'s"
    # the reserved key is spelled in the weights file's module only
    spelled = [p.relative_to(PKG) for p in _modules(PKG)
               for n in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
               if isinstance(n, ast.Constant) and n.value == "_tuned_on"]
    assert [str(p) for p in spelled] == ["weights_file.py"]
    # and the home modules do build them (the check above is not vacuous)
    for home, signatures in FORMAT_KEYS.items():
        built = _built_keys(PKG / home)
        assert all(any(sig <= keys for keys in built) for sig in signatures), home


def test_the_commands_of_those_files_do_not_serialise_them():
    for name in ("score", "tune", "compare", "rescore", "ppl"):
        tree = ast.parse((CLI / f"{name}.py").read_text(encoding="utf-8"))
        calls = {f"{n.func.value.id}.{n.func.attr}" for n in ast.walk(tree)
                 if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                 and isinstance(n.func.value, ast.Name)}
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not {"json.dump", "json.dumps"} & calls, name
        assert "atomic_write" not in names, name
