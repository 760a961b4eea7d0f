"""Settings that change a number are recorded where the number is, and a mismatch is
refused or warned about: the weights file's scoring settings, consensus options under
1-best decoding, tuning on case errors, positional ids through a conversion, one run
reported as two, and noise words in LM scoring."""
from __future__ import annotations

import json
import os
import random

import pytest
import torch

from asr_kd.cli import main
from asr_kd.modeldir import save_model
from asr_kd.models import LMConfig, LstmLM
from asr_kd.nbest import Hyp, NBest, Utterance, read_nbest, write_jsonl
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


def noisy_lists(n=40, seed=0, repeat=False):
    """Lists whose hypotheses carry '[noise]' tokens the references lack; the first
    hypothesis is right once the noise goes. With ``repeat``, hypothesis 0 is repeated."""
    rng = random.Random(seed)
    utts = []
    for i in range(n):
        ref = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 7)))
        w = ref.split()
        wrong = " ".join(w[:-1] + ["dog" if w[-1] != "dog" else "cat"])
        texts = [ref + " [noise]", wrong, "[laughter] " + ref + " ran"]
        if repeat:
            texts.insert(1, texts[0])
        hyps = [Hyp(t, {"am": -10.0 - j - rng.random(), "lm0": -5.0 - rng.random() * 3})
                for j, t in enumerate(texts)]
        utts.append(Utterance(f"u{i:03d}", hyps, ref))
    return NBest(utts)


# ---- 5. the weights file records the scoring settings ---------------------------------

def test_weights_record_the_filter_and_score_applies_it(tmp_path, capsys):
    write_jsonl(noisy_lists(), tmp_path / "dev.jsonl")
    rc, out, _ = run(capsys, "tune", "--nbest", tmp_path / "dev.jsonl", "--scores", "am,lm0",
                     "--noise", "[*]", "--out", tmp_path / "w.json")
    assert rc == 0 and "scoring filter: -pau- [*]" in out
    rec = json.loads((tmp_path / "w.json").read_text())["_tuned_on"]
    assert rec["noise"] == ["-pau-", "[*]"] and rec["repeats"] == 0
    # no filter options: the recorded filter, said so; before: -pau- only, WER from noise
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "dev.jsonl", "--weights",
                       tmp_path / "w.json", "--json")
    res = json.loads(out)
    assert rc == 0 and res["noise"] == ["-pau-", "[*]"] and res["wer"] == 0.0
    assert f"scoring filter from {tmp_path / 'w.json'}" in err
    # another filter given: used, with a warning naming both
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "dev.jsonl", "--weights",
                       tmp_path / "w.json", "--json", "--noise", "<unk>")
    assert rc == 0 and json.loads(out)["wer"] > 0
    assert "asr-kd score: warning:" in err and "tuned with the scoring filter -pau- [*]" in err


def test_repeated_hypotheses_against_a_rank_tuning_are_warned(tmp_path, capsys):
    write_jsonl(noisy_lists(), tmp_path / "dedup.jsonl")
    write_jsonl(noisy_lists(repeat=True), tmp_path / "rep.jsonl")
    assert run(capsys, "tune", "--nbest", tmp_path / "dedup.jsonl", "--scores", "rank,am",
               "--noise", "[*]", "--out", tmp_path / "w.json")[0] == 0
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "rep.jsonl", "--weights",
                     tmp_path / "w.json")
    assert rc == 0 and "without repeated hypotheses" in err and "--dedup" in err
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "dedup.jsonl", "--weights",
                     tmp_path / "w.json")
    assert rc == 0 and "warning" not in err


