"""Consensus outputs SRILM and Kaldi users reach for: the meshes with word posteriors
(score --out-mesh), an nbest-rover control file (--write-rover-control), and repeated
hypotheses merged by log-sum-exp instead of aligned one by one."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest

from asr_kd.cli import main
from asr_kd.consensus import build_mesh, posteriors

LN10 = math.log(10)
HYPS = [  # (text, am, lm0, x)
    [("a b c", -1.0, -2.0, -1.0), ("a x c", -1.2, -2.1, -2.0), ("a b", -1.5, -1.0, -3.0)],
    [("d e", -1.0, -2.0, -1.0), ("d f", -0.8, -2.5, -1.0)]]
W = {"am": 2.0, "lm0": 1.0, "x": 0.5, "wip": 0.3}
S = 3.0


@pytest.fixture
def lists(tmp_path, capsys):
    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps({"utt": f"u{i}", "hyps": [
        {"text": t, "scores": {"am": a, "lm0": l, "x": x}} for t, a, l, x in hyps]}) + "\n"
        for i, hyps in enumerate(HYPS)))
    assert main(["convert-nbest", str(src), str(tmp_path / "sr"), "--to", "srilm"]) == 0
    capsys.readouterr()
    return src, tmp_path / "sr"


def _score(nb, *extra):
    args = ["score", "--nbest", str(nb), "--decode", "consensus", "--posterior-scale", str(S)]
    for k, v in W.items():
        args += ["--weight", f"{k}={v}"]
    return main(args + list(extra))


def test_out_mesh_holds_the_word_posteriors(lists, tmp_path):
    src, _ = lists
    assert _score(src, "--out-mesh", str(tmp_path / "mesh")) == 0
    assert sorted(os.listdir(tmp_path / "mesh")) == ["u0", "u1"]
    lines = (tmp_path / "mesh" / "u0").read_text().splitlines()
    assert lines[:3] == ["name u0", "numaligns 3", "posterior 1"]
    # the hypothesis posteriors, computed here from the definition
    tot = np.array([W["am"] * a + W["lm0"] * l + W["x"] * x + W["wip"] * len(t.split())
                    for t, a, l, x in HYPS[0]])
    p = np.exp(tot / S) / np.exp(tot / S).sum()
    cols = [dict(zip(l.split()[2::2], map(float, l.split()[3::2]))) for l in lines[3:]]
    assert cols[0] == {"a": pytest.approx(1.0)}
    assert cols[1] == {"b": pytest.approx(p[0] + p[2]), "x": pytest.approx(p[1])}
    assert cols[2] == {"c": pytest.approx(p[0] + p[1]), "*DELETE*": pytest.approx(p[2])}


def test_out_mesh_needs_consensus(lists, tmp_path, capsys):
    src, _ = lists
    assert main(["score", "--nbest", str(src), "--weight", "am=1", "--out-mesh",
                 str(tmp_path / "m")]) == 2
    assert "need" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_rover_control_gives_the_same_posteriors(lists, tmp_path, capsys):
    _, sr = lists
    ctl = tmp_path / "rover.ctl"
    assert _score(sr, "--srilm-scores", f"x={sr / 'x'}", "--write-rover-control", str(ctl)) == 0
    lines = ctl.read_text().splitlines()
    d, w_x = lines[0].split("\t")
    assert d == os.path.abspath(sr / "x") and w_x.split()[1] == "+"
    d, rest = lines[1].split("\t")
    lmw, wtw, sysw, maxn, scale = map(float, rest.split())
    assert d == os.path.abspath(sr) and (sysw, maxn) == (1.0, 0)
    # nbest-rover's posteriors from the SRILM files themselves: 10^(total10 / scale),
    # total10 = am + lmw * lm + wtw * nwords + w_x * x (log10 scores, acoustic weight 1)
    for u, hyps in enumerate(HYPS):
        rows = [l.split() for l in (sr / f"u{u}.nbest").read_text().splitlines()]
        xs = [float(v) for v in (sr / "x" / f"u{u}").read_text().split()]
        t10 = np.array([float(r[0]) + lmw * float(r[1]) + wtw * int(r[2])
                        + float(w_x.split()[0]) * x for r, x in zip(rows, xs)])
        rover = 10 ** (t10 / scale) / (10 ** (t10 / scale)).sum()
        tot = np.array([W["am"] * a + W["lm0"] * l + W["x"] * x + W["wip"] * len(t.split())
                        for t, a, l, x in hyps])
        assert rover == pytest.approx(posteriors(tot, S), rel=1e-9)
    # a weighted score without its folder, and non-SRILM input, are refused
    assert _score(sr, "--srilm-scores", f"x={sr / 'x'}", "--weight", "rank=0.1",
                  "--write-rover-control", str(tmp_path / "r2")) == 2
    assert "no SRILM score folder for rank" in capsys.readouterr().err
    assert _score(lists[0], "--write-rover-control", str(tmp_path / "r3")) == 2
    assert "needs SRILM input" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists() and not (tmp_path / "r3").exists()


def test_repeats_merged_by_log_sum_exp():
    hyps = [("b", "c", "a"), ("c",), ("a",), ("a",), ("c",)]
    tot = np.array([-0.2, -1.6, -0.5, -0.8, -0.3])
    mesh, order = build_mesh(hyps, tot, 1.0)
    # the same as one copy per word string with the log-sum-exp of its copies' totals
    uniq = [("b", "c", "a"), ("c",), ("a",)]
    lse = [-0.2, math.log(math.exp(-1.6) + math.exp(-0.3)), math.log(math.exp(-0.5) + math.exp(-0.8))]
    ref, _ = build_mesh(uniq, np.array(lse), 1.0)
    assert [{w: pytest.approx(p) for w, p in c.items()} for c in mesh.columns] == ref.columns
    assert mesh.consensus() == ref.consensus() == ["a"]
    assert sorted(order.tolist()) == list(range(5))
    by_hyp = {int(h): mesh.paths[k] for k, h in enumerate(order)}
    assert by_hyp[2] == by_hyp[3] and by_hyp[1] == by_hyp[4]
    from asr_kd.consensus import merged_totals
    assert merged_totals([[0], [2, 3]], tot, 0.0).tolist() == [-0.2, -0.5]
