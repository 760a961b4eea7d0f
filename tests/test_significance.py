"""Bootstrap WER difference, exact sign test, and `asr-kd compare`."""
from __future__ import annotations

import json
from math import comb

import numpy as np
import pytest

from asr_kd.significance import binom_two_sided, bootstrap_wer_diff, sign_test


def systems(seed=1, u=200):
    rng = np.random.default_rng(seed)
    words = rng.integers(1, 20, size=u)
    a = rng.binomial(words, 0.10)
    b = rng.binomial(words, 0.05)
    return a, b, words


def test_bootstrap_reproducible_with_seed():
    a, b, w = systems()
    r1 = bootstrap_wer_diff(a, b, w, n=500, seed=7)
    r2 = bootstrap_wer_diff(a, b, w, n=500, seed=7)
    r3 = bootstrap_wer_diff(a, b, w, n=500, seed=8)
    assert r1 == r2
    assert r1.mean != r3.mean
    assert r1.diff == r3.diff == pytest.approx(100 * (b.sum() - a.sum()) / w.sum())


def test_bootstrap_sensible():
    a, b, w = systems()
    r = bootstrap_wer_diff(a, b, w, n=1000, seed=0)
    assert r.low < r.mean < r.high
    assert r.low <= r.diff <= r.high
    assert r.high < 0 and r.p_b_better > 0.99  # B makes half the errors
    flipped = bootstrap_wer_diff(b, a, w, n=1000, seed=0)
    assert flipped.p_b_better == pytest.approx(1 - r.p_b_better)
    assert flipped.mean == pytest.approx(-r.mean)


def test_bootstrap_identical_systems():
    a, _, w = systems()
    r = bootstrap_wer_diff(a, a, w, n=200, seed=0)
    assert (r.diff, r.mean, r.low, r.high) == (0.0, 0.0, 0.0, 0.0)
    assert r.p_b_better == 0.5  # ties count one half, by definition


def test_bootstrap_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        bootstrap_wer_diff([1, 2], [1], [3, 3])


def test_binomial_p_values_exact():
    assert binom_two_sided(0, 10) == 2 / 1024
    assert binom_two_sided(10, 10) == 2 / 1024
    assert binom_two_sided(1, 5) == 12 / 32
    assert binom_two_sided(5, 10) == 1.0
    assert binom_two_sided(0, 0) == 1.0
    n, k = 40, 12
    assert binom_two_sided(k, n) == pytest.approx(2 * sum(comb(n, i) for i in range(k + 1)) / 2**n)
    assert 0.0 <= binom_two_sided(1, 3000) < 1e-300  # exact integers: no overflow error
    assert binom_two_sided(1400, 3000) == pytest.approx(
        2 * sum(comb(3000, i) for i in range(1401)) / 2**3000)


def test_sign_test_counts():
    r = sign_test([1, 2, 3, 0, 5], [1, 1, 4, 0, 2])
    assert (r.a_better, r.b_better, r.ties) == (1, 2, 2)
    assert r.p_value == 1.0
    r = sign_test([3] * 12, [1] * 10 + [3, 3])
    assert (r.b_better, r.ties) == (10, 2) and r.p_value == 2 / 1024
    assert "sign test" in r.name


# ---- `asr-kd compare` -----------------------------------------------------------------------

def test_cli_compare(tmp_path, capsys):
    pytest.importorskip("asr_kd.nbest.refs", reason="asr_kd.nbest readers not built yet")
    from asr_kd.cli import main
    (tmp_path / "ref").write_text("u1 a b c\nu2 d e\nu3 f g h i\n")
    (tmp_path / "a").write_text("u1 a x c\nu2 d\nu3 f g h i\n")
    (tmp_path / "b.trn").write_text("a b c (u1)\nd e (u2)\nf g h (u3)\n")
    args = ["compare", "--ref", str(tmp_path / "ref"), str(tmp_path / "a"),
            str(tmp_path / "b.trn"), "--n-boot", "200", "--seed", "3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "%WER 22.22 [ 2 / 9, 0 ins, 1 del, 1 sub ]" in out
    assert "%WER 11.11 [ 1 / 9, 0 ins, 1 del, 0 sub ]" in out
    assert "P(B better than A)" in out and "sign test" in out
    assert main(args + ["--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["a"]["wer"] == pytest.approx(200 / 9) and d["b"]["words"] == 9
    assert d["bootstrap"]["diff"] == pytest.approx(-100 / 9)
    assert (d["sign_test"]["a_better"], d["sign_test"]["b_better"]) == (1, 2)
    assert main(args + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out) == d  # same seed, same numbers


def test_cli_compare_missing_ids(tmp_path, capsys):
    pytest.importorskip("asr_kd.nbest.refs", reason="asr_kd.nbest readers not built yet")
    from asr_kd.cli import main
    (tmp_path / "ref").write_text("u1 a\nu2 b\nu3 c\n")
    (tmp_path / "a").write_text("u1 a\n")
    (tmp_path / "b").write_text("u1 a\nu2 b\nu3 c\n")
    assert main(["compare", "--ref", str(tmp_path / "ref"), str(tmp_path / "a"),
                 str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "u2, u3" in err and "2 reference ids" in err
