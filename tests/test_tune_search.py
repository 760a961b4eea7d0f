"""The weight search on random tiny lists: scale-freedom, the nested guarantee, the optimum.

Random lists have scores unrelated to the errors, with very different scales
(am ~ 0.05, lm ~ 10, lm2 ~ 3): the hardest case for a search, and every
tuning question (which weights, how far from the optimum) has a brute-force answer.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.scoring import corpus_wer, pick_best
from asr_kd.tune import Packed, feature_spreads, tune_weights

VOCAB = "a b c d e f g h".split()
SCALES = {"am": 0.05, "lm": 10.0, "lm2": 3.0}


def random_nbest(seed: int, utts: int = 8, nhyp: int = 4) -> NBest:
    """``utts`` references of 2-5 words; 1-``nhyp`` hypotheses with 0-2 random edits each;
    scores am, lm, lm2 (normal, scaled by SCALES) and an OOV count oov in {0, 1, 2}."""
    rng = np.random.default_rng(seed)
    out = []
    for u in range(utts):
        ref = [str(w) for w in rng.choice(VOCAB, rng.integers(2, 6))]
        hyps = []
        for _ in range(rng.integers(1, nhyp + 1)):
            w = list(ref)
            for _ in range(rng.integers(0, 3)):
                op = rng.integers(3)
                if op == 0 and w:
                    w[rng.integers(len(w))] = str(rng.choice(VOCAB))
                elif op == 1 and w:
                    del w[rng.integers(len(w))]
                else:
                    w.insert(rng.integers(len(w) + 1), str(rng.choice(VOCAB)))
            sc = {k: float(rng.normal() * s) for k, s in SCALES.items()}
            sc["oov"] = float(rng.integers(0, 3))
            hyps.append(Hyp(" ".join(w), sc))
        out.append(Utterance(f"u{u}", hyps, " ".join(ref)))
    return NBest(out)


def scaled(nb: NBest, key: str, c: float) -> NBest:
    return NBest([Utterance(u.utt, [Hyp(h.text, {**h.scores, key: h.scores[key] * c})
                                    for h in u.hyps], u.ref) for u in nb])


# ---- scale -----------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("key,c", [("lm", 1e-3), ("lm", 1e3), ("am", 1e-3), ("am", 1e3)])
def test_scaling_a_feature_scales_its_weight_inversely(seed, key, c):
    nb = random_nbest(seed)
    keys = ["am", "lm", "lm2"]
    a = tune_weights(nb, keys, wip=True)
    b = tune_weights(scaled(nb, key, c), keys, wip=True)
    assert b.errors == a.errors and b.wer == a.wer
    assert b.weights["am"] == a.weights["am"] == 1.0
    assert b.spreads[key] == pytest.approx(a.spreads[key] * c, rel=1e-12)
    for k in ["lm", "lm2", "wip"]:
        # the first key is the reference: scaling it by c scales every other weight by c
        want = a.weights[k] / c if k == key else a.weights[k] * (c if key == "am" else 1.0)
        assert b.weights[k] == pytest.approx(want, rel=1e-6)


def test_far_below_the_old_grid():
    """Whisper-like: first key differences ~0.01, LM differences ~10.  Right only for an LM
    weight in (0.0004, 0.0006), far below any weight the first key's units would suggest."""
    utts = []
    for c in range(3):
        ref = "a b c"
        # A: right iff lm > 0.0004; B: right iff lm < 0.0006 (lm differs by 10)
        utts += [Utterance(f"A{c}", [Hyp("a b x", {"score": -0.2 + 0.004, "lm": -40.0}),
                                     Hyp(ref, {"score": -0.2, "lm": -30.0})], ref),
                 Utterance(f"B{c}", [Hyp("a x c", {"score": -0.2, "lm": -30.0}),
                                     Hyp(ref, {"score": -0.2 + 0.006, "lm": -40.0})], ref)]
    res = tune_weights(NBest(utts), ["score", "lm"])
    assert res.errors == 0 and res.weights["score"] == 1.0
    assert 0.0004 < res.weights["lm"] < 0.0006
    assert res.spreads == {"score": pytest.approx(0.005), "lm": 10.0}


# ---- adding a key never hurts ------------------------------------------------------------------

