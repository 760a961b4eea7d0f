"""Edit counts, selection, corpus WER, Kaldi lines, writers, and `asr-kd score`."""
from __future__ import annotations

import json

import jiwer
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr_kd.errors import InputError
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.scoring import (WerResult, batch_errors, corpus_wer, feature_value, hyp_error_matrix,
                            kaldi_ser_line, kaldi_wer_line, oracle_line, pack_features, pick_best,
                            total_score, utt_errors, write_text, write_trn)

WORDS = st.lists(st.sampled_from(["a", "b", "c", "d"]), max_size=6).map(" ".join)


def jiwer_counts(ref: str, hyp: str) -> tuple[int, int, int]:
    """jiwer's own totals; our rule for empty strings where jiwer refuses them."""
    if not ref.split():
        return 0, 0, len(hyp.split())
    if not hyp.split():
        return 0, len(ref.split()), 0
    o = jiwer.process_words(ref, hyp)
    return o.substitutions, o.deletions, o.insertions


@settings(max_examples=200, deadline=None)
@given(WORDS, WORDS)
def test_utt_errors_match_jiwer(ref, hyp):
    e = utt_errors(ref, hyp)
    assert (e.sub, e.del_, e.ins) == jiwer_counts(ref, hyp)
    assert e.ref_words == len(ref.split())
    assert e.hits + e.sub + e.del_ == e.ref_words
    assert e.hits + e.sub + e.ins == len(hyp.split())
    assert e.errors == e.sub + e.del_ + e.ins


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(WORDS, WORDS), min_size=1, max_size=8))
def test_batch_equals_single(pairs):
    refs, hyps = zip(*pairs)
    got = batch_errors(refs, hyps)
    for row, (r, h) in zip(got, pairs):
        e = utt_errors(r, h)
        assert row.tolist() == [e.errors, e.sub, e.del_, e.ins]


def test_empty_strings_explicit():
    assert (utt_errors("", "x y").ins, utt_errors("", "x y").errors) == (2, 2)
    assert (utt_errors("a b c", "").del_, utt_errors("a b c", "").errors) == (3, 3)
    assert utt_errors("", "").errors == 0
    assert utt_errors("a\tb  c", " a b c ").errors == 0  # whitespace runs are one separator


def nb_small() -> NBest:
    return NBest([
        Utterance("u1", [Hyp("a b c", {"am": -1.0, "lm": -5.0}),
                         Hyp("a b d", {"am": -2.0, "lm": -1.0}),
                         Hyp("a b c", {"am": -3.0, "lm": -5.0})], "a b d"),
        Utterance("u2", [], "x y"),
        Utterance("u3", [Hyp("", {"am": -1.0, "lm": -1.0}),
                         Hyp("p q", {"am": -1.0, "lm": -1.0})], "p q"),
    ])


def test_hyp_error_matrix_shapes_and_dedupe():
    m = hyp_error_matrix(nb_small())
    assert [a.shape for a in m] == [(3, 4), (0, 4), (2, 4)]
    assert m[0].tolist() == [[1, 1, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0]]
    assert m[2].tolist() == [[2, 0, 2, 0], [0, 0, 0, 0]]


def test_missing_reference_is_input_error():
    nb = nb_small()
    nb.utts[0].ref = None
    with pytest.raises(InputError, match="u1"):
        hyp_error_matrix(nb)


def test_pick_best_ties_wip_and_empty_lists():
    nb = nb_small()
    # u1: am+lm = -6, -3, -8; u3: tie -> the earliest (empty) hypothesis.
    assert pick_best(nb, {"am": 1.0, "lm": 1.0}) == [1, -1, 0]
    # A positive wip rewards the two-word hypothesis in u3.
    assert pick_best(nb, {"am": 1.0, "lm": 1.0, "wip": 0.1}) == [1, -1, 1]
    assert pick_best(nb, {"am": 1.0}) == [0, -1, 0]


def test_total_score_agrees_with_pick_best():
    nb = nb_small()
    w = {"am": 0.7, "lm": 0.4, "wip": 0.3}
    for u, c in zip(nb, pick_best(nb, w)):
        if u.hyps:
            totals = [total_score(h, w, u.utt) for h in u.hyps]
            assert c == int(np.argmax(totals))
    assert total_score(Hyp("a b", {"am": -1.0}), {"am": 2.0, "wip": 0.5}) == -1.0


def test_missing_weight_key_names_utterance_and_key():
    with pytest.raises(InputError, match=r"u1.*'lm:student'"):
        pick_best(nb_small(), {"am": 1.0, "lm:student": 0.5})
    with pytest.raises(InputError, match=r"'u3'.*'x'"):
        total_score(Hyp("a", {}), {"x": 1.0}, "u3")


# ---- built-in features: rank, KEY*words, KEY/words ------------------------------------------

