"""recipes/wsj/local/compare_exp.py: two runs are the same when everything but times, speeds
and the repository's place on disk is."""
from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOL = os.path.join(ROOT, "recipes", "wsj", "local", "compare_exp.py")

REPORT = """| system | WER | hyps/s | sub |
|---|---|---|---|
| teacher | 4.76 | {speed} | {sub} |

text {root}/exp
"""


def make_run(base, *, speed=5542, sub=186, wer=4.5, seconds=1.0, gz_time=0, extra=None):
    """A tiny run folder inside a fake repository BASE (a .git marks its root)."""
    (base / ".git").mkdir(parents=True)
    exp = base / "recipes" / "wsj" / "exp"
    (exp / "score" / ".done").mkdir(parents=True)
    (exp / "score" / ".done" / "x").write_text(str(base))  # sentinels are not compared
    (exp / "score" / "dev.json").write_text(json.dumps(
        {"wer": wer, "seconds": seconds, "model": str(base / "m"), "train_text": str(base)}))
    with open(exp / "score" / "dev.jsonl.gz", "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=gz_time) as g:
            g.write(b'{"utt": "a"}\n')
    (exp / "report.md").write_text(REPORT.format(speed=speed, sub=sub, root=base))
    (exp / "metrics.csv").write_text(f"epoch,valid_ppl,seconds\n1,25.7,{seconds}\n")
    (exp / "train.log").write_text(f"took {seconds}\n")
    if extra:
        (exp / extra).write_text("x")
    return exp


def compare(a, b):
    return subprocess.run([sys.executable, TOOL, str(a), str(b)], capture_output=True,
                          text=True, timeout=120)


def test_times_speeds_paths_and_gzip_headers_are_not_differences(tmp_path):
    a = make_run(tmp_path / "one")
    b = make_run(tmp_path / "two", speed=549, seconds=245.5, gz_time=12345)
    p = compare(a, b)
    assert p.returncode == 0, p.stdout
    assert p.stdout.strip() == (
        "4 of 4 files the same (1 by decompressed, 1 by json without volatile keys, 1 by "
        "metrics without time and speed, 1 by report without speeds); 0 not")  # (log left out)


def test_a_number_or_a_file_that_differs_is_found(tmp_path):
    a = make_run(tmp_path / "one")
    for n, kw in enumerate([{"sub": 185}, {"wer": 4.6}, {"extra": "new.txt"}]):
        b = make_run(tmp_path / f"two{n}", **kw)
        p = compare(a, b)
        assert p.returncode == 1, (kw, p.stdout)
        line = p.stdout.splitlines()[0]
        assert line in ("differs (report without speeds): report.md",
                        "differs (json without volatile keys): score/dev.json",
                        f"only in {b}: new.txt"), line
