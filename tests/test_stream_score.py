"""`asr-kd score` on JSONL reads the set in chunks (asr_kd/score_stream.py): the same
stdout, stderr, exit status and output files as the whole-set path, whatever the chunk
size, and a peak memory that does not grow with the set."""
from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from asr_kd import score_set
from asr_kd.cli import main

ROOT = Path(__file__).resolve().parents[1]
WORDS = "the a of to and in is it that was for on are as with his they at be this".split()


def _set(n_utt: int, seed: int = 0, ref: str | None = "lower", noise: bool = True,
         repeats: bool = True, empty_lists: bool = True, ids: bool = True) -> list[dict]:
    """Utterances as native JSONL objects: 0-6 hypotheses each, three scores, -pau- and
    [noise] tokens, repeated hypotheses, some empty hypotheses and empty lists."""
    rnd = random.Random(seed)
    out = []
    for i in range(n_utt):
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(1, 9))]
        n = rnd.randint(0 if empty_lists else 1, 6)
        hyps = []
        for k in range(n):
            w = list(words)
            for _ in range(rnd.randint(0, 3)):
                j = rnd.randrange(len(w) + 1)
                op = rnd.choice("sdi")
                if op == "s" and j < len(w):
                    w[j] = rnd.choice(WORDS)
                elif op == "d" and j < len(w):
                    del w[j]
                else:
                    w.insert(j, rnd.choice(WORDS))
            if noise and rnd.random() < 0.2:
                w.insert(rnd.randrange(len(w) + 1), rnd.choice(["-pau-", "[noise]"]))
            text = " ".join(w) if rnd.random() > 0.05 else ""
            if repeats and hyps and rnd.random() < 0.15:
                text = hyps[-1]["text"]
            hyps.append({"text": text, "scores": {
                "am": round(rnd.uniform(-300, -100), 3), "lm0": round(rnd.uniform(-60, -5), 3),
                "lm:x": round(rnd.uniform(-80, -5), 3)}})
        obj = {"utt": f"spk{i % 4}-u{i:05d}" if ids else str(i), "hyps": hyps}
        if not ids:
            obj["positional_id"] = True
        if ref == "lower":
            obj["ref"] = " ".join(words)
        elif ref == "upper":
            obj["ref"] = " ".join(words).upper()
        elif ref == "noise":
            obj["ref"] = "-pau-"
        out.append(obj)
    return out


def _write(path: Path, utts: list[dict]) -> Path:
    data = "".join(json.dumps(u) + "\n" for u in utts).encode()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def _run(argv: list[str], out_dir: Path, capsys, monkeypatch, chunk: int | None):
    """Run score; chunk None: the whole-set path.  Returns (rc, stdout, stderr, outputs)."""
    out_dir.mkdir()
    argv = argv + ["--out-hyp", str(out_dir / "hyp.txt"), "--out-trn", str(out_dir / "hyp.trn")]
    with monkeypatch.context() as m:
        if chunk is None:
            m.setattr(score_set, "streamable", lambda req, mode: False)
        else:
            m.setenv("ASR_KD_SCORE_CHUNK", str(chunk))
        capsys.readouterr()
        rc = main(argv)
        out, err = capsys.readouterr()
    files = {p.name: p.read_bytes() for p in sorted(out_dir.iterdir())}
    return rc, out, err, files


def _same(tmp_path, argv, capsys, monkeypatch, chunks=(1, 4, 7, 10000), error_only=False):
    """The streamed runs (each chunk size) give exactly what the whole-set run gives.
    ``error_only``: of stderr, compare the error line only (an error found while reading
    stops the stream before the notes about the whole set)."""
    want = _run(argv, tmp_path / "whole", capsys, monkeypatch, None)
    for c in chunks:
        got = _run(argv, tmp_path / f"chunk{c}", capsys, monkeypatch, c)
        if error_only:
            assert want[0] == 2 and "error:" in want[2].splitlines()[-1]
            got = got[:2] + (got[2].splitlines()[-1],) + got[3:]
            assert got == want[:2] + (want[2].splitlines()[-1],) + want[3:], f"chunk size {c}"
        else:
            assert got == want, f"chunk size {c}"
    return want


@pytest.mark.parametrize("name", ["set.jsonl", "set.jsonl.gz"])
@pytest.mark.parametrize("extra", [[], ["--json"], ["--weight", "wip=0.7", "--weight", "rank=1"],
                                   ["--ignore-case", "--noise", "[noise]", "--json"]])
