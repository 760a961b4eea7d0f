"""Weight search on constructed N-best lists with a known optimum, and `asr-kd tune`."""
from __future__ import annotations

import json

import pytest

from asr_kd.errors import InputError
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.scoring import corpus_wer, pick_best
from asr_kd.tune import tune_weights


def constructed(lm_lo, lm_hi, wip_lo, wip_hi, copies=2) -> NBest:
    """Lists that are all right only for lm in (lm_lo, lm_hi) and wip in (wip_lo, wip_hi).

    With weights am=1, lm=x, wip=y a right hypothesis beats a wrong one iff:
    type A: x > lm_lo, type B: x < lm_hi (same word counts, lm differs);
    type C: y > wip_lo, type D: y < wip_hi (same lm, word counts differ).
    The wrong hypothesis comes first so that ties pick it.
    """
    utts = []
    for c in range(copies):
        ref3, ref4 = "a b c", "a b c d"
        utts += [
            # A: right (am -10, lm -10) vs wrong (am -10 + 10*lm_lo, lm -20)
            Utterance(f"A{c}", [Hyp("a b x", {"am": -10 + 10 * lm_lo, "lm": -20.0}),
                                Hyp(ref3, {"am": -10.0, "lm": -10.0})], ref3),
            # B: right (am -10 + 10*lm_hi, lm -20) vs wrong (am -10, lm -10)
            Utterance(f"B{c}", [Hyp("a x c", {"am": -10.0, "lm": -10.0}),
                                Hyp(ref3, {"am": -10 + 10 * lm_hi, "lm": -20.0})], ref3),
            # C: right 4 words (am -10) vs wrong 3 words (am -10 + wip_lo)
            Utterance(f"C{c}", [Hyp("a b c", {"am": -10 + wip_lo, "lm": -5.0}),
                                Hyp(ref4, {"am": -10.0, "lm": -5.0})], ref4),
            # D: right 3 words (am -10 + wip_hi) vs wrong 4 words (am -10)
            Utterance(f"D{c}", [Hyp("a b c e", {"am": -10.0, "lm": -5.0}),
                                Hyp(ref3, {"am": -10 + wip_hi, "lm": -5.0})], ref3),
        ]
    return NBest(utts)


def test_finds_grid_optimum():
    nb = constructed(0.4, 0.6, 0.8, 1.2)
    res = tune_weights(nb, ["am", "lm"], wip=True)
    assert res.wer == 0.0 and res.errors == 0
    assert res.weights["am"] == 1.0
    assert 0.4 < res.weights["lm"] < 0.6 and 0.8 < res.weights["wip"] < 1.2
    assert list(res.weights) == ["am", "lm", "wip"]


@pytest.mark.parametrize("max_grid", [4096, 1])  # full grid, or one coordinate sweep
def test_refinement_finds_off_grid_optimum(max_grid):
    # No power-of-two grid point inside; dyadic bounds keep the boundary ties exact.
    nb = constructed(0.3125, 0.4375, 0.6875, 0.875)
    res = tune_weights(nb, ["am", "lm"], wip=True, max_grid=max_grid)
    assert res.errors == 0
    assert 0.3125 < res.weights["lm"] < 0.4375 and 0.6875 < res.weights["wip"] < 0.875


def test_result_agrees_with_scoring_and_is_deterministic():
    nb = constructed(0.3125, 0.4375, 0.6875, 0.875)
    # An unbeatable wrong hypothesis: same length as the others, best am and lm.
    nb.utts[0].hyps.append(Hyp("q r s", {"am": 0.0, "lm": 0.0}))
    a = tune_weights(nb, ["am", "lm"], wip=True)
    b = tune_weights(nb, ["am", "lm"], wip=True)
    assert a == b
    r = corpus_wer(nb, pick_best(nb, a.weights))
    assert (r.errors, r.words) == (a.errors, a.words)
    assert r.wer == pytest.approx(a.wer)
    assert a.errors == 3  # that utterance: 3 sub; all others right


def test_curve_along_lm_key():
    nb = constructed(0.4, 0.6, 0.8, 1.2)
    res = tune_weights(nb, ["am", "lm"], wip=True)
    assert res.curve_key == "lm"
    xs = [x for x, _ in res.curve]
    assert xs == sorted(xs) and xs[0] == 0.0 and res.weights["lm"] in xs
    at = dict(res.curve)
    assert at[res.weights["lm"]] == res.wer
    assert max(at.values()) > res.wer  # lm = 0 gets the A utterances wrong
    res = tune_weights(nb, ["am", "lm"], wip=True, lm_key="wip")
    assert res.curve_key == "wip" and min(x for x, _ in res.curve) < 0


def test_without_wip_and_bad_keys():
    nb = constructed(0.4, 0.6, 0.8, 1.2)
    res = tune_weights(nb, ["am", "lm"])
    assert set(res.weights) == {"am", "lm"} and 0.4 < res.weights["lm"] < 0.6
    with pytest.raises(InputError, match="'lm2'"):
        tune_weights(nb, ["am", "lm2"])
    with pytest.raises(InputError, match="lm-key"):
        tune_weights(nb, ["am", "lm"], lm_key="x")


def test_empty_lists_count_as_deletions():
    nb = constructed(0.4, 0.6, 0.8, 1.2)
    nb.utts.append(Utterance("E", [], "p q r"))
    res = tune_weights(nb, ["am", "lm"], wip=True)
    assert res.errors == 3


# ---- `asr-kd tune` --------------------------------------------------------------------------

