"""`convert-nbest --to srilm` writes its folder whole or not at all, in linear time, alone.

* killed after any of its renames (deterministic, ``faultkill``), the folder reads
  back as the earlier set or the whole new one, never as a smaller valid set, and
  the next run leaves no hidden file behind;
* the folder is not listed once per file written: a constant number of listings;
* a second writer of the same folder is refused while the first is writing.
"""
from __future__ import annotations

import json
import os
import random
import shutil
import signal

import pytest

import faultkill as fk
from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.nbest import read_nbest
from asr_kd.nbest.srilm import write_srilm

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = "the a cat dog bird sees likes runs eats big small red now and".split()


def write_jsonl(path, n_utts, seed, extra=True):
    """``n_utts`` utterances of 4 hypotheses with am, lm0 (and lm:x) scores."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for u in range(n_utts):
            hyps = []
            for _ in range(4):
                sc = {"am": -rng.uniform(50, 500), "lm0": -rng.uniform(5, 50)}
                if extra:
                    sc["lm:x"] = -rng.uniform(5, 50)
                hyps.append({"text": " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 8))),
                             "scores": sc})
            f.write(json.dumps({"utt": f"u{u:04d}", "hyps": hyps}) + "\n")
    return str(path)


def read_back(folder):
    """The (utterance, hypothesis texts, am) of a SRILM folder, or None if it does not read."""
    try:
        nb = read_nbest(str(folder), "srilm", scores={"lm:x": os.path.join(folder, "lm:x")})
    except InputError:
        return None
    return [(u.utt, [h.text for h in u.hyps], [round(h.scores["am"], 6) for h in u.hyps],
             [round(h.scores["lm:x"], 6) for h in u.hyps]) for u in nb]


def hidden_files(root):
    return sorted(os.path.relpath(os.path.join(d, n), root)
                  for d, dirs, files in os.walk(root) for n in files + dirs if n.startswith("."))


@pytest.mark.slow  # faultkill: killed at every rename
@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
@pytest.mark.parametrize("earlier", [False, True])
def test_kill_at_every_rename_leaves_whole_set_or_earlier(tmp_path, earlier, exchange,
                                                          monkeypatch):
    """``two-renames``: a filesystem without an atomic exchange; a kill between moving the
    earlier folder aside and the new one in leaves no folder, and the next write (any
    :func:`new_temp_dir` for it) moves the earlier one back first."""
    from asr_kd import fileio

    if not exchange:
        if not hasattr(fileio, "_exchange"):
            pytest.fail("no folder swap in asr_kd.fileio")
        monkeypatch.setattr(fileio, "_exchange", lambda a, b: False)
    old_in = write_jsonl(tmp_path / "old.jsonl", 12, 1)
    new_in = write_jsonl(tmp_path / "new.jsonl", 12, 2)
    ref_old, ref_new = tmp_path / "ref_old", tmp_path / "ref_new"
    assert main(["convert-nbest", "--to", "srilm", old_in, str(ref_old)]) == 0
    assert main(["convert-nbest", "--to", "srilm", new_in, str(ref_new)]) == 0
    sets = {"old": read_back(ref_old), "new": read_back(ref_new)}
    assert sets["old"] and sets["new"] and sets["old"] != sets["new"]
    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    argv = ["convert-nbest", "--to", "srilm", new_in, str(out)]

    def reset():
        if earlier:
            assert fk.run_killed_after(["convert-nbest", "--to", "srilm", old_in, str(out)],
                                       None) == 0

    def check(k):
        got = read_back(out) if out.exists() else "absent"
        if got == "absent" and earlier and not exchange:
            aside = [n for n in os.listdir(work) if n.endswith("-old")]
            assert len(aside) == 1, f"kill after rename {k}: the earlier folder is gone"
            shutil.rmtree(fileio.new_temp_dir(out))  # the next writer's first step
            got = read_back(out)
            restored.append(k)
        allowed = ["absent"] if not earlier else [sets["old"]]
        assert got == sets["new"] or got in allowed, \
            f"kill after rename {k}: the folder reads back as {len(got or [])} utterances"
        assert fk.run_killed_after(argv, None) == 0  # the same command again finishes
        assert read_back(out) == sets["new"]
        assert hidden_files(work) == [], f"kill after rename {k}: left {hidden_files(work)}"
        reset()

    restored = []
    reset()
    kills = fk.kill_at_every_step(argv, check)
    assert kills >= 1
    assert bool(restored) == (earlier and not exchange)


def test_folder_is_listed_a_constant_number_of_times(tmp_path, monkeypatch):
    from asr_kd.nbest import read_nbest as rd

    small = rd(write_jsonl(tmp_path / "s.jsonl", 300, 3), "jsonl")
    calls = []
    real_listdir, real_scandir = os.listdir, os.scandir
    monkeypatch.setattr(os, "listdir", lambda *a: calls.append(a) or real_listdir(*a))
    monkeypatch.setattr(os, "scandir", lambda *a: calls.append(a) or real_scandir(*a))
    write_srilm(small, tmp_path / "out")          # a new folder
    write_srilm(small, tmp_path / "out")          # over its own earlier output
    assert len(calls) <= 40, f"{len(calls)} folder listings for 2 x 600 files"
    monkeypatch.undo()
    assert len(os.listdir(tmp_path / "out")) == 302  # 300 lists, the lm:x folder, nbest-files


def test_second_writer_is_refused_while_the_first_writes(tmp_path, capsys):
    a_in = write_jsonl(tmp_path / "a.jsonl", 10, 4)
    b_in = write_jsonl(tmp_path / "b.jsonl", 10, 5)
    ref = tmp_path / "ref"
    assert main(["convert-nbest", "--to", "srilm", a_in, str(ref)]) == 0
    out = tmp_path / "out"
    # The first writer stops right after its first rename, still writing the folder.
    pid = fk.start(["convert-nbest", "--to", "srilm", a_in, str(out)], 1, signal.SIGSTOP)
    try:
        assert fk.stopped(pid)
        capsys.readouterr()
        assert main(["convert-nbest", "--to", "srilm", b_in, str(out)]) == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert line.startswith("asr-kd convert-nbest: error: ") and str(out) in line
        assert f"pid {pid}" in line
    finally:
        os.kill(pid, signal.SIGCONT)
        assert fk.wait(pid) == 0
    assert read_back(out) == read_back(ref)  # the first writer's set, whole
    assert main(["convert-nbest", "--to", "srilm", b_in, str(out)]) == 0  # lock released


def test_refuses_a_folder_with_other_content(tmp_path, capsys):
    src = write_jsonl(tmp_path / "a.jsonl", 5, 6)
    out = tmp_path / "out"
    assert main(["convert-nbest", "--to", "srilm", src, str(out)]) == 0
    (out / "mine").mkdir()
    (out / "mine" / "notes.txt").write_text("keep")
    capsys.readouterr()
    assert main(["convert-nbest", "--to", "srilm", src, str(out)]) == 2
    assert "mine/" in capsys.readouterr().err
    assert (out / "mine" / "notes.txt").read_text() == "keep"
