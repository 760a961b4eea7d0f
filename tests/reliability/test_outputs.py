"""Outputs that cannot be written: a full disk, a read-only folder, a file in the way.

Each gives one line ``asr-kd <command>: error: <path>: ...`` and exit status 2,
and leaves an earlier result under the same name byte for byte as it was.

"Full" is simulated portably, also as root: a subprocess whose RLIMIT_FSIZE is
small and which ignores SIGXFSZ, so writes past the limit fail with EFBIG.  One
subprocess (one torch import) runs every full-disk case through the CLI's
``main``, with the limit set per case.  Read-only folders (chmod 0o555) are
skipped as root, who writes anyway.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

import killharness as kh
from asr_kd.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

# Run by a subprocess: each case = (argv, RLIMIT_FSIZE bytes); prints one JSON list of
# {"rc", "err"}.  The hard limit stays unlimited so the soft one can change per case.
RUNNER = r"""
import contextlib, io, json, resource, signal, sys
from asr_kd.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
out = []
for argv, limit in json.loads(sys.argv[1]):
    err = io.StringIO()
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(argv)
    resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    out.append({"rc": rc, "err": err.getvalue()})
print(json.dumps(out))
"""


def snapshot(folder_or_file: str) -> dict[str, bytes]:
    """Every file's bytes (logs excluded: a new run appends to them)."""
    if os.path.isfile(folder_or_file):
        with open(folder_or_file, "rb") as f:
            return {"": f.read()}
    snap = {}
    for rel in kh._rel_files(folder_or_file):
        with open(os.path.join(folder_or_file, rel), "rb") as f:
            snap[rel] = f.read()
    return snap


def temporaries(target: str) -> list[str]:
    """Temporaries left beside an output file, or anywhere in an output folder."""
    if os.path.isdir(target):
        return [r for r in kh._rel_files(target) if kh._is_temp(r)] + \
            [d for d in os.listdir(target) if d.endswith(".tmp")]
    folder, name = os.path.split(target)
    return [n for n in os.listdir(folder) if n.startswith(f".tmp-{name}.")]


def error_line(err: str, command: str) -> str:
    """The one error line (log lines and a log-file warning may come before it)."""
    assert "Traceback" not in err, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines and lines[-1].startswith(f"asr-kd {command}: error: "), err
    others = [ln for ln in lines[:-1] if " INFO " not in ln and " WARNING " not in ln
              and not ln.startswith("asr-kd: warning: ")]
    assert not others, err
    return lines[-1]


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    return kh.make_workspace(str(tmp_path_factory.mktemp("outputs")), scale=0.25)


def train_args(ws, out, *extra):
    return ["train-lm", "--config", ws.config, "--train", ws.train, "--valid", ws.valid,
            "--out", out, "--quiet", "--device", "cpu", "--epochs", "1", *extra]


def rescore_args(ws, out):
    return ["rescore", "--nbest", ws.nbest, "--model", ws.teacher, "--name", "t", "--out", out,
            "--quiet", "--device", "cpu"]


def cache_args(ws, out):
    return ["cache-teacher", "--teacher", ws.teacher, "--text", ws.train, "--config", ws.config,
            "--topk", "4", "--shard-tokens", "150", "--out", out, "--quiet", "--device", "cpu"]


def score_args(ws, out):
    return ["score", "--nbest", ws.nbest, "--weight", "am=1", "--weight", "lm0=0.5",
            "--out-hyp", out]


def vocab_args(ws, out):
    return ["vocab", "--text", ws.train, "--out", out]


@pytest.fixture(scope="module")
def earlier(ws):
    """Earlier results, made in-process without limits: one per command."""
    root = os.path.join(ws.root, "earlier")
    other_text = os.path.join(ws.root, "other.txt")
    with open(other_text, "w", encoding="utf-8") as f:
        f.write("a different text\nwith other words\n" * 30)
    paths = {"rescore": os.path.join(root, "dev.t.jsonl"),
             "train-lm": os.path.join(root, "model"),
             "train-lm-epoch": os.path.join(root, "model2"),
             "train-lm-log": os.path.join(root, "model3"),
             "cache-teacher": os.path.join(root, "cache"),
             "score": os.path.join(root, "hyp.txt"),
             "vocab": os.path.join(root, "vocab")}
    assert main(rescore_args(ws, paths["rescore"])) == 0
    assert main(train_args(ws, paths["train-lm"])) == 0
    # trained on another text: its words.txt differs from what a rerun would write
    assert main(train_args(ws, paths["train-lm-epoch"]) + ["--train", other_text]) == 0
    assert main(train_args(ws, paths["train-lm-log"])) == 0
    assert main(cache_args(ws, paths["cache-teacher"])) == 0
    assert main(score_args(ws, paths["score"])) == 0
    assert main(vocab_args(ws, paths["vocab"])) == 0
    return paths


