"""Memory per hypothesis: what a large N-best set costs is bounded by what it holds,
not by copies of it or by how many weight vectors the tuner scores at once."""
from __future__ import annotations

import numpy as np

from asr_kd import tune
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.noise import build_filter


def _set(n_utt=40, n_hyp=5):
    return NBest([Utterance(f"u{i}", [Hyp(f"a b c{k}" + (" -pau-" if k == 1 else ""),
                                          {"am": -float(k + i), "lm0": -float(k * i % 7)})
                                      for k in range(n_hyp)], "a b c0")
                  for i in range(n_utt)])


def test_hypotheses_carry_no_per_object_dict():
    h = Hyp("a b", {"am": -1.0})
    assert not hasattr(h, "__dict__")
    assert h.words == ["a", "b"] and h == Hyp("a b", {"am": -1.0})


def test_the_scoring_filter_shares_the_hypotheses_it_leaves_unchanged():
    nb = _set()
    out, n_hyp, n_ref = build_filter().nbest(nb)   # -pau- by default
    assert n_hyp == len(nb) and n_ref == 0
    for u, v in zip(nb, out):
        assert v.hyps[0] is u.hyps[0]                                    # unchanged: shared
        assert v.hyps[1] is not u.hyps[1] and v.hyps[1].text == "a b c1"  # filtered: a copy
        assert v.hyps[1].scores is u.hyps[1].scores
    assert nb.utts[0].hyps[1].text == "a b c1 -pau-"                     # the input is intact


def test_weight_batches_stay_within_the_working_memory_bound(monkeypatch):
    nb = _set()
    p = tune.Packed.build(nb, ["am", "lm0"], True)
    w = np.random.default_rng(0).normal(size=(100, 3))
    want = p.errors(w)
    sizes = []
    real = tune.select

    def spy(feats, mask, ws):
        sizes.append(len(ws))
        return real(feats, mask, ws)

    monkeypatch.setattr(tune, "select", spy)
    # room for 3 weight vectors: 16 bytes per padded hypothesis each
    monkeypatch.setattr(tune, "SELECT_BYTES", 3 * 16 * p.mask.size)
    got = p.errors(w)
    assert max(sizes) == 3 and sum(sizes) == 100
    assert (got == want).all()   # the same errors, whatever the batch