def test_streamed_results_equal_the_whole_set_path(tmp_path, capsys, monkeypatch, name, extra):
    nb = _write(tmp_path / name, _set(23))
    rc, out, err, files = _same(tmp_path, ["score", "--nbest", str(nb), "--weight", "am=1",
                                           "--weight", "lm:x=3.5", *extra], capsys, monkeypatch)
    assert rc == 0 and ("%WER" in out or '"wer"' in out)
    assert len(files["hyp.txt"].splitlines()) == 23


def test_references_from_a_file_with_warnings(tmp_path, capsys, monkeypatch):
    utts = _set(17, seed=3)
    nb = _write(tmp_path / "set.jsonl", utts)
    lines = [f"{u['utt']} {u['ref']}" for u in utts]
    lines[2] = lines[2] + " extra"                    # a stored reference replaced
    ref = tmp_path / "ref.txt"
    ref.write_text("\n".join(lines + ["zz-extra-1 a b", "zz-extra-2 c"]) + "\n")
    rc, out, err, _ = _same(tmp_path, ["score", "--nbest", str(nb), "--weight", "am=1",
                                       "--ref", str(ref)], capsys, monkeypatch)
    assert rc == 0 and "replaces the references" in err and "2 references have no N-best" in err


def test_missing_references_from_a_file_write_nothing(tmp_path, capsys, monkeypatch):
    utts = _set(15, seed=4)
    nb = _write(tmp_path / "set.jsonl", utts)
    ref = tmp_path / "ref.txt"
    ref.write_text("".join(f"{u['utt']} {u['ref']}\n" for u in utts[1:-1]))
    rc, out, err, files = _same(tmp_path, ["score", "--nbest", str(nb), "--weight", "am=1",
                                           "--ref", str(ref)], capsys, monkeypatch)
    assert rc == 2 and "2 of 15 N-best utterances have no reference" in err and files == {}


def test_positional_ids_matched_to_references(tmp_path, capsys, monkeypatch):
    utts = _set(9, seed=5, ids=False)
    nb = _write(tmp_path / "set.jsonl", utts)
    ref = tmp_path / "ref.txt"
    ref.write_text("".join(f"{u['utt']} {u['ref']}\n" for u in utts))
    rc, _, err, _ = _same(tmp_path, ["score", "--nbest", str(nb), "--weight", "am=1",
                                     "--ref", str(ref)], capsys, monkeypatch)
    assert rc == 0 and "positions 0..8" in err


@pytest.mark.parametrize("extra", [[], ["--json"]])
def test_no_references(tmp_path, capsys, monkeypatch, extra):
    nb = _write(tmp_path / "set.jsonl", _set(11, ref=None))
    rc, out, err, files = _same(tmp_path, ["score", "--nbest", str(nb), "--weight", "am=1",
                                           *extra], capsys, monkeypatch)
    assert rc == 0 and "no WER computed" in err and len(files) == 2


def test_some_references_missing(tmp_path, capsys, monkeypatch):
    utts = _set(12, seed=6)
    del utts[7]["ref"], utts[9]["ref"]
    nb = _write(tmp_path / "set.jsonl", utts)
    rc, _, err, files = _same(tmp_path, ["score", "--nbest", str(nb), "--weight", "am=1"],
                              capsys, monkeypatch)
    assert rc == 2 and "2 of 12 utterances have no reference" in err


def test_case_warning_and_zero_reference_words(tmp_path, capsys, monkeypatch):
    nb = _write(tmp_path / "up.jsonl", _set(14, seed=7, ref="upper"))
    (tmp_path / "a").mkdir()
    rc, _, err, _ = _same(tmp_path / "a", ["score", "--nbest", str(nb), "--weight", "am=1"],
                          capsys, monkeypatch)
    assert rc == 0 and "upper case" in err
    nb = _write(tmp_path / "pau.jsonl", _set(14, seed=7, ref="noise"))
    (tmp_path / "b").mkdir()
    rc, _, err, _ = _same(tmp_path / "b", ["score", "--nbest", str(nb), "--weight", "am=1"],
                          capsys, monkeypatch)
    assert rc == 2 and "the references have no words" in err


def test_empty_set(tmp_path, capsys, monkeypatch):
    nb = _write(tmp_path / "empty.jsonl", [])
    (tmp_path / "a").mkdir()
    rc, _, err, files = _same(tmp_path / "a", ["score", "--nbest", str(nb), "--weight", "am=1"],
                              capsys, monkeypatch)
    assert rc == 2 and "no utterances to score" in err and files == {}
    (tmp_path / "b").mkdir()
    rc, out, _, files = _same(tmp_path / "b", ["score", "--nbest", str(nb), "--weight", "am=1",
                                               "--allow-empty"], capsys, monkeypatch)
    assert rc == 0 and out.startswith("%WER 0.00 [ 0 / 0,")


