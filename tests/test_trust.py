"""No silent wrong numbers (issue 14, item 1) and one policy for references without
hypotheses (issue 13, part 4): empty sets are errors, suspicious inputs are warned
about with the likely fix, weights files say what they were tuned on."""
from __future__ import annotations

import json
import random

import pytest
import torch

from asr_kd.checks import case_shares, oov_report, oov_warning, ref_hyp_case_mismatch
from asr_kd.cli import main
from asr_kd.modeldir import save_model
from asr_kd.models import LMConfig, LstmLM
from asr_kd.nbest import Hyp, NBest, Utterance, read_nbest, write_jsonl
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")

WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran"]


def lists(n=30, seed=0, upper_hyps=False, upper_refs=False, scale=1.0, with_refs=True):
    """``n`` utterances of 3 hypotheses (scores am, lm); the reference is hypothesis 0 or 1."""
    rng = random.Random(seed)
    utts = []
    for i in range(n):
        base = [rng.choice(WORDS) for _ in range(rng.randint(2, 6))]
        texts = [" ".join(base)]
        for _ in range(2):
            w = list(base)
            w[rng.randrange(len(w))] = rng.choice(WORDS)
            texts.append(" ".join(w))
        ref = texts[rng.randrange(2)]
        if upper_hyps:
            texts = [t.upper() for t in texts]
        if upper_refs:
            ref = ref.upper()
        utts.append(Utterance(f"u{i:03d}", [
            Hyp(t, {"am": scale * rng.uniform(-20, -10), "lm": rng.uniform(-30, -5)})
            for t in texts], ref if with_refs else None))
    return NBest(utts)


def run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return rc, out.out, out.err


# ------------------------------------------------------------------ empty sets --

def test_score_of_an_empty_set_is_an_error_naming_the_file(tmp_path, capsys):
    # before: "%WER 0.00 [ 0 / 0 ... ]", exit 0
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    (tmp_path / "ref").write_text("u1 a b\n")
    rc, out, err = run(capsys, "score", "--nbest", empty, "--ref", tmp_path / "ref",
                       "--weight", "am=1")
    assert rc == 2 and "%WER" not in out
    assert err.startswith(f"asr-kd score: error: {empty}: no utterances") and "--allow-empty" in err
    rc, out, _ = run(capsys, "score", "--nbest", empty, "--weight", "am=1", "--allow-empty")
    assert rc == 0  # asked for


def test_empty_conversion_is_an_error_and_writes_nothing(tmp_path, capsys):
    # before: an empty output, exit 0, for a JSON '[]' and for an ESPnet folder read as srilm
    (tmp_path / "e.json").write_text("[]")
    esp = tmp_path / "decode" / "1best_recog"
    esp.mkdir(parents=True)
    (esp / "text").write_text("u1 a b\n")
    (esp / "score").write_text("u1 -1.5\n")
    for args in ([tmp_path / "e.json"], ["--from", "srilm", tmp_path / "decode"]):
        out = tmp_path / "o.jsonl"
        rc, _, err = run(capsys, "convert-nbest", *args, out)
        assert rc == 2 and "no utterances" in err and str(args[-1]) in err
        assert not out.exists()
    rc, _, _ = run(capsys, "convert-nbest", tmp_path / "e.json", out, "--allow-empty")
    assert rc == 0 and out.read_text() == ""


def test_tune_on_an_empty_set_writes_no_weights(tmp_path, capsys):
    (tmp_path / "e.jsonl").write_text("")
    rc, _, err = run(capsys, "tune", "--nbest", tmp_path / "e.jsonl", "--scores", "am,lm",
                     "--out", tmp_path / "w.json")
    assert rc == 2 and "no utterances to tune" in err and str(tmp_path / "e.jsonl") in err
    assert not (tmp_path / "w.json").exists()


# --------------------------------------------------------------- case and OOV --

def test_case_shares_and_ref_hyp_mismatch():
    assert case_shares(["THE CAT", "a N"]) == (0.75, 0.25, 4)
    assert case_shares(["123 <UNK>"])[2] == 1  # '123' has no cased letter
    assert ref_hyp_case_mismatch(lists()) is None
    assert ref_hyp_case_mismatch(lists(upper_hyps=True, upper_refs=True)) is None
    msg = ref_hyp_case_mismatch(lists(upper_hyps=True))
    assert "100 % of the reference words are lower case" in msg
    assert "100 % of the hypothesis words upper case" in msg


def test_score_warns_on_references_in_the_other_case(tmp_path, capsys):
    # before: %WER ~100, exit 0, no hint
    write_jsonl(lists(upper_refs=True), tmp_path / "n.jsonl")
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "n.jsonl", "--weight", "am=1")
    assert rc == 0 and "%WER" in out
    assert err.count("asr-kd score: warning:") == 1 and "upper case" in err and "tr '" in err
    write_jsonl(lists(), tmp_path / "ok.jsonl")
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "ok.jsonl", "--weight", "am=1")
    assert rc == 0 and "warning" not in err