# -- full disk -------------------------------------------------------------------------

FULL_CASES = {
    # name: (argv for the earlier result's path, RLIMIT_FSIZE, file the error names)
    "rescore": (lambda ws, p: rescore_args(ws, p), 1000, lambda p: p),
    # the first checkpoint (train_state.pt, ~40 kB) does not fit
    "train-lm": (lambda ws, p: train_args(ws, p), 4096,
                 lambda p: os.path.join(p, "train_state.pt")),
    # no mid-epoch checkpoints: the model folder itself fails (its words.txt would fit)
    "train-lm-epoch": (lambda ws, p: train_args(ws, p, "--checkpoint-every", "0"), 4096,
                       lambda p: os.path.join(p, "model.safetensors")),
    # a rerun of a finished cache only rewrites manifest.json (~350 bytes)
    "cache-teacher": (lambda ws, p: cache_args(ws, p), 200,
                      lambda p: os.path.join(p, "manifest.json")),
    # not even the log file can grow: one warning line, then the error
    "train-lm-log": (lambda ws, p: train_args(ws, p), 100,
                     lambda p: os.path.join(p, "train_state.pt")),
    "score": (lambda ws, p: score_args(ws, p), 10, lambda p: p),
    "vocab": (lambda ws, p: vocab_args(ws, p), 10, lambda p: os.path.join(p, "words.txt")),
    # a new cache: the first shard's arrays do not fit
    "cache-new": (lambda ws, p: cache_args(ws, p + "-new"), 1000,
                  lambda p: os.path.join(p + "-new", "shard-00000.tmp")),
}


@pytest.fixture(scope="module")
def full_runs(ws, earlier):
    """Every full-disk case in one subprocess; returns {name: (rc, stderr, before, after)}."""
    before = {n: snapshot(earlier[n if n != "cache-new" else "cache-teacher"]) for n in FULL_CASES}
    cases = [(make(ws, earlier[n if n != "cache-new" else "cache-teacher"]), limit)
             for n, (make, limit, _) in FULL_CASES.items()]
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(cases)], env=kh.cli_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    results = json.loads(proc.stdout.strip().splitlines()[-1])
    return {n: (r["rc"], r["err"], before[n],
                snapshot(earlier[n if n != "cache-new" else "cache-teacher"]))
            for n, r in zip(FULL_CASES, results)}


@pytest.mark.slow  # fault harness: every command under a file-size limit
@pytest.mark.parametrize("name", list(FULL_CASES))
def test_full_disk_one_line_error_and_earlier_result_intact(ws, earlier, full_runs, name):
    rc, err, before, after = full_runs[name]
    command = "train-lm" if name.startswith("train-lm") else name.replace("-new", "-teacher") \
        if name == "cache-new" else name
    line = error_line(err, command)
    assert rc == 2, err
    path = FULL_CASES[name][2](earlier[name if name != "cache-new" else "cache-teacher"])
    assert line.startswith(f"asr-kd {command}: error: {path}: cannot write"), line
    assert "File too large" in line, line
    if name == "train-lm-log":
        log = os.path.join(earlier[name], "train.log")
        assert (f"asr-kd: warning: {log}: cannot write the log (File too large); "
                "logging to stderr only") in err.splitlines()
    assert after == before  # the earlier result, byte for byte
    target = earlier[name if name != "cache-new" else "cache-teacher"]
    assert not temporaries(target + ("-new" if name == "cache-new" else ""))


# -- a file where a folder should be -----------------------------------------------------

PARENT_IS_FILE = {
    "rescore": lambda ws, p: rescore_args(ws, os.path.join(p, "dev.t.jsonl")),
    "train-lm": lambda ws, p: train_args(ws, os.path.join(p, "model")),
    "cache-teacher": lambda ws, p: cache_args(ws, os.path.join(p, "cache")),
    "score": lambda ws, p: score_args(ws, os.path.join(p, "hyp.txt")),
    "vocab": lambda ws, p: vocab_args(ws, os.path.join(p, "vocab")),
}


@pytest.mark.parametrize("command", list(PARENT_IS_FILE))
def test_output_below_a_regular_file(ws, tmp_path, capsys, command):
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me\n")
    assert main(PARENT_IS_FILE[command](ws, str(blocker))) == 2
    line = error_line(capsys.readouterr().err, command)
    assert f"cannot write here: {blocker} is a file, not a folder" in line, line
    assert blocker.read_text() == "keep me\n"