def test_srilm_score_folders_are_recorded_and_compared(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / "nb" / name).parent.mkdir(exist_ok=True)
        (tmp_path / "nb" / name).write_text("-1 -2 1 x\n-1.1 -1 1 y\n")
        (tmp_path / "pron").mkdir(exist_ok=True)
        (tmp_path / "pron" / name).write_text("0\n-1\n")
    (tmp_path / "ref").write_text("a y\nb y\n")
    base = ["--nbest", tmp_path / "nb", "--ref", tmp_path / "ref"]
    assert run(capsys, "tune", *base, "--scores", "am,lm0,pron", "--srilm-scores",
               f"pron={tmp_path / 'pron'}", "--out", tmp_path / "w.json")[0] == 0
    rec = json.loads((tmp_path / "w.json").read_text())["_tuned_on"]
    assert rec["srilm_scores"] == {"pron": str(tmp_path / "pron")}
    rc, _, err = run(capsys, "score", *base, "--weights", tmp_path / "w.json")
    assert "tuned with --srilm-scores pron, scored with (none)" in err
    rc, _, err = run(capsys, "score", *base, "--weights", tmp_path / "w.json", "--srilm-scores",
                     f"pron={tmp_path / 'pron'}")
    assert rc == 0 and "warning" not in err


def test_consensus_weights_record_the_deletion_bias(tmp_path, capsys):
    write_jsonl(noisy_lists(), tmp_path / "dev.jsonl")
    assert run(capsys, "tune", "--nbest", tmp_path / "dev.jsonl", "--scores", "am,lm0",
               "--decode", "consensus", "--noise", "[*]", "--out", tmp_path / "w.json")[0] == 0
    w = json.loads((tmp_path / "w.json").read_text())
    assert w["deletion_bias"] == 1.0 and w["_tuned_on"]["noise"] == ["-pau-", "[*]"]
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "dev.jsonl", "--weights",
                       tmp_path / "w.json", "--deletion-bias", "0.5", "--json")
    assert rc == 0 and "tuned with 1" in err and json.loads(out)["deletion_bias"] == 0.5


# ---- 9. consensus options need consensus decoding; consensus tune records the filter ----

@pytest.mark.parametrize("flag", ["--posterior-scale", "--deletion-bias"])
def test_consensus_options_without_consensus_are_refused(tmp_path, capsys, flag):
    write_jsonl(noisy_lists(), tmp_path / "n.jsonl")
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "n.jsonl", "--weight", "am=1",
                       flag, "0.5")
    assert rc == 2 and "%WER" not in out
    assert f"{flag} only apply to consensus decoding" in err and "--decode consensus" in err


def test_consensus_tune_prints_and_records_the_filter(tmp_path, capsys):
    write_jsonl(noisy_lists(), tmp_path / "n.jsonl")
    rc, out, _ = run(capsys, "tune", "--nbest", tmp_path / "n.jsonl", "--scores", "am,lm0",
                     "--decode", "consensus", "--noise", "[*]", "--out", tmp_path / "w.json",
                     "--curve-out", tmp_path / "c.json")
    assert rc == 0 and "scoring filter: -pau- [*]" in out
    assert json.loads((tmp_path / "c.json").read_text())["noise"] == ["-pau-", "[*]"]


# ---- 10. tune refuses references and hypotheses in other cases ------------------------

def test_tune_refuses_a_case_mismatch_and_writes_nothing(tmp_path, capsys):
    nb = noisy_lists()
    for u in nb:
        u.ref = u.ref.upper()
    write_jsonl(nb, tmp_path / "n.jsonl")
    rc, _, err = run(capsys, "tune", "--nbest", tmp_path / "n.jsonl", "--scores", "am,lm0",
                     "--out", tmp_path / "w.json")
    assert rc == 2 and "asr-kd tune: error:" in err and "not tuning" in err
    assert not (tmp_path / "w.json").exists()
    rc, _, _ = run(capsys, "tune", "--nbest", tmp_path / "n.jsonl", "--scores", "am,lm0",
                   "--noise", "[*]", "--ignore-case", "--out", tmp_path / "w.json")
    assert rc == 0 and json.loads((tmp_path / "w.json").read_text())["_tuned_on"]["ignore_case"]


# ---- 11. positional ids survive a conversion ------------------------------------------

