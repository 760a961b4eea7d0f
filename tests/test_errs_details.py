"""`asr-kd score --details`: alignments, confusions, ops and per-speaker WER whose counts
add up to the %WER line, cross-checked against an independent edit distance (rapidfuzz)."""
from __future__ import annotations

import json
import random

import pytest

from asr_kd.cli import main


def write_jsonl(path, utts):
    """utts: [(id, ref, [(text, am)])] as native JSONL."""
    with open(path, "w") as f:
        for utt, ref, hyps in utts:
            f.write(json.dumps({"utt": utt, "ref": ref, "hyps": [
                {"text": t, "scores": {"am": a}} for t, a in hyps]}) + "\n")
    return str(path)


SMALL = [
    ("spkA-01", "the cat sat on the mat", [("the bat sat on mat", -1.0), ("the cat sat", -2.0)]),
    ("spkA-02", "a b c", [("a b c d", -1.0)]),
    ("spkB-01", "hello world", [("hello word", -1.0)]),
    ("spkB-02", "x y", []),                      # no hypotheses: all deletions
    ("spkC-01", "", [("uh", -1.0)]),             # empty reference: all insertions
]


def test_score_details_files_and_counts(tmp_path, capsys):
    nb = write_jsonl(tmp_path / "n.jsonl", SMALL)
    out = tmp_path / "det"
    assert main(["score", "--nbest", nb, "--weight", "am=1", "--details", str(out)]) == 0
    wer_line = capsys.readouterr().out.splitlines()[0]
    # the cat sat on the mat -> the bat sat on mat: 1 S, 1 D; a b c d: 1 I; word: 1 S;
    # x y: 2 D; uh: 1 I.  13 reference words.
    assert wer_line == "%WER 53.85 [ 7 / 13, 2 ins, 3 del, 2 sub ]"
    summary = (out / "summary.txt").read_text()
    assert wer_line in summary
    assert "       1  cat -> bat" in summary and "       1  world -> word" in summary
    assert "       2  d" not in summary and "       1  d" in summary and "       1  uh" in summary
    det = json.loads((out / "details.json").read_text())
    assert (det["sub"], det["del"], det["ins"], det["words"]) == (2, 3, 2, 13)
    assert [u["ops"] for u in det["utterances"]] == ["CSCCDC", "CCCI", "CS", "DD", "I"]
    # per speaker: spkA 1S 1D 1I of 9, spkB 1S 2D of 4, spkC 1 insertion of 0 words
    spk = {g["speaker"]: g for g in det["speakers"]}
    assert (spk["spkA"]["errors"], spk["spkA"]["words"]) == (3, 9)
    assert (spk["spkB"]["errors"], spk["spkB"]["words"]) == (3, 4)
    assert spk["spkC"]["wer"] is None and spk["spkC"]["ins"] == 1
    pra = (out / "alignments.pra").read_text()
    assert ("id: (spkA-01)\nScores: (#C #S #D #I) 4 1 1 0\n"
            "REF:  the cat sat on the mat\n"
            "HYP:  the bat sat on *** mat\n"
            "Eval:     S          D\n") in pra
    ops = (out / "ops.txt").read_text().splitlines()
    assert "substitution cat bat 1" in ops and "deletion x *** 1" in ops
    assert "insertion *** uh 1" in ops and "correct the the 1" in ops
    per_utt = (out / "per_utt.txt").read_text()
    assert "spkA-01 #csid 4 1 0 1\n" in per_utt and "spkB-02 op   D   D\n" in per_utt


def test_speaker_chars_and_no_groups_without_prefix(tmp_path, capsys):
    utts = [(f"{s}0c03{i:02d}", "a b", [("a c", 0.0)]) for s in ("4k0", "4k1") for i in range(2)]
    nb = write_jsonl(tmp_path / "n.jsonl", utts)
    assert main(["score", "--nbest", nb, "--weight", "am=1", "--details", str(tmp_path / "d")]) == 0
    assert json.loads((tmp_path / "d" / "details.json").read_text())["speakers"] == []
    assert main(["score", "--nbest", nb, "--weight", "am=1", "--details", str(tmp_path / "e"),
                 "--speaker-chars", "3"]) == 0
    spk = json.loads((tmp_path / "e" / "details.json").read_text())["speakers"]
    assert [(g["speaker"], g["utts"], g["sub"]) for g in spk] == [("4k0", 2, 2), ("4k1", 2, 2)]
    assert "WER per speaker" in (tmp_path / "e" / "summary.txt").read_text()