def test_output_folder_name_taken_by_a_file(ws, tmp_path, capsys):
    taken = tmp_path / "model"
    taken.write_text("not a folder\n")
    assert main(train_args(ws, str(taken))) == 2
    line = error_line(capsys.readouterr().err, "train-lm")
    assert line == (f"asr-kd train-lm: error: {taken}: cannot write here: a file exists under "
                    "this name, expected a folder")
    assert taken.read_text() == "not a folder\n"


# -- read-only folder ----------------------------------------------------------------------

READ_ONLY = {
    "rescore": lambda ws, e: (rescore_args(ws, e["rescore"]), os.path.dirname(e["rescore"])),
    "train-lm": lambda ws, e: (train_args(ws, e["train-lm"]), e["train-lm"]),
    "cache-teacher": lambda ws, e: (cache_args(ws, e["cache-teacher"]), e["cache-teacher"]),
    "score": lambda ws, e: (score_args(ws, e["score"]), os.path.dirname(e["score"])),
    "vocab": lambda ws, e: (vocab_args(ws, e["vocab"]), e["vocab"]),
}


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
@pytest.mark.parametrize("command", list(READ_ONLY))
def test_read_only_folder(ws, earlier, capsys, command):
    argv, folder = READ_ONLY[command](ws, earlier)
    target = earlier[command]
    before = snapshot(target)
    mode = stat.S_IMODE(os.stat(folder).st_mode)
    os.chmod(folder, 0o555)
    try:
        assert main(argv) == 2
    finally:
        os.chmod(folder, mode)
    line = error_line(capsys.readouterr().err, command)
    assert f"cannot write here: folder {folder} is not writable" in line, line
    assert snapshot(target) == before


def test_atomic_write_cleans_up_and_names_file_when_the_folder_vanishes(tmp_path):
    """A rename that fails (the folder removed meanwhile) is one InputError, no temporary."""
    from asr_kd.errors import InputError
    from asr_kd.fileio import atomic_write

    d = tmp_path / "d"
    with pytest.raises(InputError) as e:
        with atomic_write(d / "x.txt") as f:
            f.write("hello")
            shutil.rmtree(d)
    assert str(d / "x.txt") in str(e.value) and "\n" not in str(e.value)


def test_atomic_write_removes_temporaries_of_dead_writers_only(tmp_path, monkeypatch):
    """A killed writer's temporary goes at the next write of that file; a live
    writer's, another host's and another file's stay.  The folder is fsynced."""
    import socket
    import subprocess

    from asr_kd import fileio

    host = socket.gethostname().split(".")[0]
    dead = subprocess.Popen(["true"])
    dead.wait()  # its pid is free now
    names = {"dead": f".tmp-x.txt.{host}-{dead.pid}.abc", "live": f".tmp-x.txt.{host}-1.abc",
             "other-host": f".tmp-x.txt.elsewhere-{dead.pid}.abc",
             "other-file": f".tmp-y.txt.{host}-{dead.pid}.abc"}
    for n in names.values():
        (tmp_path / n).write_text("partial")
    synced = []
    monkeypatch.setattr(fileio, "fsync_dir", lambda d: synced.append(d))
    with fileio.atomic_write(tmp_path / "x.txt") as f:
        f.write("done\n")
    left = {n for n in os.listdir(tmp_path) if n.startswith(".tmp-")}
    assert left == {names["live"], names["other-host"], names["other-file"]}
    assert (tmp_path / "x.txt").read_text() == "done\n"
    assert synced == [str(tmp_path)]


def test_kaldi_output_folder_is_staged_and_keeps_other_files(ws, tmp_path, capsys):
    """rescore --out-format kaldi into an existing folder: archives are written beside
    it and moved in; the folder's other files stay, a dead writer's staging folder goes."""
    import socket
    import subprocess

    out = tmp_path / "kaldi"
    out.mkdir()
    (out / "lmwt.other").write_text("u-1 1.0\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".tmp-kaldi.{socket.gethostname().split('.')[0]}-{dead.pid}.abc"
    stale.mkdir()
    (stale / "acwt").write_text("partial")
    assert main(rescore_args(ws, str(out)) + ["--out-format", "kaldi"]) == 0
    capsys.readouterr()
    assert sorted(os.listdir(out)) == ["acwt", "lmwt.other", "lmwt.t", "lmwt.withlm",
                                       "words_text"]
    assert (out / "lmwt.other").read_text() == "u-1 1.0\n"
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]
