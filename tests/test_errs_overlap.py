"""`asr-kd overlap`: reference sentences and 8-grams found in the LM text, after the LM-input
filter; limits that stop with one line; checked by brute force on random text."""
from __future__ import annotations

import json
import os
import random

import pytest

from asr_kd.cli import main

# ../shared/data beside the project (or beside the folder of a git worktree of it)
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = next((p for p in (os.path.join(os.path.dirname(_ROOT), "shared", "data"),
                           os.path.join(os.path.dirname(os.path.dirname(_ROOT)), "shared", "data"))
               if os.path.isdir(p)), "../shared/data")


def test_counts_and_filter(tmp_path, capsys):
    lm = tmp_path / "lm.txt"
    lm.write_text("the price rose N % to $ N a share in new york trading\n"
                  "mr. smith said the company will sell its unit\n"
                  "short line\n")
    ref = tmp_path / "ref"
    ref.write_text("u1 mister smith said the company will sell its unit\n"      # exact after filter
                   "u2 the price rose five % to $ ten a share on friday\n"       # some 8-grams
                   "u3 short line\n"                                             # exact, short
                   "u4 nothing here at all in this one sentence today ok\n"
                   "u5\n")                                                       # empty: left out
    rules = "mister => mr.; re:\\b(five|ten)\\b => N"
    rc = main(["overlap", "--lm-text", str(lm), "--ref", str(ref), "--text-filter", rules,
               "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)["sets"][0]
    # u2 filtered: "the price rose N % to $ N a share on friday": 4 8-grams, 3 in the LM
    assert (d["refs"], d["exact"], d["examples"]) == (4, 2, ["u1", "u3"])
    assert (d["ngrams"], d["ngrams_found"], d["short"]) == (2 + 4 + 0 + 4, 2 + 3, 1)
    assert d["exact_share"] == pytest.approx(50.0)
    # without the filter u1 is not an exact match and u2 shares no 8-gram
    assert main(["overlap", "--lm-text", str(lm), "--ref", str(ref), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["sets"][0]
    assert (d["exact"], d["ngrams_found"]) == (1, 1)


def test_limits_stop_with_one_line_after_writing_out(tmp_path, capsys):
    lm = tmp_path / "lm.txt"
    lm.write_text("a b c d e f g h i\nj k l\n")
    ref = tmp_path / "ref"
    ref.write_text("u1 a b c d e f g h i\nu2 x y z\nu3 j k l\n")
    out = tmp_path / "o.json"
    rc = main(["overlap", "--lm-text", str(lm), "--ref", str(ref), "--max-sentences", "50",
               "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert err.startswith(f"asr-kd overlap: error: {ref}: 66.67 % of the reference sentences "
                          "occur in the LM text (e.g. u1, u3), above the limit of 50 %")
    assert json.loads(out.read_text())["sets"][0]["exact"] == 2
    assert main(["overlap", "--lm-text", str(lm), "--ref", str(ref), "--max-sentences", "70",
                 "--max-ngrams", "99"]) == 2
    assert "8-grams occur in the LM text" in capsys.readouterr().err
    assert main(["overlap", "--lm-text", str(lm), "--ref", str(ref), "--max-sentences", "70",
                 "--max-ngrams", "100"]) == 0
    assert main(["overlap", "--lm-text", str(lm), "--ref", str(ref), "--max-ngrams", "101"]) == 2
    assert "expected a percentage" in capsys.readouterr().err
    assert main(["overlap", "--lm-text", str(tmp_path / "nope"), "--ref", str(ref)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_random_text_against_brute_force(tmp_path, capsys):
    rnd = random.Random(5)
    vocab = "a b c d".split()
    lm = [" ".join(rnd.choice(vocab) for _ in range(rnd.randint(1, 14))) for _ in range(300)]
    refs = [" ".join(rnd.choice(vocab) for _ in range(rnd.randint(1, 12))) for _ in range(80)]
    refs += lm[:7]
    (tmp_path / "lm.txt").write_text("\n".join(lm) + "\n")
    (tmp_path / "ref").write_text("".join(f"r{i} {t}\n" for i, t in enumerate(refs)))
    assert main(["overlap", "--lm-text", str(tmp_path / "lm.txt"), "--ref",
                 str(tmp_path / "ref"), "--json", "--ngram", "5"]) == 0
    d = json.loads(capsys.readouterr().out)["sets"][0]
    lm_set = set(lm)
    grams = {tuple(s.split()[i:i + 5]) for s in lm for i in range(len(s.split()) - 4)}
    ref_grams = [tuple(r.split()[i:i + 5]) for r in refs for i in range(len(r.split()) - 4)]
    assert d["exact"] == sum(r in lm_set for r in refs) >= 7
    assert d["ngrams"] == len(ref_grams)
    assert d["ngrams_found"] == sum(g in grams for g in ref_grams)


@pytest.mark.skipif(not os.path.isdir(SHARED), reason="no shared data (../shared/data)")
def test_whisper_wsj_has_no_ptb_sentence(tmp_path, capsys):
    """The shared data's README: no WSJ dev sentence occurs in PTB, also as 8-grams
    (raw text; after the Whisper-to-PTB filter a few 8-grams match)."""
    src = json.load(open(os.path.join(SHARED, "hyporadise", "wsj_dev.json")))
    (tmp_path / "ref").write_text("".join(f"{x['id']} {x['output']}\n" for x in src))
    assert main(["overlap", "--lm-text", os.path.join(SHARED, "ptb", "ptb.train.txt"),
                 "--ref", str(tmp_path / "ref"), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)["sets"][0]
    assert d["refs"] == 418 and d["exact"] == 0 and d["ngram_share"] < 0.1