def upper_lm(tmp_path):
    vocab = WordVocab(["<s>", "</s>", "<unk>"] + [w.upper() for w in WORDS])
    torch.manual_seed(0)
    model = LstmLM(LMConfig(vocab_size=vocab.size, embed_dim=8, hidden_dim=8)).eval()
    save_model(model, vocab, str(tmp_path / "lm"))
    return tmp_path / "lm", vocab


def test_oov_report_finds_the_case_fix(tmp_path):
    _, vocab = upper_lm(tmp_path)
    nb = lists()
    rep = oov_report(nb, vocab)
    assert rep.rate == 1.0 and rep.case_fix == "uppercase" and rep.fixed_share == 1.0
    assert "--text-filter uppercase" in oov_warning(rep, "lm")
    assert oov_report(nb, vocab, lambda t: t.upper()).rate == 0.0
    assert oov_warning(oov_report(nb, vocab, lambda t: t.upper()), "lm") is None
    # unknown words that no case change fixes: warned above the threshold only
    nb.utts[0].hyps[0].text = "zebra " * 500
    rep = oov_report(nb, vocab, lambda t: t.upper())
    assert rep.case_fix is None and rep.rate > 0.2 and "matches" in oov_warning(rep, "lm")
    assert oov_warning(rep, "lm", max_rate=0.99) is None


def test_rescore_warns_when_every_word_is_out_of_vocabulary(tmp_path, capsys):
    # before: "scored N hypotheses ...", exit 0, no warning
    lm, _ = upper_lm(tmp_path)
    write_jsonl(lists(), tmp_path / "n.jsonl")
    args = ["rescore", "--nbest", tmp_path / "n.jsonl", "--model", lm, "--name", "x",
            "--out", tmp_path / "o.jsonl", "--quiet", "--device", "cpu"]
    rc, _, err = run(capsys, *args)
    assert rc == 0
    line = [ln for ln in err.splitlines() if "asr-kd rescore: warning:" in ln]
    assert len(line) == 1 and "100.0 % of the" in line[0]
    assert "--text-filter uppercase" in line[0]
    rc, _, err = run(capsys, *args, "--text-filter", "uppercase")
    assert rc == 0 and "warning" not in err


# ----------------------------------------------------------------- references --

def test_ref_file_replacing_stored_references_is_reported(tmp_path, capsys):
    nb = lists(5)
    write_jsonl(nb, tmp_path / "n.jsonl")
    refs = {u.utt: u.ref for u in nb}
    refs["u001"], refs["u003"] = "other words", "more other words"
    (tmp_path / "ref").write_text("".join(f"{u} {t}\n" for u, t in refs.items()))
    for cmd in (["score", "--weight", "am=1"], ["tune", "--scores", "am,lm", "--out",
                                                  tmp_path / "w.json"]):
        rc, _, err = run(capsys, cmd[0], "--nbest", tmp_path / "n.jsonl", "--ref",
                         tmp_path / "ref", *cmd[1:])
        assert rc == 0
        assert f"asr-kd {cmd[0]}: warning: --ref {tmp_path / 'ref'} replaces the references " \
            f"stored in {tmp_path / 'n.jsonl'}: 2 of 5 differ" in err
    same = tmp_path / "same"
    same.write_text("".join(f"{u.utt} {u.ref}\n" for u in nb))
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "n.jsonl", "--ref", same,
                     "--weight", "am=1")
    assert rc == 0 and "warning" not in err


def test_positional_ids_with_external_references_warn(tmp_path, capsys):
    # a HyPoradise file without ids gets ids 0..N-1: any other set's references of the
    # same size would match; before: scored silently
    items = [{"input": ["a b", "a c"], "score": [-1.0, -2.0]} for _ in range(3)]
    (tmp_path / "h.json").write_text(json.dumps(items))
    assert read_nbest(tmp_path / "h.json").positional_ids
    (tmp_path / "ref").write_text("0 a b\n1 a c\n2 x y\n")
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "h.json", "--ref", tmp_path / "ref",
                     "--weight", "score=1")
    assert rc == 0 and "has no utterance ids (they are positions 0..2)" in err
    rc, _, err = run(capsys, "convert-nbest", tmp_path / "h.json", tmp_path / "o.jsonl",
                     "--ref", tmp_path / "ref")
    assert rc == 0 and "asr-kd convert-nbest: warning:" in err and "by position only" in err
    items[0]["id"] = "a"
    for i, it in enumerate(items):
        it["id"] = str(i)
    (tmp_path / "h.json").write_text(json.dumps(items))
    assert not read_nbest(tmp_path / "h.json").positional_ids
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "h.json", "--ref", tmp_path / "ref",
                     "--weight", "score=1")
    assert rc == 0 and "warning" not in err