def test_derived_feature_values():
    h = Hyp("a b c", {"am": -0.5, "lm": -30.0})
    assert feature_value(h, "rank", 0) == 0.0
    assert feature_value(h, "rank", 2) == -2.0
    assert feature_value(h, "am*words", 2) == -1.5
    assert feature_value(h, "lm/words", 2) == -10.0
    assert feature_value(h, "wip", 2) == 3.0
    assert feature_value(h, "rank/words", 2) == pytest.approx(-2 / 3)  # KEY resolved the same way
    empty = Hyp("", {"am": -0.5})
    assert feature_value(empty, "am/words", 0) == -0.5  # divided by max(words, 1)
    assert feature_value(empty, "am*words", 0) == 0.0


def test_stored_scores_take_precedence():
    h = Hyp("a b", {"rank": 5.0, "am*words": 7.0, "am": -1.0})
    assert feature_value(h, "rank", 3) == 5.0
    assert feature_value(h, "am*words", 3) == 7.0
    assert feature_value(h, "am/words", 3) == -0.5
    nb = NBest([Utterance("u", [Hyp("a", {"rank": -3.0}), Hyp("b", {"rank": 0.0})], "b")])
    assert pick_best(nb, {"rank": 1.0}) == [1]  # the stored rank, not the position


def test_derived_features_in_selection_agree_with_total_score():
    nb = nb_small()
    feats, mask = pack_features(nb, ["rank", "am*words", "lm/words"], True)
    assert feats[0, :, 0].tolist() == [0.0, -1.0, -2.0]
    assert feats[0, :, 1].tolist() == [-3.0, -6.0, -9.0]
    assert feats[2, :2, 2].tolist() == [-1.0, -0.5]  # "" has 0 words: divided by 1
    assert feats[2, :2, 3].tolist() == [0.0, 2.0]  # the word-count column
    assert mask.tolist() == [[True] * 3, [False] * 3, [True, True, False]]
    assert pick_best(nb, {"rank": 1.0}) == [0, -1, 0]
    assert pick_best(nb, {"rank": -1.0}) == [2, -1, 1]
    for w in ({"rank": 1.0, "am*words": 0.3}, {"lm/words": 1.0, "rank": 0.2, "wip": 0.4},
              {"am*words": 1.0, "lm/words": 2.0}):
        for u, c in zip(nb, pick_best(nb, w)):
            if u.hyps:
                totals = [total_score(h, w, u.utt, j) for j, h in enumerate(u.hyps)]
                assert c == int(np.argmax(totals))


def test_missing_key_lists_the_scores_present():
    with pytest.raises(InputError,
                       match=r"'u1': hypothesis 1 has no score 'x'; its scores: 'am', 'lm'"):
        pick_best(nb_small(), {"am*words": 1.0, "x/words": 1.0})
    with pytest.raises(InputError, match=r"'u3'.*'lm:t'; its scores: none"):
        total_score(Hyp("a", {}), {"lm:t": 1.0}, "u3", 0)
    with pytest.raises(InputError, match=r"'rank' \(its position is unknown\); its scores: 'am'"):
        total_score(Hyp("a", {"am": 1.0}), {"rank": 1.0}, "u3")


def test_corpus_wer_counts():
    nb = nb_small()
    r = corpus_wer(nb, pick_best(nb, {"am": 1.0, "lm": 1.0}))
    # u1 correct; u2 empty list: 2 deletions; u3 empty hyp: 2 deletions.
    assert (r.errors, r.words, r.del_, r.ins, r.sub) == (4, 7, 4, 0, 0)
    assert r.wer == pytest.approx(400 / 7)
    assert (r.sent_errors, r.utts) == (2, 3)
    assert r.oracle_errors == 2 and r.oracle_wer == pytest.approx(200 / 7)
    assert set(r.to_dict()) == {"wer", "ser", "oracle_wer", "words", "ins", "del", "sub", "utts"}


def test_kaldi_lines_exact():
    r = WerResult(wer=100 * 241 / 5643, ser=100 * 37 / 300, oracle_wer=100 * 33 / 5643,
                  words=5643, ins=30, del_=21, sub=190, utts=300, errors=241, sent_errors=37,
                  oracle_errors=33)
    assert kaldi_wer_line(r) == "%WER 4.27 [ 241 / 5643, 30 ins, 21 del, 190 sub ]"
    assert kaldi_ser_line(r) == "%SER 12.33 [ 37 / 300 ]"
    assert oracle_line(r) == "%ORACLE 0.58 [ 33 / 5643 ]"
    assert "WER" not in oracle_line(r)  # utils/best_wer.sh must never pick the oracle


@st.composite
def random_nbest(draw):
    utts = []
    for i in range(draw(st.integers(1, 5))):
        hyps = [Hyp(draw(WORDS), {"am": draw(st.floats(-10, 0)), "lm": draw(st.floats(-10, 0))})
                for _ in range(draw(st.integers(0, 4)))]
        utts.append(Utterance(f"u{i}", hyps, draw(WORDS)))
    return NBest(utts)


@settings(max_examples=60, deadline=None)
@given(random_nbest(), st.floats(0, 3), st.floats(-3, 3), st.randoms(use_true_random=False))
def test_oracle_never_worse_than_any_selection(nb, lm, wip, rnd):
    errs = hyp_error_matrix(nb)
    for chosen in (pick_best(nb, {"am": 1.0, "lm": lm, "wip": wip}),
                   [rnd.randrange(len(u.hyps)) if u.hyps else -1 for u in nb]):
        r = corpus_wer(nb, chosen, errs)
        assert r.oracle_errors <= r.errors
        assert r.oracle_wer <= r.wer


