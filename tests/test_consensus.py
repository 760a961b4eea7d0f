"""Consensus decoding on hand-computed lists, its tuner, and `asr-kd score/tune --decode consensus`."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr_kd.consensus import EMPTY, Mesh, build_mesh, consensus_decode, posteriors
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.scoring import batch_errors, chosen_texts, pick_best, texts_wer
from asr_kd.tune_consensus import FixedMeshes, align_all, tune_consensus
from asr_kd.scoring import pack_features


def mesh_of(*hyps):
    """Mesh of (text, posterior) pairs aligned in the given order."""
    m = Mesh()
    for text, p in hyps:
        m.align(text.split(), p)
    return m


def test_alignment_and_posteriors_by_hand():
    # "a c" skips column b (cost 0.5) rather than substituting c for b and skipping c (1.0);
    # "a x c" puts x under b (cost 0.8) rather than skipping b and adding a column (1.3).
    m = mesh_of(("a b c", 0.5), ("a c", 0.3), ("a x c", 0.2))
    assert m.columns == [{"a": 1.0}, {"b": 0.5, EMPTY: 0.3, "x": 0.2}, {"c": 1.0}]
    assert m.paths == [["a", "b", "c"], ["a", EMPTY, "c"], ["a", "x", "c"]]
    assert m.total == pytest.approx(1.0)
    assert m.consensus() == ["a", "b", "c"]


def test_deletion_is_the_empty_word_and_can_win():
    # "a c" first: "a b c" adds a column between a and c (cost 0.45) whose empty word
    # holds the 0.45 of "a c"; "a x c" substitutes x there (0.8 < 0.35 + 0.8).
    m = mesh_of(("a c", 0.45), ("a b c", 0.35), ("a x c", 0.2))
    assert [list(c) for c in m.columns] == [["a"], [EMPTY, "b", "x"], ["c"]]
    assert m.columns[1] == pytest.approx({EMPTY: 0.45, "b": 0.35, "x": 0.2})
    assert m.consensus() == ["a", "c"]  # no hypothesis of the three is "a c"'s rival: b, x lose
    assert m.consensus(deletion_bias=0.5) == ["a", "b", "c"]  # 0.225 < 0.35


def test_consensus_can_differ_from_every_hypothesis():
    # columns: a 0.7 / x 0.3, b 0.4 / B 0.6, c 0.7 / C 0.3: "a B c" is none of the three
    m = mesh_of(("a b c", 0.4), ("a B C", 0.3), ("x B c", 0.3))
    want = [{"a": 0.7, "x": 0.3}, {"b": 0.4, "B": 0.6}, {"c": 0.7, "C": 0.3}]
    assert [c == pytest.approx(w) for c, w in zip(m.columns, want)] == [True] * 3
    assert m.consensus() == ["a", "B", "c"]


def test_posterior_scale_divides_the_total():
    t = np.array([0.0, -2 * math.log(3)])
    assert posteriors(t, 1.0) == pytest.approx([0.9, 0.1])
    assert posteriors(t, 2.0) == pytest.approx([0.75, 0.25])  # exp(-ln 3) = 1/3
    assert posteriors(t, 0.0).tolist() == [1.0, 0.0]
    assert posteriors(np.array([-1.0, -1.0, -5.0]), 0.0).tolist() == [1.0, 0.0, 0.0]
    with pytest.raises(ValueError):
        posteriors(t, -1.0)


def utt(uid, ref, *hyps):
    return Utterance(uid, [Hyp(t, {"am": a}) for t, a in hyps], ref)


def test_decode_orders_by_total_and_weighs_by_scale():
    # totals -2, -1, -2, scale 1: posteriors 0.21, 0.58, 0.21; "a b" (0.58) is aligned
    # first, then "a c" (c under b), then "a b": b 0.79 against c 0.21
    nb = NBest([utt("u", "a c", ("a c", -2.0), ("a b", -1.0), ("a b", -2.0))])
    assert consensus_decode(nb, {"am": 1.0}, 1.0) == ["a b"]
    # "a x" (0.58) against two "a" (0.21 each): x beats the empty word at scale 1;
    # at scale 100 the posteriors are nearly 1/3 each and the empty word (2/3) wins
    nb = NBest([utt("u", "a", ("a x", -1.0), ("a", -2.0), ("a", -2.0))])
    assert consensus_decode(nb, {"am": 1.0}, 1.0) == ["a x"]
    assert consensus_decode(nb, {"am": 1.0}, 100.0) == ["a"]
    assert consensus_decode(nb, {"am": 1.0}, 0.0) == ["a x"]  # scale 0: the 1-best


def test_ties_go_to_the_higher_ranked_hypothesis():
    # equal totals: list order is the alignment order, the first word wins the tie
    nb = NBest([utt("u", "a b", ("a b", -1.0), ("a c", -1.0)),
                utt("v", "a b", ("a c", -1.0), ("a b", -1.0))])
    assert consensus_decode(nb, {"am": 1.0}, 1.0) == ["a b", "a c"]
    # the empty word against a word at 0.5 each: the better-ranked hypothesis wins
    nb = NBest([utt("u", "a", ("a", -1.0), ("a z", -1.0)),
                utt("v", "a", ("a z", -1.0), ("a", -1.0))])
    assert consensus_decode(nb, {"am": 1.0}, 1.0) == ["a", "a z"]


def test_identity_for_one_hypothesis_empty_and_missing_lists():
    nb = NBest([utt("one", "a b", ("p q r", -3.0)), utt("empty", "a", ("", -1.0)),
                Utterance("none", [], "a")])
    assert consensus_decode(nb, {"am": 1.0}, 1.0) == ["p q r", "", ""]
    m, order = build_mesh([[], ["a"]], np.array([0.0, -1.0]), 1.0)
    assert order.tolist() == [0, 1] and m.consensus() == []  # empty 0.73 beats a 0.27


def test_agrees_with_1best_when_one_hypothesis_dominates():
    nb = NBest([utt("u", "a b c", ("a x c", -50.0), ("a b c", -1.0), ("a b d", -40.0),
                    ("a b d", -41.0))])
    assert consensus_decode(nb, {"am": 1.0}, 1.0) == ["a b c"]
    assert consensus_decode(nb, {"am": 1.0}, 0.0) == ["a b c"]


def test_weights_are_the_1best_features():
    # the same features as 1-best: rank, KEY/words and wip resolve as in scoring
    nb = NBest([Utterance("u", [Hyp("a b", {"lm": -2.0}), Hyp("a c c", {"lm": -2.0})], "a b")])
    assert consensus_decode(nb, {"lm": 1.0, "wip": 1.0}, 0.0) == ["a c c"]
    assert consensus_decode(nb, {"lm": 1.0, "rank": 5.0}, 0.0) == ["a b"]


def test_texts_wer_keeps_the_nbest_oracle():
    nb = NBest([utt("u", "a b c", ("a x c", -1.0), ("a b c", -2.0))])
    r = texts_wer(nb, ["a b"])
    assert (r.errors, r.del_, r.sub, r.oracle_errors, r.sent_errors) == (1, 1, 0, 0, 1)


words = st.lists(st.sampled_from("abcde"), max_size=5)


@st.composite
def random_lists(draw):
    utts = []
    for i in range(draw(st.integers(1, 4))):
        hyps = [Hyp(" ".join(draw(words)), {"am": draw(st.integers(-6, 0)) / 2.0,
                                             "lm": draw(st.integers(-6, 0)) / 2.0})
                for _ in range(draw(st.integers(0, 5)))]
        utts.append(Utterance(f"u{i}", hyps, " ".join(draw(words))))
    return NBest(utts)


@settings(max_examples=60, deadline=None)
@given(nb=random_lists(), lmw=st.sampled_from([0.0, 0.5, 2.0]),
       scale=st.sampled_from([0.0, 0.3, 1.0, 4.0]))
def test_mesh_invariants_and_fixed_alignment_is_exact(nb, lmw, scale):
    weights = {"am": 1.0, "lm": lmw}
    for u in nb:
        tot = np.array([h.scores["am"] + lmw * h.scores["lm"] for h in u.hyps])
        m, order = build_mesh([h.words for h in u.hyps], tot, scale)
        for k, path in enumerate(m.paths):  # every path spells its hypothesis
            assert [w for w in path if w != EMPTY] == u.hyps[order[k]].words
        for col in m.columns:  # every column holds all the posterior mass
            assert sum(col.values()) == pytest.approx(m.total)
    # scale 0 is exactly the 1-best choice
    one = [t for _, t in chosen_texts(nb, pick_best(nb, weights))]
    assert consensus_decode(nb, weights, 0.0) == one
    # re-weighting a fixed alignment with the weights it was built with is exact
    feats, mask = pack_features(nb, ["am", "lm"], False)
    fm = FixedMeshes(nb, feats, mask, align_all(nb, feats, mask, np.array([1.0, lmw]), scale))
    texts = consensus_decode(nb, weights, scale)
    exact = int(batch_errors([u.ref for u in nb], texts)[:, 0].sum())
    assert fm.errors(np.array([[1.0, lmw, scale]]))[0] == exact
    # and scale 0 on any alignment is the 1-best error count
    e1 = int(batch_errors([u.ref for u in nb], one)[:, 0].sum())
    assert fm.errors(np.array([[1.0, lmw, 0.0]]))[0] == e1


def vote_lists(copies=3) -> NBest:
    """Lists where the best first hypothesis is wrong in one word, but two lower
    hypotheses, each wrong elsewhere, out-vote it word by word: only consensus
    decoding with a moderate scale gets every word right."""
    utts = []
    for c in range(copies):
        utts.append(Utterance(f"v{c}", [
            Hyp("a X c d", {"am": -1.0, "lm": -1.0}),
            Hyp("a b Y d", {"am": -1.5, "lm": -1.0}),
            Hyp("a b c Z", {"am": -1.5, "lm": -1.0})], "a b c d"))
    return NBest(utts)


def test_tuner_finds_a_scale_that_beats_1best():
    nb = vote_lists()
    res = tune_consensus(nb, ["am", "lm"], wip=False)
    assert res.onebest_errors == 3  # every list's best hypothesis has one error
    assert res.errors == 0 and res.scale > 0
    assert consensus_decode(nb, res.weights, res.scale) == ["a b c d"] * 3
    assert res.weights["am"] == 1.0


def test_tuner_keeps_1best_when_consensus_cannot_help():
    nb = NBest([utt("u", "a b", ("a b", -1.0), ("a x", -1.2)),
                utt("v", "a c", ("a c", -1.0), ("a y", -1.1))])
    res = tune_consensus(nb, ["am"])
    assert res.errors == res.onebest_errors == 0


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "asr_kd.cli", *args], capture_output=True,
                          text=True)


def write_jsonl(path, nb: NBest):
    with open(path, "w") as f:
        for u in nb:
            f.write(json.dumps({"utt": u.utt, "ref": u.ref,
                                "hyps": [{"text": h.text, "scores": h.scores}
                                         for h in u.hyps]}) + "\n")


def test_cli_tune_score_round_trip(tmp_path):
    nbf = tmp_path / "dev.jsonl"
    write_jsonl(nbf, vote_lists())
    w = tmp_path / "w.json"
    r = run_cli("tune", "--nbest", str(nbf), "--scores", "am,lm", "--decode", "consensus",
                "--out", str(w), "--curve-out", str(tmp_path / "c.json"))
    assert r.returncode == 0, r.stderr
    obj = json.loads(w.read_text())
    assert obj["decode"] == "consensus" and obj["posterior_scale"] > 0 and obj["am"] == 1.0
    assert "%WER 0.00 [ 0 / 12" in r.stdout
    hyp = tmp_path / "hyp.txt"
    r = run_cli("score", "--nbest", str(nbf), "--weights", str(w), "--json",
                "--out-hyp", str(hyp))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # the oracle stays the N-best oracle: every hypothesis has one error
    assert out["wer"] == 0.0 and out["decode"] == "consensus" and out["oracle_wer"] == 25.0
    assert hyp.read_text() == "".join(f"v{c} a b c d\n" for c in range(3))
    # --decode 1best overrides the file: the 1-best WER (3 errors in 12 words)
    r = run_cli("score", "--nbest", str(nbf), "--weights", str(w), "--decode", "1best")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("%WER 25.00 [ 3 / 12")
    # consensus without a scale is a one-line error
    r = run_cli("score", "--nbest", str(nbf), "--weight", "am=1", "--decode", "consensus")
    assert r.returncode == 2 and "needs --posterior-scale" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_cli("score", "--nbest", str(nbf), "--weight", "am=1", "--decode", "consensus",
                "--posterior-scale", "1", "--out-trn", str(tmp_path / "h.trn"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "h.trn").read_text().splitlines()[0].endswith("(v0)")


def test_report_rows_name_their_decode_mode():
    from asr_kd.report import markdown

    def row(name, dev):
        return {"system": name, "models": [], "params": None, "size_mb": None, "ppl": None,
                "curve": None, "weights": None, "dev": dev, "dev_hyps_per_s": None}

    md = markdown({"sets": ["dev"], "comparisons": [], "systems": [
        row("first_pass", {"wer": 10.0}),
        row("student", {"wer": 9.0, "decode": "consensus", "posterior_scale": 12.5})]})
    names = [l.split("|")[1].strip() for l in md.splitlines() if l.startswith("| ")][1:]
    assert names == ["first_pass", "student (consensus, scale 12.5)"]
