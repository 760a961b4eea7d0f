"""Progress fit for logs (issue 14, item 6): bars on a terminal, on a redirected stream
one plain line every N seconds with count, rate and ETA, never carriage returns."""
from __future__ import annotations

import io
import json
import random

import pytest

from asr_kd.progress import LineProgress, log_interval, progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_line_progress_writes_a_line_per_interval_with_rate_and_eta():
    out, clock = io.StringIO(), Clock()
    bar = LineProgress(total=100, desc="rescore x", unit="group", interval=30, file=out,
                       clock=clock)
    for _ in range(100):
        clock.t += 1.0   # one group per second: a line at 30, 60 and 90 s, and a last one
        bar.update(1)
    bar.close()
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert lines[0] == "rescore x: 30/100 group (30.0 %), 1 group/s, ETA 0:01:10"
    assert lines[2].startswith("rescore x: 90/100 group (90.0 %)")
    assert lines[3] == "rescore x: 100/100 group (100.0 %), 1 group/s, 0:01:40 in all"
    assert len(lines) == 4


def test_short_work_stays_silent_and_quiet_is_silent():
    out = io.StringIO()
    for _ in LineProgress(range(1000), desc="x", interval=30, file=out):
        pass
    assert out.getvalue() == ""
    bar = progress(total=3, quiet=True, file=out)
    bar.update(3)
    bar.set_postfix(loss=1)
    bar.close()
    assert list(progress([1, 2], quiet=True)) == [1, 2] and out.getvalue() == ""


def test_redirected_stream_gets_lines_a_terminal_gets_a_bar(monkeypatch):
    out = io.StringIO()
    assert isinstance(progress(range(3), file=out), LineProgress)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    for _ in progress(range(3), desc="bar", file=tty):
        pass
    assert "\r" in tty.getvalue() and "3/3" in tty.getvalue()  # tqdm's bar


def test_interval_from_the_environment(monkeypatch):
    monkeypatch.setenv("ASR_KD_PROGRESS_SECONDS", "5")
    assert log_interval() == 5.0
    monkeypatch.setenv("ASR_KD_PROGRESS_SECONDS", "0")   # progress off, bars too

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    for _ in progress(range(3), file=tty):
        pass
    assert tty.getvalue() == ""
    out, clock = io.StringIO(), Clock()
    bar = LineProgress(total=10, file=out, clock=clock)
    for _ in range(10):
        clock.t += 100
        bar.update()
    bar.close()
    assert out.getvalue() == ""
    monkeypatch.setenv("ASR_KD_PROGRESS_SECONDS", "soon")  # a typo: the default
    assert log_interval() == 30.0


@pytest.mark.usefixtures("one_thread")
def test_training_into_a_log_writes_no_carriage_returns(tmp_path, capsys, monkeypatch):
    # before: tqdm wrote its bar (with '\r') into redirected stderr on every update
    from asr_kd.cli import main
    rng = random.Random(0)
    words = ["a", "b", "c", "d", "e"]
    for name, n in (("train", 200), ("valid", 20)):
        (tmp_path / f"{name}.txt").write_text(
            "\n".join(" ".join(rng.choice(words) for _ in range(5)) for _ in range(n)) + "\n")
    (tmp_path / "c.yaml").write_text("embed_dim: 8\nhidden_dim: 8\nnum_layers: 1\n"
                                     "batch_size: 4\nepochs: 2\nlr: 0.01\noptimizer: adamw\n")
    args = ["train-lm", "--config", str(tmp_path / "c.yaml"), "--train", str(tmp_path / "train.txt"),
            "--valid", str(tmp_path / "valid.txt"), "--device", "cpu"]
    assert main(args + ["--out", str(tmp_path / "m1")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "epoch 1/2:" not in err   # 50 batches in well under 30 s
    # a line every update (interval ~0): still plain lines, at most one per batch and epoch
    monkeypatch.setenv("ASR_KD_PROGRESS_SECONDS", "1e-9")
    assert main(args + ["--out", str(tmp_path / "m2")]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("epoch ")]
    assert "\r" not in err and 50 <= len(lines) <= 2 * 51
    assert "batch/s" in lines[0] and "ETA" in lines[0] and "loss=" in lines[0]
    assert "refresh" not in err


def test_score_and_tune_report_progress_in_a_log(tmp_path, capsys, monkeypatch):
    from asr_kd.cli import main
    from asr_kd.nbest import Hyp, NBest, Utterance, write_jsonl
    rng = random.Random(1)
    nb = NBest([Utterance(f"u{i}", [Hyp(f"a {w}", {"am": rng.random(), "lm": rng.random()})
                                    for w in "bcd"], "a b") for i in range(20)])
    write_jsonl(nb, tmp_path / "n.jsonl")
    monkeypatch.setenv("ASR_KD_PROGRESS_SECONDS", "1e-9")
    assert main(["tune", "--nbest", str(tmp_path / "n.jsonl"), "--scores", "am,lm",
                 "--out", str(tmp_path / "w.json")]) == 0
    err = capsys.readouterr().err
    assert "\r" not in err and "WER alignment: 60/60 hyp" in err
    assert "tune: 2/2 subset search" in err
    assert main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weights",
                 str(tmp_path / "w.json"), "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["utts"] == 20 and "WER alignment" in out.err
