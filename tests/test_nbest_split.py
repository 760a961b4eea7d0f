"""Deterministic N-best splits by utterance id (asr_kd.nbest.split, local/split_nbest.py)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from asr_kd.errors import InputError
from asr_kd.nbest import Hyp, NBest, Utterance, read_nbest
from asr_kd.nbest.split import id_bucket, parse_parts, split_by_id

SCRIPT = Path(__file__).resolve().parents[1] / "recipes" / "wsj" / "local" / "split_nbest.py"


def _set(ids):
    return NBest([Utterance(i, [Hyp(f"w {i}")], ref=f"r {i}") for i in ids])


def test_split_is_by_id_not_order_or_size():
    ids = [f"utt{i:03d}" for i in range(200)]
    parts = parse_parts(["dev=0", "eval=1", "lm=2-9"], 10)
    a = split_by_id(_set(ids), 10, parts)
    b = split_by_id(_set(list(reversed(ids[:120]))), 10, parts)  # other order, a subset
    assert sum(len(p) for p in a.values()) == 200
    for name in parts:
        got_a = {u.utt for u in a[name]}
        assert {u.utt for u in b[name]} == got_a & set(ids[:120])
        assert all(id_bucket(u, 10) in parts[name] for u in got_a)
    assert 5 < len(a["dev"]) < 40 and 5 < len(a["eval"]) < 40  # about a tenth each
    assert id_bucket("460011ss", 10) == id_bucket("460011ss", 10)


def test_parse_parts_errors():
    assert parse_parts(["a=0,2-3"], 5) == {"a": {0, 2, 3}}
    for bad in (["a"], ["a=x"], ["a=0-9"], ["a=0", "b=0"]):
        with pytest.raises(InputError):
            parse_parts(bad, 5)


def test_split_script_writes_parts_and_lm_text(tmp_path):
    src = tmp_path / "in.jsonl"
    from asr_kd.nbest import write_jsonl
    write_jsonl(_set([f"u{i}" for i in range(50)]), src)
    r = subprocess.run([sys.executable, str(SCRIPT), str(src), str(tmp_path / "o"), "--buckets",
                        "2", "--part", "dev=0", "--part", "lm=1", "--text-part", "lm"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    dev, lm = read_nbest(tmp_path / "o" / "dev.jsonl.gz"), read_nbest(tmp_path / "o" / "lm.jsonl.gz")
    assert len(dev) + len(lm) == 50 and not {u.utt for u in dev} & {u.utt for u in lm}
    assert (tmp_path / "o" / "lm.txt").read_text().splitlines() == [u.ref for u in lm]
    assert (tmp_path / "o" / "dev.ref").read_text().splitlines() == [f"{u.utt} {u.ref}" for u in dev]
    r = subprocess.run([sys.executable, str(SCRIPT), str(src), str(tmp_path / "p"),
                        "--part", "dev=0-10"], capture_output=True, text=True)
    assert r.returncode == 2 and "error:" in r.stderr and "Traceback" not in r.stderr