NESTED = [  # (with the extra key, without it)
    ((["am", "lm", "lm2"], {}), (["am", "lm"], {})),
    ((["am", "lm", "lm2"], {}), (["am", "lm2"], {})),  # a key added in the middle
    ((["am", "lm"], {"wip": True}), (["am"], {"wip": True})),
    ((["am", "lm", "lm2"], {"wip": True}), (["am", "lm", "lm2"], {})),
    ((["am", "lm", "oov"], {"signed": ["oov"]}), (["am", "lm"], {})),
    ((["am", "lm", "oov", "lm2"], {"wip": True, "signed": ["oov"]}),
     (["am", "lm", "oov"], {"wip": True, "signed": ["oov"]})),
    ((["am", "lm", "rank", "am*words"], {"wip": True}), (["am", "lm", "rank"], {"wip": True})),
]


@pytest.mark.parametrize("seed", range(36))
def test_adding_a_key_never_gives_more_dev_errors(seed):
    nb = random_nbest(seed)
    for (big, kb), (small, ks) in NESTED:
        more = tune_weights(nb, big, **kb)
        assert more.errors <= tune_weights(nb, small, **ks).errors, (big, small)
        assert corpus_wer(nb, pick_best(nb, more.weights)).errors == more.errors


# ---- against brute force ---------------------------------------------------------------------

def exact_1d_optimum(nb: NBest) -> int:
    """Fewest errors of am + w * lm over all w >= 0: every breakpoint, midpoint and beyond."""
    p = Packed.build(nb, ["am", "lm"], False)
    xs = [0.0]
    for u in nb:
        for i, a in enumerate(u.hyps):
            for b in u.hyps[i + 1:]:
                dl = b.scores["lm"] - a.scores["lm"]
                if dl and (a.scores["am"] - b.scores["am"]) / dl > 0:
                    xs.append((a.scores["am"] - b.scores["am"]) / dl)
    xs = np.unique(xs)
    pts = np.concatenate([xs, (xs[1:] + xs[:-1]) / 2, [2 * xs[-1] + 1]])
    return int(p.errors(np.stack([np.ones_like(pts), pts], axis=1)).min())


@pytest.mark.parametrize("seed", range(12))
def test_one_weight_reaches_the_exact_optimum(seed):
    # Measured: 200 of 200 random lists (seeds 0-199).
    nb = random_nbest(seed)
    assert tune_weights(nb, ["am", "lm"]).errors == exact_1d_optimum(nb)


@pytest.mark.parametrize("seed", range(8))
def test_two_weights_reach_a_fine_grid_optimum(seed):
    # lm and wip over a 0.125-step grid of normalised weights in [0, 64] x [-64, 64]
    # (526k points).  Measured: the tuner matched or beat it on 99 of 100 random lists
    # (seeds 0-99); seed 72 is 1 error short: its optimum is a thin cone around
    # lm/wip = 3.1 at normalised lm ~ 34, between the grid's rays.
    nb = random_nbest(seed)
    res = tune_weights(nb, ["am", "lm"], wip=True)
    p = Packed.build(nb, ["am", "lm"], True)
    s = feature_spreads(p.feats, p.mask)
    g = np.stack(np.meshgrid(np.arange(0, 64.0001, 0.125), np.arange(-64, 64.0001, 0.125),
                             indexing="ij"), axis=-1).reshape(-1, 2) * (s[0] / s[1:])
    brute = p.errors(np.concatenate([np.ones((len(g), 1)), g], axis=1), batch=8192).min()
    assert res.errors <= brute


# ---- lists without scores ----------------------------------------------------------------------

def test_cli_tune_rank_on_lists_without_scores(tmp_path, capsys):
    from asr_kd.cli import main
    # The first hypothesis is usually right; where it is one word short, the longer one is.
    lines = []
    for i in range(6):
        ref = "a b c d" if i % 3 else "a b c"
        hyps = ["a b c", "a b c d", "a b x d"]
        lines.append({"utt": f"u{i}", "ref": ref, "hyps": [{"text": t} for t in hyps]})
    (tmp_path / "n.jsonl").write_text("".join(json.dumps(d) + "\n" for d in lines))
    args = ["tune", "--nbest", str(tmp_path / "n.jsonl"), "--scores", "rank",
            "--out", str(tmp_path / "w.json")]
    assert main(args) == 0
    assert "%WER 18.18 [ 4 / 22," in capsys.readouterr().out  # always the first
    assert main(args + ["--wip"]) == 0
    assert "%WER 9.09 [ 2 / 22," in capsys.readouterr().out
    w = json.loads((tmp_path / "w.json").read_text())
    assert w["rank"] == 1.0 and w["wip"] > 1.0  # one more word outweighs one place
    assert main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weights",
                 str(tmp_path / "w.json"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["wer"] == pytest.approx(100 * 2 / 22)