def test_positional_ids_are_warned_at_conversion_and_after(tmp_path, capsys):
    items = [{"input": ["a b", "a c"], "score": [-1.0, -2.0]} for _ in range(3)]
    (tmp_path / "h.json").write_text(json.dumps(items))
    rc, _, err = run(capsys, "convert-nbest", tmp_path / "h.json", tmp_path / "o.jsonl")
    assert rc == 0 and "asr-kd convert-nbest: warning:" in err and "positions 0..2" in err
    assert read_nbest(str(tmp_path / "o.jsonl"), "jsonl").positional_ids
    (tmp_path / "ref").write_text("0 a b\n1 a c\n2 x y\n")
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "o.jsonl", "--ref", tmp_path / "ref",
                     "--weight", "score=1")
    assert rc == 0 and "matched by position only" in err
    # real ids: no warning, and none carried into the output
    for i, it in enumerate(items):
        it["id"] = f"utt{i}"
    (tmp_path / "h.json").write_text(json.dumps(items))
    rc, _, err = run(capsys, "convert-nbest", tmp_path / "h.json", tmp_path / "p.jsonl")
    assert rc == 0 and "warning" not in err
    assert "positional_id" not in (tmp_path / "p.jsonl").read_text()


# ---- 12. report --runs: one run given twice ------------------------------------------

def test_report_refuses_one_run_twice(tmp_path, capsys):
    run_dir = tmp_path / "r1"
    run_dir.mkdir()
    (run_dir / "results.json").write_text(json.dumps({"systems": [
        {"system": "student", "seeds": [0], "dev": {"wer": 5.0, "ser": 20.0, "oracle_wer": 2.0}}],
        "sets": ["dev"]}))
    rc, out, err = run(capsys, "report", "--exp", tmp_path / "exp", "--out", tmp_path / "rep",
                       "--runs", run_dir, str(run_dir) + "/")
    assert rc == 2 and "names one run twice" in err and "different seeds" not in out
    assert not (tmp_path / "rep" / "report.md").exists()
    # a copy of the run under another name: the same seeds
    (tmp_path / "r2").mkdir()
    (tmp_path / "r2" / "results.json").write_text((run_dir / "results.json").read_text())
    rc, out, err = run(capsys, "report", "--exp", tmp_path / "exp", "--out", tmp_path / "rep",
                       "--runs", run_dir, tmp_path / "r2")
    assert rc == 2 and "same seed(s) 0" in err


# ---- 13. rescore: noise and pause words are not scored by the LM -----------------------

def test_rescore_removes_noise_words_before_lm_scoring(tmp_path, capsys):
    vocab = WordVocab(["<s>", "</s>", "<unk>"] + WORDS)
    torch.manual_seed(0)
    save_model(LstmLM(LMConfig(vocab_size=vocab.size, embed_dim=8, hidden_dim=8)).eval(), vocab,
               str(tmp_path / "lm"))
    nb = NBest([Utterance("u", [Hyp("the cat -pau- sat [noise]"), Hyp("the cat sat")], "x")])
    write_jsonl(nb, tmp_path / "n.jsonl")
    rc, _, _ = run(capsys, "rescore", "--nbest", tmp_path / "n.jsonl", "--model", tmp_path / "lm",
                   "--name", "x", "--out", tmp_path / "o.jsonl", "--noise", "[*]", "--stats-out",
                   tmp_path / "s.json", "--quiet")
    assert rc == 0
    a, b = read_nbest(str(tmp_path / "o.jsonl"), "jsonl").utts[0].hyps
    assert a.scores["lm:x"] == b.scores["lm:x"] and a.scores["oov:x"] == 0.0
    assert json.loads((tmp_path / "s.json").read_text())["noise"] == ["-pau-", "[*]"]
    # the default removes the pause word only; --no-default-noise keeps it
    for opts, same in (([], False), (["--no-default-noise"], False)):
        assert run(capsys, "rescore", "--nbest", tmp_path / "n.jsonl", "--model",
                   tmp_path / "lm", "--name", "x", "--out", tmp_path / "d.jsonl", "--quiet",
                   *opts)[0] == 0
        a, b = read_nbest(str(tmp_path / "d.jsonl"), "jsonl").utts[0].hyps
        assert a.scores["oov:x"] == (1.0 if not opts else 2.0)
    assert os.path.exists(tmp_path / "d.jsonl")
