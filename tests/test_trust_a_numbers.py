"""Wrong numbers a new user met: an empty NBestList2.0 hypothesis that lost its
scores, a case check that missed sentence case, SRILM weights in the wrong slots,
and the thread count of exported models in rescoring stats."""
from __future__ import annotations

import json
import math

import pytest
import torch

from asr_kd.checks import ref_hyp_case_mismatch
from asr_kd.cli import main
from asr_kd.modeldir import save_model
from asr_kd.models import LMConfig, LstmLM
from asr_kd.nbest import Hyp, NBest, Utterance, read_nbest, write_jsonl
from asr_kd.nbest.srilm import format_srilm_weights, srilm_weights
from asr_kd.scoring import pick_best
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")
LN10 = math.log(10.0)


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


# ---- 1. NBestList2.0: an empty hypothesis keeps its acoustic and LM scores ---------------

def test_empty_hypothesis_keeps_its_scores_in_nbestlist2(tmp_path, capsys):
    # the empty hypothesis has the worse acoustic and LM scores: it must not win
    nb = NBest([Utterance("u1", [Hyp("a b", {"am": -10.0, "lm0": -5.0}),
                                 Hyp("", {"am": -40.0, "lm0": -20.0})], "a b")])
    write_jsonl(nb, tmp_path / "in.jsonl")
    rc, _, _ = run(capsys, "convert-nbest", "--to", "srilm", "--srilm-version", "2",
                   tmp_path / "in.jsonl", tmp_path / "out")
    assert rc == 0
    back = read_nbest(str(tmp_path / "out"), "srilm")
    empty = back.utts[0].hyps[1]
    assert empty.text == ""                 # the carrier token is no word
    assert empty.scores["am"] == pytest.approx(-40.0, abs=0.06)
    assert empty.scores["lm0"] == pytest.approx(-20.0, abs=0.06)
    assert pick_best(back, {"am": 1.0, "lm0": 1.0}) == [0]
    # zero scores need no carrier: the line stays as SRILM writes it
    nb.utts[0].hyps[1].scores.update(am=0.0, lm0=0.0)
    write_jsonl(nb, tmp_path / "z.jsonl")
    assert run(capsys, "convert-nbest", "--to", "srilm", "--srilm-version", "2",
               tmp_path / "z.jsonl", tmp_path / "z")[0] == 0
    assert (tmp_path / "z" / "u1.nbest").read_text().splitlines()[-1] == "(0)"


# ---- 2. case: sentence case against lower-case references ------------------------------

def sentence_case_lists(n=40):
    utts = []
    for i in range(n):
        ref = f"the cat sat on mat number {i} and the dog ran home today"
        hyp = ref[0].upper() + ref[1:]          # raw Whisper / NeMo: sentence case
        utts.append(Utterance(f"u{i:02d}", [Hyp(hyp, {"am": -1.0}),
                                            Hyp(ref.replace("dog", "cat"), {"am": -2.0})], ref))
    return NBest(utts)


def test_sentence_case_is_warned_and_ignore_case_scores_it(tmp_path, capsys):
    nb = sentence_case_lists()
    msg = ref_hyp_case_mismatch(nb)
    assert msg and "only when case is ignored" in msg and "--ignore-case" in msg
    write_jsonl(nb, tmp_path / "n.jsonl")
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "n.jsonl", "--weight", "am=1",
                       "--json")
    assert rc == 0 and json.loads(out)["wer"] > 0
    assert "asr-kd score: warning:" in err and "--ignore-case" in err
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "n.jsonl", "--weight", "am=1",
                       "--json", "--ignore-case")
    res = json.loads(out)
    assert rc == 0 and res["wer"] == 0.0 and res["ignore_case"] is True and "warning" not in err
    # the same check in compare, and the option there too
    (tmp_path / "ref").write_text("".join(f"{u.utt} {u.ref}\n" for u in nb))
    (tmp_path / "hyp").write_text("".join(f"{u.utt} {u.hyps[0].text}\n" for u in nb))
    rc, out, err = run(capsys, "compare", "--ref", tmp_path / "ref", tmp_path / "hyp",
                       tmp_path / "hyp", "--json", "--ignore-case")
    res = json.loads(out)
    assert rc == 0 and res["a"]["wer"] == 0.0 and res["ignore_case"] is True
    assert "warning" not in err


def test_a_few_capitalised_names_are_not_warned_about():
    nb = sentence_case_lists()
    for u in nb:      # proper names capitalised on both sides; hypotheses as the references
        u.ref = u.ref.replace("mat", "Boston")
        u.hyps[0].text = u.ref
    nb.utts[0].hyps[0].text = nb.utts[0].ref.replace("the cat", "The cat")
    assert ref_hyp_case_mismatch(nb) is None