def _levenshtein(a: list[str], b: list[str]) -> int:
    from rapidfuzz.distance import Levenshtein
    return Levenshtein.distance(a, b)


def test_counts_match_independent_alignment(tmp_path, capsys):
    """Per utterance, the alignment's errors equal rapidfuzz's word edit distance, its
    columns rebuild both word strings, and the corpus totals equal `score --json`."""
    pytest.importorskip("rapidfuzz")
    rnd = random.Random(7)
    vocab = "a b c d e f g the of".split()
    utts = []
    for i in range(200):
        ref = [rnd.choice(vocab) for _ in range(rnd.randint(0, 12))]
        hyps = []
        for k in range(rnd.randint(0, 4)):
            h = list(ref)
            for _ in range(rnd.randint(0, 4)):
                op = rnd.random()
                if op < 0.3 and h:
                    h[rnd.randrange(len(h))] = rnd.choice(vocab)
                elif op < 0.6 and h:
                    del h[rnd.randrange(len(h))]
                else:
                    h.insert(rnd.randint(0, len(h)), rnd.choice(vocab))
            hyps.append((" ".join(h), rnd.uniform(-5, 0)))
        utts.append((f"s{i % 7}-u{i:03d}", " ".join(ref), hyps))
    nb = write_jsonl(tmp_path / "n.jsonl", utts)
    out = tmp_path / "det"
    assert main(["score", "--nbest", nb, "--weight", "am=1", "--json", "--details", str(out),
                 "--out-hyp", str(tmp_path / "hyp")]) == 0
    res = json.loads(capsys.readouterr().out)
    det = json.loads((out / "details.json").read_text())
    assert {k: det[k] for k in ("words", "sub", "del", "ins")} == \
        {k: res[k] for k in ("words", "sub", "del", "ins")}
    assert det["wer"] == pytest.approx(res["wer"])
    hyps = dict((line.split(" ", 1) + [""])[:2] for line in
                (tmp_path / "hyp").read_text().splitlines())
    total = 0
    for u, (utt, ref, _) in zip(det["utterances"], utts):
        assert u["utt"] == utt and u["ref"] == ref and u["hyp"] == hyps[utt].strip()
        assert u["errors"] == _levenshtein(ref.split(), u["hyp"].split())
        r, h = iter(ref.split()), iter(u["hyp"].split())
        rebuilt_r = [next(r) for op in u["ops"] if op != "I"]
        rebuilt_h = [next(h) for op in u["ops"] if op != "D"]
        assert rebuilt_r == ref.split() and rebuilt_h == u["hyp"].split()
        total += u["errors"]
    assert total == res["sub"] + res["del"] + res["ins"]
    # the speaker table and the ops file sum to the same totals
    assert sum(g["errors"] for g in det["speakers"]) == total
    ops = [line.split() for line in (out / "ops.txt").read_text().splitlines()]
    assert sum(int(o[-1]) for o in ops if o[0] != "correct") == total
    assert sum(int(o[-1]) for o in ops if o[0] in ("correct", "substitution", "deletion")) == \
        res["words"]


def test_details_consensus_counts(tmp_path, capsys):
    nb = write_jsonl(tmp_path / "n.jsonl", SMALL[:3])
    assert main(["score", "--nbest", nb, "--weight", "am=1", "--decode", "consensus",
                 "--posterior-scale", "1", "--json", "--details", str(tmp_path / "d")]) == 0
    res = json.loads(capsys.readouterr().out)
    det = json.loads((tmp_path / "d" / "details.json").read_text())
    assert (det["sub"], det["del"], det["ins"]) == (res["sub"], res["del"], res["ins"])


def test_details_errors_are_one_line(tmp_path, capsys):
    with open(tmp_path / "n.jsonl", "w") as f:   # no reference
        f.write(json.dumps({"utt": "u1", "hyps": [{"text": "a b", "scores": {"am": 0}}]}) + "\n")
    nb = str(tmp_path / "n.jsonl")
    assert main(["score", "--nbest", nb, "--weight", "am=1", "--details", str(tmp_path / "d")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--details needs references" in err
    assert not (tmp_path / "d").exists()
    (tmp_path / "file").write_text("x")
    nb2 = write_jsonl(tmp_path / "m.jsonl", SMALL)
    assert main(["score", "--nbest", nb2, "--weight", "am=1", "--details",
                 str(tmp_path / "file")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("asr-kd score: error: ") and "expected a folder" in err
    assert main(["score", "--nbest", nb2, "--weight", "am=1", "--details", str(tmp_path / "e"),
                 "--speaker-chars", "0"]) == 2
    assert "--speaker-chars 0" in capsys.readouterr().err