def test_compare_leaves_out_references_without_hypotheses(tmp_path, capsys):
    # issue 13 part 4: compare used to refuse what score and convert-nbest warn about
    (tmp_path / "ref").write_text("u1 a b\nu2 c d\nu3 e f\n")
    (tmp_path / "a").write_text("u1 a b\nu2 c x\n")
    (tmp_path / "b").write_text("u1 a b\nu2 c d\n")
    rc, out, err = run(capsys, "compare", "--ref", tmp_path / "ref", tmp_path / "a",
                       tmp_path / "b", "--json")
    assert rc == 0
    res = json.loads(out)
    assert res["a"]["words"] == 4 and res["a"]["wer"] == 25.0 and res["b"]["wer"] == 0.0
    assert "asr-kd compare: warning:" in err and "1 references have no hypothesis" in err
    assert "u3" in err
    # the systems must still cover the same utterances
    (tmp_path / "b").write_text("u1 a b\n")
    rc, _, err = run(capsys, "compare", "--ref", tmp_path / "ref", tmp_path / "a", tmp_path / "b")
    assert rc == 2 and "u2" in err and "same utterances" in err
    (tmp_path / "c").write_text("u9 a\n")
    rc, _, err = run(capsys, "compare", "--ref", tmp_path / "ref", tmp_path / "c", tmp_path / "c")
    assert rc == 2 and "error" in err


# ------------------------------------------------------------- weights files --

def test_weights_record_what_they_were_tuned_on_and_score_checks_it(tmp_path, capsys):
    dev, evl, other = lists(40, 1), lists(40, 2), lists(40, 3, scale=20.0)
    for name, nb in (("dev", dev), ("eval", evl), ("other", other)):
        write_jsonl(nb, tmp_path / f"{name}.jsonl")
    w = tmp_path / "w.json"
    rc, _, _ = run(capsys, "tune", "--nbest", tmp_path / "dev.jsonl", "--scores", "am,lm",
                   "--wip", "--out", w)
    assert rc == 0
    obj = json.loads(w.read_text())
    rec = obj["_tuned_on"]
    assert rec["utts"] == 40 and rec["keys"] == ["am", "lm"] and len(rec["ids"]) == 16
    assert rec["nbest"] == str(tmp_path / "dev.jsonl") and set(rec["spreads"]) >= {"am", "lm"}
    assert set(obj) == {"am", "lm", "wip", "_tuned_on"}
    for name, warned in (("dev", False), ("eval", False), ("other", True)):
        rc, out, err = run(capsys, "score", "--nbest", tmp_path / f"{name}.jsonl",
                           "--weights", w, "--json")
        assert rc == 0 and json.loads(out)["utts"] == 40
        assert ("asr-kd score: warning: these weights were tuned on" in err) == warned, err
    assert "lm/am" in err and "here" in err
    # every score scaled alike (weights without wip): the same choices, nothing to say
    alike = lists(40, 4)
    for u in alike:
        for h in u.hyps:
            h.scores = {k: 20.0 * v for k, v in h.scores.items()}
    write_jsonl(alike, tmp_path / "alike.jsonl")
    w2 = tmp_path / "w2.json"
    assert run(capsys, "tune", "--nbest", tmp_path / "dev.jsonl", "--scores", "am,lm",
               "--out", w2)[0] == 0
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "alike.jsonl", "--weights", w2)
    assert rc == 0 and "warning" not in err
    # a plain weights file (no record) still reads, and says nothing
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({k: v for k, v in obj.items() if k != "_tuned_on"}))
    rc, out, err = run(capsys, "score", "--nbest", tmp_path / "other.jsonl", "--weights", plain)
    assert rc == 0 and "%WER" in out and "warning" not in err
    only = tmp_path / "only.json"
    only.write_text(json.dumps({"_tuned_on": rec}))
    rc, _, err = run(capsys, "score", "--nbest", tmp_path / "dev.jsonl", "--weights", only)
    assert rc == 2 and "expected a JSON object" in err


def test_report_shows_the_weights_not_their_record():
    from asr_kd.report import markdown
    row = {"system": "student", "models": [], "params": None, "size_mb": None, "ppl": None,
           "curve": None, "dev": {"wer": 5.0, "ser": 50.0, "oracle_wer": 1.0},
           "dev_hyps_per_s": None,
           "weights": {"am": 1.0, "lm": 0.5, "_tuned_on": {"nbest": "dev.jsonl", "utts": 3}}}
    md = markdown({"sets": ["dev"], "comparisons": [], "systems": [row]})
    assert '- student: `{"am": 1.0, "lm": 0.5}`' in md and "_tuned_on" not in md