# ---- 3. --print-srilm: slots and the posterior scale -----------------------------------

def test_srilm_weights_with_lm0_and_no_am():
    s = srilm_weights({"lm0": 1.0, "lm:x": 0.5})
    assert s["order"][:3] == ["am", "lm0", "nwords"] and s["weights"] == [0.0, 1.0, 0.0, 0.5]
    assert format_srilm_weights(s)[1] == "   weights = 0 1 0 0.5"


def test_srilm_weights_of_consensus_weights_carry_the_posterior_scale():
    w = {"am": 2.0, "lm0": 8.0, "wip": LN10}
    s = srilm_weights(w, posterior_scale=4.0)
    # nbest-optimize's lambdas are the posterior weights: weights / S; its scale is S / am
    assert s["weights"] == pytest.approx([0.5, 2.0, 0.25])
    assert s["normed"] == pytest.approx([1.0, 4.0, 0.5]) and s["scale"] == pytest.approx(2.0)
    assert s["posterior_scale"] == pytest.approx(2.0)
    lines = format_srilm_weights(s)
    assert "   scale = 2" in lines
    assert lines[-1] == "   nbest-lattice -use-mesh -rescore-lmw 4 -rescore-wtw 0.5 " \
        "-posterior-scale 2"
    # SRILM's posteriors 10^((am + lmw lm + wtw n) / ps) equal asr_kd's softmax(total / S)
    am, lm, n = -12.3, -4.5, 3
    srilm = (am / LN10 + 4 * lm / LN10 + 0.5 * n) / 2.0 * LN10
    ours = (2.0 * am + 8.0 * lm + LN10 * n) / 4.0
    assert srilm == pytest.approx(ours)
    # 1-best weights keep the old form
    assert srilm_weights(w)["scale"] == pytest.approx(0.5) and "posterior_scale" \
        not in srilm_weights(w)


def consensus_lists(n=30):
    utts = []
    for i in range(n):
        ref = "a b c d"
        hyps = [Hyp("a x c d", {"am": -1.0, "lm0": -2.0}), Hyp("a b c e", {"am": -1.2,
                "lm0": -2.1}), Hyp("a b c d", {"am": -1.5 - 0.01 * i, "lm0": -2.2}),
                Hyp("a b y d", {"am": -1.3, "lm0": -2.0})]
        utts.append(Utterance(f"u{i:02d}", hyps, ref))
    return NBest(utts)


def test_print_srilm_with_consensus_weights_in_score_and_tune(tmp_path, capsys):
    write_jsonl(consensus_lists(), tmp_path / "n.jsonl")
    (tmp_path / "w.json").write_text(json.dumps({"am": 1.0, "lm0": 0.5, "decode": "consensus",
                                                 "posterior_scale": 3.0}))
    rc, out, _ = run(capsys, "score", "--nbest", tmp_path / "n.jsonl", "--weights",
                     tmp_path / "w.json", "--print-srilm")
    assert rc == 0 and "   scale = 3" in out and "-posterior-scale 3" in out
    rc, out, _ = run(capsys, "tune", "--nbest", tmp_path / "n.jsonl", "--scores", "am,lm0",
                     "--decode", "consensus", "--out", tmp_path / "t.json", "--print-srilm")
    assert rc == 0 and "SRILM weights" in out and "   normed = " in out
    scale = json.loads((tmp_path / "t.json").read_text())["posterior_scale"]
    if scale:
        assert "-posterior-scale" in out


# ---- 4. rescore --stats-out: the threads an exported model ran on ----------------------

def test_rescore_stats_record_one_thread_for_exported_models(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    words = ["a", "b", "c", "d"]
    torch.manual_seed(0)
    model = LstmLM(LMConfig(vocab_size=7, embed_dim=8, hidden_dim=8, num_layers=1)).eval()
    save_model(model, WordVocab(["<s>", "</s>", "<unk>"] + words), str(tmp_path / "lm"))
    assert run(capsys, "export", "--model", tmp_path / "lm", "--format", "onnx", "--out",
               tmp_path / "onnx")[0] == 0
    write_jsonl(NBest([Utterance("u", [Hyp("a b"), Hyp("c d")], "a b")]), tmp_path / "n.jsonl")
    stats = {}
    for name in ("lm", "onnx"):
        rc, _, _ = run(capsys, "rescore", "--threads", "2", "--nbest", tmp_path / "n.jsonl",
                       "--model", tmp_path / name, "--name", "x", "--out",
                       tmp_path / f"{name}.jsonl", "--stats-out", tmp_path / f"{name}.json",
                       "--quiet")
        assert rc == 0
        stats[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert stats["lm"]["threads"] == 2 and stats["onnx"]["threads"] == 1