def test_missing_score_key_and_bad_line(tmp_path, capsys, monkeypatch):
    utts = _set(10, seed=8, empty_lists=False)
    del utts[6]["hyps"][0]["scores"]["lm:x"]
    nb = _write(tmp_path / "set.jsonl", utts)
    (tmp_path / "a").mkdir()
    rc, _, err, files = _same(tmp_path / "a", ["score", "--nbest", str(nb), "--weight", "am=1",
                                               "--weight", "lm:x=1"], capsys, monkeypatch,
                              error_only=True)
    assert rc == 2 and "has no score 'lm:x'" in err and files == {}
    bad = tmp_path / "bad.jsonl"
    bad.write_text(nb.read_text() + "{not json\n")
    (tmp_path / "b").mkdir()
    rc, _, err, files = _same(tmp_path / "b", ["score", "--nbest", str(bad), "--weight", "am=1"],
                              capsys, monkeypatch, error_only=True)
    assert rc == 2 and "bad.jsonl:11:" in err and files == {}


def test_tuning_record_checks(tmp_path, capsys, monkeypatch):
    """A weights file whose record disagrees with this set: the recorded filter is used,
    and the spread and repeats warnings are the whole-set path's."""
    nb = _write(tmp_path / "set.jsonl", _set(40, seed=9))
    w = tmp_path / "w.json"
    w.write_text(json.dumps({"am": 1.0, "lm0": 2.0, "rank": 0.5, "wip": 0.3, "_tuned_on": {
        "nbest": "dev.jsonl", "utts": 40, "ids": "x", "keys": ["am", "lm0", "rank", "wip"],
        "spreads": {"am": 1.0, "lm0": 500.0, "rank": 1.0, "wip": 1.0},
        "noise": ["-pau-", "[noise]"], "repeats": 0}}))
    rc, out, err, _ = _same(tmp_path, ["score", "--nbest", str(nb), "--weights", str(w)],
                            capsys, monkeypatch)
    assert rc == 0 and "varied on other relative scales" in err
    assert "tuned on lists without repeated hypotheses" in err and "[noise]" in err


# The peak RSS of this process image: VmHWM starts afresh at exec, while ru_maxrss keeps
# the high-water mark of the (large) pytest process the child was forked from.
PEAK_KB = ("def peak_kb():\n"
           "    for line in open('/proc/self/status'):\n"
           "        if line.startswith('VmHWM:'):\n"
           "            return int(line.split()[1])\n")


def _peak_kb(nb: Path, whole: bool) -> int:
    """Peak RSS (KiB) of one `score` run in a fresh process."""
    code = (PEAK_KB +
            "from asr_kd import score_set\nfrom asr_kd.cli import main\n"
            + ("score_set.streamable = lambda req, mode: False\n" if whole else "")
            + f"rc = main(['score', '--nbest', {str(nb)!r}, '--weight', 'am=1', "
            "'--weight', 'lm0=0.5', '--weight', 'lm:x=0.2', '--json', '--quiet'])\n"
            "assert rc == 0\n"
            "print(peak_kb())\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "ASR_KD_SCORE_CHUNK": "200"}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1])


def _big(path: Path, n_hyp: int) -> Path:
    """``n_hyp`` hypotheses of 12 words, 5 per utterance, three scores each."""
    rnd = random.Random(n_hyp)
    with open(path, "w") as f:
        for i in range(n_hyp // 5):
            ref = " ".join(rnd.choice(WORDS) for _ in range(12))
            hyps = [{"text": " ".join(rnd.choice(WORDS) for _ in range(12)),
                     "scores": {"am": rnd.uniform(-300, -100), "lm0": rnd.uniform(-60, -5),
                                "lm:x": rnd.uniform(-80, -5)}} for _ in range(5)]
            f.write(json.dumps({"utt": f"utt{i:07d}", "ref": ref, "hyps": hyps}) + "\n")
    return path


@pytest.mark.slow  # large sets scored in subprocesses
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc")
def test_peak_memory_stays_flat_as_the_set_grows(tmp_path):
    small, large = _big(tmp_path / "s.jsonl", 10000), _big(tmp_path / "l.jsonl", 40000)
    whole = _peak_kb(large, True) - _peak_kb(small, True)
    streamed = _peak_kb(large, False) - _peak_kb(small, False)
    # 30k more hypotheses: the whole set costs ~0.75 KB each; the stream only their ids
    assert whole > 12000, whole
    assert streamed < 3000, (streamed, whole)
