"""`asr-kd compare --details`: the utterances where two systems choose differently, sorted by
the difference of errors, and the win/loss/tie counts that are the sign test's inputs."""
from __future__ import annotations

import json
import random

import pytest

from asr_kd.cli import main


def write_text(path, rows):
    path.write_text("".join(f"{u} {t}".rstrip() + "\n" for u, t in rows))
    return str(path)


REFS = [("u1", "a b c d"), ("u2", "e f g"), ("u3", "h i"), ("u4", "j k l"), ("u5", "m")]
HYP_A = [("u1", "a b c d"), ("u2", "e x g"), ("u3", "h i"), ("u4", "j"), ("u5", "m")]
HYP_B = [("u1", "a x y d"), ("u2", "e f g"), ("u3", "h i"), ("u4", "j k q"), ("u5", "n")]


def test_compare_details_summary_and_order(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", REFS)
    a, b = write_text(tmp_path / "a", HYP_A), write_text(tmp_path / "b", HYP_B)
    out = tmp_path / "diff"
    assert main(["compare", "--ref", ref, a, b, "--json", "--details", str(out)]) == 0
    sign = json.loads(capsys.readouterr().out)["sign_test"]
    d = json.loads((out / "differences.json").read_text())
    # errors A: 0 1 0 2 0; B: 2 0 0 1 1 -> B better on u2, u4; A better on u1, u5; tie u3
    assert (d["b_better"], d["a_better"], d["ties"]) == (2, 2, 1)
    assert (d["b_better"], d["a_better"], d["ties"]) == \
        (sign["b_better"], sign["a_better"], sign["ties"])
    assert d["identical"] == 1 and d["differ"] == 4
    # |diff| largest first; among equal sizes B better (negative) first, then input order
    assert [(u["utt"], u["diff"]) for u in d["utterances"]] == \
        [("u1", 2), ("u2", -1), ("u4", -1), ("u5", 1)]
    assert d["utterances"][0]["ops_b"] == ["CSSC"] and d["utterances"][2]["ops_a"] == ["CDD"]
    text = (out / "differences.txt").read_text()
    assert "5 utterances: B better on 2, A better on 2, ties 1 (1 with the same choice" in text
    assert ("== u1: errors A 0, B 2, B - A +2\n"
            "Scores: (#C #S #D #I) 4 0 0 0\nREF:  a b c d\nA:    a b c d\n") in text
    assert "REF:  a b c d\nB:    a x y d\nEval:   S S\n" in text
    assert "u3" not in text


def test_compare_details_random_matches_sign_test(tmp_path, capsys):
    rnd = random.Random(3)
    vocab = "a b c d e".split()
    refs, ha, hb = [], [], []
    for i in range(300):
        r = [rnd.choice(vocab) for _ in range(rnd.randint(1, 8))]
        refs.append((f"u{i}", " ".join(r)))
        for h in (ha, hb):
            w = list(r)
            for _ in range(rnd.randint(0, 2)):
                if w and rnd.random() < 0.5:
                    w[rnd.randrange(len(w))] = rnd.choice(vocab)
                else:
                    w.insert(rnd.randint(0, len(w)), rnd.choice(vocab))
            h.append((f"u{i}", " ".join(w)))
    ref = write_text(tmp_path / "ref", refs)
    a, b = write_text(tmp_path / "a", ha), write_text(tmp_path / "b", hb)
    assert main(["compare", "--ref", ref, a, b, "--json", "--details", str(tmp_path / "d")]) == 0
    res = json.loads(capsys.readouterr().out)
    d = json.loads((tmp_path / "d" / "differences.json").read_text())
    s = res["sign_test"]
    assert (d["b_better"], d["a_better"], d["ties"]) == (s["b_better"], s["a_better"], s["ties"])
    # the listed errors add up to each system's error count (identical choices cancel out)
    ident = sum(1 for x, y in zip(ha, hb) if x == y)
    assert d["identical"] == ident and d["differ"] == 300 - ident
    err_a = res["a"]["sub"] + res["a"]["del"] + res["a"]["ins"]
    err_b = res["b"]["sub"] + res["b"]["del"] + res["b"]["ins"]
    assert sum(u["errors_b"] - u["errors_a"] for u in d["utterances"]) == err_b - err_a
    diffs = [abs(u["diff"]) for u in d["utterances"]]
    assert diffs == sorted(diffs, reverse=True)


def test_compare_details_pooled_runs(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", REFS)
    a1, b1 = write_text(tmp_path / "a1", HYP_A), write_text(tmp_path / "b1", HYP_B)
    a2, b2 = write_text(tmp_path / "a2", HYP_B), write_text(tmp_path / "b2", HYP_B)
    assert main(["compare", "--ref", ref, f"{a1},{a2}", f"{b1},{b2}", "--json",
                 "--details", str(tmp_path / "d")]) == 0
    sign = json.loads(capsys.readouterr().out)["sign_test"]
    d = json.loads((tmp_path / "d" / "differences.json").read_text())
    assert d["runs"] == 2
    assert (d["b_better"], d["a_better"], d["ties"]) == \
        (sign["b_better"], sign["a_better"], sign["ties"])
    text = (tmp_path / "d" / "differences.txt").read_text()
    assert "A2:" in text and "B2:" in text and "summed over the 2 runs" in text


def test_compare_details_refuses_a_file_in_the_way(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", REFS)
    a, b = write_text(tmp_path / "a", HYP_A), write_text(tmp_path / "b", HYP_B)
    assert main(["compare", "--ref", ref, a, b, "--details", a]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asr-kd compare: error: ") and err.count("\n") == 1


@pytest.mark.parametrize("noise", [["--noise", "x"]])
def test_compare_details_after_the_scoring_filter(tmp_path, capsys, noise):
    ref = write_text(tmp_path / "ref", REFS)
    a, b = write_text(tmp_path / "a", HYP_A), write_text(tmp_path / "b", HYP_B)
    assert main(["compare", "--ref", ref, a, b, "--json", "--details", str(tmp_path / "d"),
                 *noise]) == 0
    d = json.loads((tmp_path / "d" / "differences.json").read_text())
    assert d["noise"][-1] == "x"
    assert all("x" not in u["a"][0].split() + u["b"][0].split() for u in d["utterances"])