def write_jsonl(path, nb: NBest):
    with open(path, "w") as f:
        for u in nb:
            f.write(json.dumps({"utt": u.utt, "ref": u.ref, "hyps": [
                {"text": h.text, "scores": h.scores} for h in u.hyps]}) + "\n")


def test_cli_tune(tmp_path, capsys):
    pytest.importorskip("asr_kd.nbest.io", reason="asr_kd.nbest readers not built yet")
    from asr_kd.cli import main
    write_jsonl(tmp_path / "dev.jsonl", constructed(0.4, 0.6, 0.8, 1.2))
    rc = main(["tune", "--nbest", str(tmp_path / "dev.jsonl"), "--scores", "am,lm", "--wip",
               "--out", str(tmp_path / "w.json"), "--plot", str(tmp_path / "curve.png")])
    out = capsys.readouterr().out
    assert rc == 0
    w = json.loads((tmp_path / "w.json").read_text())
    assert w["am"] == 1.0 and 0.4 < w["lm"] < 0.6 and 0.8 < w["wip"] < 1.2
    assert "%WER 0.00 [ 0 / 26, 0 ins, 0 del, 0 sub ]" in out
    assert "<- best" in out and "WER along lm" in out
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rc = main(["score", "--nbest", str(tmp_path / "dev.jsonl"), "--weights",
               str(tmp_path / "w.json"), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["wer"] == 0.0


def test_cli_tune_needs_refs(tmp_path, capsys):
    pytest.importorskip("asr_kd.nbest.io", reason="asr_kd.nbest readers not built yet")
    from asr_kd.cli import main
    (tmp_path / "n.jsonl").write_text(json.dumps(
        {"utt": "u", "hyps": [{"text": "a", "scores": {"am": -1.0}}]}) + "\n")
    rc = main(["tune", "--nbest", str(tmp_path / "n.jsonl"), "--scores", "am",
               "--out", str(tmp_path / "w.json")])
    assert rc == 2 and "references" in capsys.readouterr().err
    assert not (tmp_path / "w.json").exists()


def test_signed_key_can_take_a_negative_weight():
    # The wrong hypothesis has the better acoustic score but two OOV words: only a
    # negative weight on the OOV count (a penalty) makes the right one win.
    from asr_kd.nbest import Hyp, NBest, Utterance
    from asr_kd.tune import tune_weights

    utts = []
    for i in range(6):
        utts.append(Utterance(f"u{i}", [Hyp("a b c", {"am": -1.0, "oov:x": 2.0}),
                                        Hyp("a b d", {"am": -1.5, "oov:x": 0.0})], ref="a b d"))
    nb = NBest(utts)
    assert tune_weights(nb, ["am", "oov:x"]).wer > 0  # weights >= 0 cannot fix it
    res = tune_weights(nb, ["am", "oov:x"], signed=["oov:x"])
    assert res.wer == 0 and res.weights["oov:x"] < 0


def _guard_set(n_utts, lm_helps):
    """Two hypotheses per utterance; the LM picks the right one in ``lm_helps`` of them."""
    from asr_kd.nbest import Hyp, NBest, Utterance
    utts = []
    for i in range(n_utts):
        good_lm = i < lm_helps
        utts.append(Utterance(f"u{i}", [Hyp("a b x", {"am": -1.0, "lm": -5.0 if good_lm else -1.0}),
                                        Hyp("a b c", {"am": -1.1, "lm": -1.0 if good_lm else -5.0})],
                              ref="a b c"))
    return NBest(utts)


def test_guard_keeps_a_significant_gain_and_falls_back_on_a_chance_one(tmp_path, capsys):
    from asr_kd.tune import guard_weights
    fp = {"am": 1.0}
    big = _guard_set(40, 30)          # the LM fixes 30 of 40 utterances: significant
    res = tune_weights(big, ["am", "lm"])
    g = guard_weights(big, ["am", "lm"], res.weights, fp)
    assert not g.fell_back and g.weights == res.weights and g.p_tuned_better > 0.95
    assert g.cv_errors < g.fallback_errors
    # the LM fixes 1 utterance and breaks none: a win of one error is no evidence
    small = _guard_set(40, 1)
    for u in small.utts[1:]:
        u.hyps[1].scores["lm"] = u.hyps[0].scores["lm"]
    res = tune_weights(small, ["am", "lm"])
    assert res.errors < 40  # tuning alone takes the chance win
    g = guard_weights(small, ["am", "lm"], res.weights, fp)
    # out of fold the one helped utterance cannot be learnt from the others
    assert g.fell_back and g.weights == {"am": 1.0, "lm": 0.0} and g.cv_errors >= g.fallback_errors
    # the CLI: --fallback writes the fallback's weights and says why
    from asr_kd.cli import main
    from asr_kd.nbest import write_jsonl
    write_jsonl(small, tmp_path / "d.jsonl")
    (tmp_path / "fp.json").write_text(json.dumps(fp))
    assert main(["tune", "--nbest", str(tmp_path / "d.jsonl"), "--scores", "am,lm",
                 "--fallback", str(tmp_path / "fp.json"), "--out", str(tmp_path / "w.json")]) == 0
    assert "kept the fallback's weights" in capsys.readouterr().out
    w = json.loads((tmp_path / "w.json").read_text())
    assert {k: v for k, v in w.items() if k != "_tuned_on"} == {"am": 1.0, "lm": 0.0}
    assert main(["tune", "--nbest", str(tmp_path / "d.jsonl"), "--scores", "am,lm",
                 "--out", str(tmp_path / "w2.json")]) == 0
    assert json.loads((tmp_path / "w2.json").read_text())["lm"] > 0  # without --fallback
