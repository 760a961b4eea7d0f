"""tune with start weights and fixed keys (SRILM nbest-optimize's -init-lambdas, '='
fixing a weight): a fixed key keeps its start value, the result is never worse on dev
than the start, and consensus tuning keeps the fixed key too."""
from __future__ import annotations

import json
import random

import pytest

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.scoring import corpus_wer, pick_best
from asr_kd.tune import tune_weights

WORDS = "a b c d e".split()


def random_nbest(seed, utts=12, n=5):
    rng = random.Random(seed)
    out = []
    for u in range(utts):
        ref = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 5)))
        hyps = []
        for _ in range(n):
            words = ref.split()
            if rng.random() < 0.7:
                words[rng.randrange(len(words))] = rng.choice(WORDS)
            if rng.random() < 0.3:
                words.append(rng.choice(WORDS))
            hyps.append(Hyp(" ".join(words), {"am": rng.uniform(-20, 0), "lm": rng.uniform(-10, 0),
                                              "x": rng.uniform(-5, 0)}))
        out.append(Utterance(f"u{u}", hyps, ref))
    return NBest(out)


@pytest.mark.parametrize("seed", range(6))
def test_fixed_key_keeps_its_value_and_start_is_never_beaten(seed):
    nb = random_nbest(seed)
    start = {"am": 2.0, "lm": 0.6, "x": 0.2, "wip": -0.4}
    res = tune_weights(nb, ["am", "lm", "x"], wip=True, start=start, fixed=["lm"], quiet=True)
    assert res.weights["am"] == 1.0 and res.weights["lm"] == 0.3   # 0.6 / 2.0
    start_errors = corpus_wer(nb, pick_best(nb, start)).errors
    assert res.errors <= start_errors
    assert corpus_wer(nb, pick_best(nb, res.weights)).errors == res.errors


def test_bad_start_and_fixed_are_refused():
    nb = random_nbest(0)
    with pytest.raises(InputError, match="need start weights"):
        tune_weights(nb, ["am", "lm"], fixed=["lm"], quiet=True)
    with pytest.raises(InputError, match="not tuned"):
        tune_weights(nb, ["am", "lm"], start={"am": 1, "zz": 1}, quiet=True)
    with pytest.raises(InputError, match="first is always 1"):
        tune_weights(nb, ["am", "lm"], start={"am": 1}, fixed=["am"], quiet=True)
    with pytest.raises(InputError, match="negative start weight for lm"):
        tune_weights(nb, ["am", "lm"], start={"am": 1, "lm": -1}, quiet=True)


@pytest.mark.parametrize("decode", ["1best", "consensus"])
def test_cli_start_and_fixed(tmp_path, capsys, decode):
    nb = random_nbest(3)
    path = tmp_path / "dev.jsonl"
    path.write_text("".join(json.dumps({"utt": u.utt, "ref": u.ref, "hyps": [
        {"text": h.text, "scores": h.scores} for h in u.hyps]}) + "\n" for u in nb))
    (tmp_path / "start.json").write_text('{"am": 1.0, "lm": 0.25, "x": 0.5}')
    out = tmp_path / "w.json"
    assert main(["tune", "--nbest", str(path), "--scores", "am,lm,x", "--wip", "--start",
                 str(tmp_path / "start.json"), "--fixed", "x", "--decode", decode,
                 "--out", str(out), "--quiet"]) == 0
    w = json.loads(out.read_text())
    assert w["x"] == 0.5 and w["am"] == 1.0
    capsys.readouterr()
    assert main(["tune", "--nbest", str(path), "--scores", "am,lm", "--fixed", "lm",
                 "--out", str(tmp_path / "w2.json")]) == 2
    assert "--start" in capsys.readouterr().err