def test_writers(tmp_path):
    nb = nb_small()
    chosen = [1, -1, 1]
    write_text(tmp_path / "text", nb, chosen)
    write_trn(tmp_path / "hyp.trn", nb, chosen)
    assert (tmp_path / "text").read_text() == "u1 a b d\nu2\nu3 p q\n"
    assert (tmp_path / "hyp.trn").read_text() == "a b d (u1)\n(u2)\np q (u3)\n"


# ---- `asr-kd score` -------------------------------------------------------------------------

def cli_ready() -> bool:
    try:
        from asr_kd.nbest import read_nbest, read_refs  # noqa: F401
    except ImportError:
        return False
    return True


needs_readers = pytest.mark.skipif(not cli_ready(), reason="asr_kd.nbest readers not built yet")


def write_jsonl(path, nb: NBest, with_refs: bool = True):
    """Native N-best JSONL by hand (the format: asr_kd/nbest/jsonl.py)."""
    with open(path, "w") as f:
        for u in nb:
            d = {"utt": u.utt, "hyps": [{"text": h.text, "scores": h.scores} for h in u.hyps]}
            if with_refs and u.ref is not None:
                d["ref"] = u.ref
            f.write(json.dumps(d) + "\n")


@needs_readers
def test_cli_score_text_json_and_outputs(tmp_path, capsys):
    from asr_kd.cli import main
    nb = nb_small()
    write_jsonl(tmp_path / "n.jsonl", nb)
    rc = main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weight", "am=1",
               "--weight", "lm=1", "--out-hyp", str(tmp_path / "text"),
               "--out-trn", str(tmp_path / "h.trn")])
    out = capsys.readouterr().out.splitlines()
    assert rc == 0
    assert out == ["%WER 57.14 [ 4 / 7, 0 ins, 4 del, 0 sub ]", "%SER 66.67 [ 2 / 3 ]",
                   "%ORACLE 28.57 [ 2 / 7 ]"]
    assert (tmp_path / "text").read_text() == "u1 a b d\nu2\nu3\n"
    assert (tmp_path / "h.trn").read_text() == "a b d (u1)\n(u2)\n(u3)\n"

    (tmp_path / "w.json").write_text('{"am": 1, "lm": 1, "wip": 0.1}')
    rc = main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weights",
               str(tmp_path / "w.json"), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert set(d) == {"wer", "ser", "oracle_wer", "words", "ins", "del", "sub", "utts", "noise"}
    assert (d["words"], d["del"], d["utts"]) == (7, 2, 3)


@needs_readers
def test_cli_score_derived_features(tmp_path, capsys):
    from asr_kd.cli import main
    write_jsonl(tmp_path / "n.jsonl", nb_small())
    # u1: am*words -3, -6.5, -10 with rank: the first; u3: "" (0) beats "p q" (-2.5).
    rc = main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weight", "am*words=1",
               "--weight", "rank=0.5", "--out-hyp", str(tmp_path / "text")])
    assert rc == 0 and capsys.readouterr().out.startswith("%WER 71.43 [ 5 / 7,")
    assert (tmp_path / "text").read_text() == "u1 a b c\nu2\nu3\n"
    (tmp_path / "w.json").write_text('{"lm/words": 1, "rank": 0.1}')
    rc = main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weights",
               str(tmp_path / "w.json"), "--json"])
    assert rc == 0 and json.loads(capsys.readouterr().out)["wer"] == pytest.approx(100 * 2 / 7)


@needs_readers
def test_cli_score_external_refs_and_no_refs(tmp_path, capsys):
    from asr_kd.cli import main
    nb = nb_small()
    write_jsonl(tmp_path / "n.jsonl", nb, with_refs=False)
    rc = main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weight", "am=1",
               "--out-hyp", str(tmp_path / "text")])
    cap = capsys.readouterr()
    assert rc == 0 and "no WER computed" in cap.err and cap.out == ""
    assert (tmp_path / "text").read_text() == "u1 a b c\nu2\nu3\n"

    (tmp_path / "ref").write_text("".join(f"{u.utt} {u.ref}\n" for u in nb))
    rc = main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weight", "am=1",
               "--ref", str(tmp_path / "ref"), "--json"])
    assert rc == 0
    assert json.loads(capsys.readouterr().out)["words"] == 7


@needs_readers
def test_cli_score_bad_weights(tmp_path, capsys):
    from asr_kd.cli import main
    write_jsonl(tmp_path / "n.jsonl", nb_small())
    assert main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weight", "nokey=1"]) == 2
    assert "'nokey'" in capsys.readouterr().err
    assert main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weight", "am"]) == 2
    (tmp_path / "w.json").write_text("[1, 2]")
    assert main(["score", "--nbest", str(tmp_path / "n.jsonl"), "--weights",
                 str(tmp_path / "w.json")]) == 2
    assert "w.json" in capsys.readouterr().err
