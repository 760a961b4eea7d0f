"""LM rescoring of N-best lists (asr_kd.rescore, `asr-kd rescore`).

Every scoring path (prefix trie, padded batches, ``score_sentences``) must give
the hand-computed log P(w1..wn </s> | <s>), for single models, LSTMP and
ensembles, across several groups and output-layer chunks.
"""
from __future__ import annotations

import json
import math
import random

import pytest
import torch

import asr_kd.rescore as rescore_mod
from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.modeldir import load_models, save_model
from asr_kd.models import LMConfig, LstmLM, TeacherEnsemble, score_sentences
from asr_kd.nbest import read_nbest, write_jsonl
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.rescore import group_by_budget, rescore_nbest, score_padded, score_trie
from asr_kd.textfilter import TextFilter
from asr_kd.vocab import WordVocab

V = 40
WORDS = ["the", "cat", "sat", "on", "mat", "a", "dog", "ran", "mr.", "smith", "and", "of"] + [
    f"w{i}" for i in range(25)]
TOL = 1e-4   # float32 LSTM run step by step vs over the whole sequence

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")


def make_vocab() -> WordVocab:
    v = WordVocab(["<s>", "</s>", "<unk>"] + WORDS)
    assert v.size == V
    return v


def make_model(seed=0, **kw) -> LstmLM:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, embed_dim=8, hidden_dim=12, init_range=0.5)
    cfg.update(kw)
    return LstmLM(LMConfig(**cfg)).eval()


MODELS = {
    "lstm": lambda: make_model(0),
    "lstmp": lambda: make_model(1, proj_dim=6, num_layers=1),
    "tied": lambda: make_model(2, embed_dim=12, num_layers=1),
    "ens_prob": lambda: TeacherEnsemble([make_model(3), make_model(4, proj_dim=5)], "prob").eval(),
    "ens_logit": lambda: TeacherEnsemble([make_model(5), make_model(6, hidden_dim=7)],
                                         "logit").eval(),
}


def hand_score(model, seq, bos=0, eos=1) -> float:
    """log P(seq </s> | <s>) from one unpadded forward pass per member, float64."""
    inp = torch.tensor([[bos] + seq])
    members = list(model.members) if isinstance(model, TeacherEnsemble) else [model]
    with torch.no_grad():
        logits = [m(inp)[0][0].double() for m in members]          # (T, V) each
    if len(members) == 1:
        lp = torch.log_softmax(logits[0], -1)
    elif model.combine == "logit":
        lp = torch.log_softmax(torch.stack(logits).mean(0), -1)
    else:
        probs = torch.stack([torch.softmax(z, -1) for z in logits]).mean(0)
        lp = probs.log()
    return float(sum(lp[t, y] for t, y in enumerate(seq + [eos])))


def random_seqs(seed=0) -> list[list[int]]:
    """Sequences with shared prefixes, exact duplicates, empties and prefixes of others."""
    rng = random.Random(seed)
    base = [[rng.randrange(3, V) for _ in range(rng.randint(1, 9))] for _ in range(6)]
    seqs = [[], []] + base
    for b in base:
        for _ in range(3):
            k = rng.randint(0, len(b))
            seqs.append(b[:k] + [rng.randrange(2, V) for _ in range(rng.randint(0, 4))])
    seqs += [base[0], base[0][:2], list(base[1]), [2, 2, 2]]   # duplicates, prefix, <unk>s
    rng.shuffle(seqs)
    return seqs


def distinct_prefixes(seqs) -> int:
    """Trie nodes that need an output-layer row: every distinct prefix s[:k], k <= len(s)."""
    return len({tuple(s[:k]) for s in seqs for k in range(len(s) + 1)})


# ----------------------------------------------------------------- scorers --

@pytest.mark.parametrize("kind", sorted(MODELS))
def test_trie_equals_padded_equals_hand(kind):
    model = MODELS[kind]()
    seqs = random_seqs()
    hand = [hand_score(model, s) for s in seqs]
    trie, trie_evals = score_trie(model, seqs, 0, 1, row_chunk=3)
    padded, padded_evals = score_padded(model, seqs, 0, 1, batch_tokens=17)
    flat = score_sentences(model, seqs, 0, 1)
    for name, got in (("trie", trie), ("padded", padded), ("score_sentences", flat)):
        assert len(got) == len(seqs)
        err = max(abs(a - b) for a, b in zip(got, hand))
        assert err < TOL, f"{name} differs from the hand score by {err}"
    assert all(math.isfinite(x) and x < 0 for x in trie)
    # one output row per distinct prefix; the padded batches evaluate many more
    assert trie_evals == distinct_prefixes(seqs)
    assert trie_evals < padded_evals
    # padded evals: every row of every batch, padding included
    assert padded_evals >= sum(len(s) + 1 for s in seqs)


def test_trie_row_chunk_does_not_change_scores():
    model = make_model(0)
    seqs = random_seqs(3)
    ref, ev = score_trie(model, seqs, 0, 1)
    for chunk in (1, 2, 5, 1000):
        got, ev2 = score_trie(model, seqs, 0, 1, row_chunk=chunk)
        assert ev2 == ev
        assert max(abs(a - b) for a, b in zip(got, ref)) < 1e-5   # GEMM shapes round differently


def test_empty_and_single_sequences():
    model = make_model(0)
    (s,), ev = score_trie(model, [[]], 0, 1)
    assert ev == 1 and abs(s - hand_score(model, [])) < TOL
    assert score_trie(model, [], 0, 1) == ([], 0)
    assert score_padded(model, [], 0, 1) == ([], 0)
    # a long sequence longer than the padded token budget still gets scored
    long = [5] * 30
    got, _ = score_padded(model, [long, [3]], 0, 1, batch_tokens=4)
    assert abs(got[0] - hand_score(model, long)) < TOL


def test_shared_prefixes_halve_trie_evaluations():
    # 30 hypotheses that differ only in their last word: the trie shares the prefix
    model = make_model(0)
    prefix = list(range(3, 23))
    seqs = [prefix + [t] for t in range(3, 33)]
    trie, ev_trie = score_trie(model, seqs, 0, 1)
    padded, ev_pad = score_padded(model, seqs, 0, 1)
    assert ev_trie == len(prefix) + 1 + len(seqs)
    assert ev_pad == len(seqs) * (len(prefix) + 2)
    assert max(abs(a - b) for a, b in zip(trie, padded)) < TOL


def test_group_by_budget():
    assert group_by_budget([], 10) == []
    assert group_by_budget([3, 3, 3, 3], 6) == [(0, 2), (2, 4)]
    assert group_by_budget([20, 1, 1], 5) == [(0, 1), (1, 3)]   # oversized item alone
    assert group_by_budget([1, 1, 1], 0) == [(0, 1), (1, 2), (2, 3)]


# ----------------------------------------------------------- rescore_nbest --

def make_nbest(seed=0, n_utts=7) -> NBest:
    """Utterances with shared prefixes, duplicates within and across utterances,
    empty hypotheses, upper-case and OOV words; every hyp has am and lm0."""
    rng = random.Random(seed)
    vocab_words = WORDS
    utts = []
    for u in range(n_utts):
        base = [rng.choice(vocab_words) for _ in range(rng.randint(2, 8))]
        hyps = []
        for i in range(rng.randint(1, 6)):
            words = list(base)
            if i:
                k = rng.randrange(len(words))
                words[k] = rng.choice(vocab_words + ["zebra", "MR.", "Cat"])
            hyps.append(" ".join(words))
        hyps += [hyps[0], ""] if u % 2 else ["the cat sat"]   # duplicate / empty / cross-utt
        utts.append(Utterance(f"spk-{u}", [
            Hyp(t, {"am": -10.0 * j - u, "lm0": -3.5 * j}) for j, t in enumerate(hyps)],
            ref=" ".join(base)))
    return NBest(utts)


def copy_nbest(nb: NBest) -> NBest:
    return NBest([Utterance(u.utt, [Hyp(h.text, dict(h.scores)) for h in u.hyps], u.ref)
                  for u in nb])


@pytest.mark.parametrize("method", ["trie", "padded"])
@pytest.mark.parametrize("kind", ["lstm", "ens_prob"])
def test_rescore_nbest_adds_scores_and_keeps_others(method, kind):
    model, vocab = MODELS[kind](), make_vocab()
    orig = make_nbest()
    nb = copy_nbest(orig)
    out, stats = rescore_nbest(nb, model, vocab, "tiny", method=method, batch_tokens=15)
    assert out is nb
    for u0, u in zip(orig, nb):
        assert [h.text for h in u.hyps] == [h.text for h in u0.hyps]
        for h0, h in zip(u0.hyps, u.hyps):
            assert set(h.scores) == set(h0.scores) | {"lm:tiny", "oov:tiny", "nwords"}
            assert all(h.scores[k] == v for k, v in h0.scores.items())
            assert h.scores["nwords"] == len(h.text.split())
            assert h.scores["oov:tiny"] == sum(w not in vocab.stoi for w in h.text.split())
            assert abs(h.scores["lm:tiny"] - hand_score(model, vocab.encode(h.text))) < TOL
    assert stats.sequences == orig.num_hyps()
    uniq = {tuple(vocab.encode(h.text)) for u in orig for h in u.hyps}
    assert stats.unique_sequences == len(uniq) < stats.sequences
    assert stats.token_evals > 0


def test_rescore_trie_vs_padded_evals_and_groups():
    model, vocab = make_model(0), make_vocab()
    a, sa = rescore_nbest(copy_nbest(make_nbest(1, 12)), model, vocab, "x", method="trie",
                          batch_tokens=20)
    b, sb = rescore_nbest(copy_nbest(make_nbest(1, 12)), model, vocab, "x", method="padded",
                          batch_tokens=20)
    assert sa.unique_sequences == sb.unique_sequences
    assert sa.token_evals < sb.token_evals
    for ua, ub in zip(a, b):
        for ha, hb in zip(ua.hyps, ub.hyps):
            assert abs(ha.scores["lm:x"] - hb.scores["lm:x"]) < TOL
    # a budget large enough for one group gives the same scores
    c, _ = rescore_nbest(copy_nbest(make_nbest(1, 12)), model, vocab, "x", batch_tokens=10 ** 6)
    for ua, uc in zip(a, c):
        for ha, hc in zip(ua.hyps, uc.hyps):
            assert abs(ha.scores["lm:x"] - hc.scores["lm:x"]) < TOL


def test_identical_sequences_scored_once(monkeypatch):
    """Duplicates within and across utterances, and texts that map to the same ids
    (OOV words -> <unk>, filter output), reach the scorer once."""
    seen = []
    real = rescore_mod.score_trie

    def spy(model, seqs, *a, **k):
        seen.extend(tuple(s) for s in seqs)
        return real(model, seqs, *a, **k)

    monkeypatch.setattr(rescore_mod, "score_trie", spy)
    model, vocab = make_model(0), make_vocab()
    nb = NBest([
        Utterance("u1", [Hyp("the cat"), Hyp("the cat"), Hyp("the zebra"), Hyp("the yak"),
                         Hyp("")]),
        Utterance("u2", [Hyp("the cat"), Hyp("THE CAT"), Hyp(""), Hyp("a dog")]),
        Utterance("u3", [Hyp("a dog"), Hyp("the zebra")]),
    ])
    _, stats = rescore_nbest(nb, model, vocab, "t", text_filter=TextFilter.from_spec("lowercase"),
                             batch_tokens=4)
    assert len(seen) == len(set(seen)) == stats.unique_sequences == 4
    assert set(seen) == {(3, 4), (3, 2), (), (8, 9)}
    assert stats.sequences == 11
    lm = [[h.scores["lm:t"] for h in u.hyps] for u in nb]
    assert lm[0][0] == lm[0][1] == lm[1][0] == lm[1][1]
    assert lm[0][2] == lm[0][3] == lm[2][1]      # zebra, yak -> <unk>
    assert [h.scores["oov:t"] for h in nb.utts[0].hyps] == [0, 0, 1, 1, 0]


def test_text_filter_changes_lm_input_not_text():
    model, vocab = make_model(0), make_vocab()
    nb = NBest([Utterance("u", [Hyp("MISTER SMITH AND THE CAT"), Hyp("MISTER  SMITHS")],
                          ref="MISTER SMITH AND THE CAT")])
    filt = TextFilter.from_spec("lowercase; mister => mr.")
    rescore_nbest(nb, model, vocab, "f", text_filter=filt)
    h1, h2 = nb.utts[0].hyps
    assert h1.text == "MISTER SMITH AND THE CAT" and h2.text == "MISTER  SMITHS"
    assert nb.utts[0].ref == "MISTER SMITH AND THE CAT"
    assert abs(h1.scores["lm:f"] - hand_score(model, vocab.encode("mr. smith and the cat"))) < TOL
    assert h1.scores["oov:f"] == 0 and h2.scores["oov:f"] == 1     # "smiths"
    assert h1.scores["nwords"] == 5 and h2.scores["nwords"] == 2
    # without the filter every upper-case word is OOV
    nb2 = NBest([Utterance("u", [Hyp("MISTER SMITH AND THE CAT")])])
    rescore_nbest(nb2, model, vocab, "f")
    assert nb2.utts[0].hyps[0].scores["oov:f"] == 5


def test_rescore_empty_nbest_and_bad_method():
    model, vocab = make_model(0), make_vocab()
    nb, stats = rescore_nbest(NBest([Utterance("u", [])]), model, vocab, "x")
    assert stats.sequences == stats.unique_sequences == stats.token_evals == 0
    with pytest.raises(ValueError, match="unknown scoring method"):
        rescore_nbest(NBest(), model, vocab, "x", method="beam")


# --------------------------------------------------------------------- CLI --

@pytest.fixture()
def model_dir(tmp_path):
    d = tmp_path / "lm"
    save_model(make_model(0), make_vocab(), str(d))
    return d


def write_native(path, nb: NBest):
    write_jsonl(nb, str(path))
    return path


def test_cli_rescore_jsonl_then_tune_and_score(tmp_path, model_dir, capsys):
    src = write_native(tmp_path / "dev.jsonl", make_nbest(2, 9))
    out = tmp_path / "dev.tiny.jsonl.gz"
    rc = main(["rescore", "--nbest", str(src), "--model", str(model_dir), "--name", "tiny",
               "--out", str(out), "--device", "cpu", "--quiet", "--batch-tokens", "30",
               "--text-filter", "lowercase"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "hypotheses" in printed and "LM token evaluations" in printed and str(out) in printed
    nb = read_nbest(str(out))
    model, vocab = load_models([str(model_dir)])
    orig = make_nbest(2, 9)
    for u0, u in zip(orig, nb):
        assert u.ref == u0.ref and [h.text for h in u.hyps] == [h.text for h in u0.hyps]
        for h0, h in zip(u0.hyps, u.hyps):
            assert {k: h.scores[k] for k in h0.scores} == h0.scores
            want = hand_score(model, vocab.encode(h.text.lower()))
            assert abs(h.scores["lm:tiny"] - want) < TOL

    weights = tmp_path / "w.json"
    assert main(["tune", "--nbest", str(out), "--scores", "am,lm0,lm:tiny", "--wip",
                 "--out", str(weights)]) == 0
    assert "%WER" in capsys.readouterr().out
    w = json.loads(weights.read_text())
    assert set(w) == {"am", "lm0", "lm:tiny", "wip", "_tuned_on"} and w["am"] == 1.0
    assert main(["score", "--nbest", str(out), "--weights", str(weights), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0 <= res["wer"] <= 100 and res["utts"] == len(orig)


def test_cli_rescore_kaldi_output(tmp_path, model_dir, capsys):
    orig = make_nbest(3, 5)
    src = write_native(tmp_path / "dev.jsonl", orig)
    refs = tmp_path / "text"
    refs.write_text("".join(f"{u.utt} {u.ref}\n" for u in orig))
    out = tmp_path / "kaldi_out"
    rc = main(["rescore", "--nbest", str(src), "--model", str(model_dir), "--name", "tiny",
               "--out", str(out), "--out-format", "kaldi", "--device", "cpu", "--quiet"])
    assert rc == 0
    capsys.readouterr()
    assert {"words_text", "acwt", "lmwt.withlm", "lmwt.tiny"} <= {p.name for p in out.iterdir()}
    model, vocab = load_models([str(model_dir)])
    lines = (out / "lmwt.tiny").read_text().splitlines()
    assert len(lines) == orig.num_hyps()
    costs = dict(line.split() for line in lines)
    for u in orig:
        for i, h in enumerate(u.hyps, 1):
            want = hand_score(model, vocab.encode(h.text))
            assert abs(-float(costs[f"{u.utt}-{i}"]) - want) < TOL
    nb = read_nbest(str(out))
    assert set(nb.score_keys()) == {"am", "lm0", "lm:tiny"}
    weights = tmp_path / "w.json"
    assert main(["tune", "--nbest", str(out), "--ref", str(refs), "--scores", "am,lm:tiny",
                 "--wip", "--out", str(weights)]) == 0
    capsys.readouterr()
    assert main(["score", "--nbest", str(out), "--ref", str(refs), "--weights", str(weights),
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["wer"] is not None


def test_cli_rescore_ensemble_of_two_models(tmp_path, model_dir, capsys):
    d2 = tmp_path / "lm2"
    save_model(make_model(7, proj_dim=6), make_vocab(), str(d2))
    src = write_native(tmp_path / "dev.jsonl", make_nbest(4, 4))
    out = tmp_path / "out.jsonl"
    assert main(["rescore", "--nbest", str(src), "--model", str(model_dir), str(d2),
                 "--ensemble", "logit", "--name", "ens", "--out", str(out), "--device", "cpu",
                 "--quiet", "--method", "padded"]) == 0
    ens, vocab = load_models([str(model_dir), str(d2)], combine="logit")
    assert isinstance(ens, TeacherEnsemble) and ens.combine == "logit"
    for u in read_nbest(str(out)):
        for h in u.hyps:
            assert abs(h.scores["lm:ens"] - hand_score(ens, vocab.encode(h.text))) < TOL


def test_cli_models_with_different_vocabularies(tmp_path, model_dir, capsys):
    other = WordVocab(["<s>", "</s>", "<unk>"] + list(reversed(WORDS)))  # same size, other ids
    d2 = tmp_path / "lm2"
    save_model(make_model(1), other, str(d2))
    src = write_native(tmp_path / "dev.jsonl", make_nbest())
    out = tmp_path / "out.jsonl"
    rc = main(["rescore", "--nbest", str(src), "--model", str(model_dir), str(d2), "--name",
               "ens", "--out", str(out), "--device", "cpu", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("asr-kd rescore: error: ") and str(d2) in err and "vocabulary" in err
    assert not out.exists()
    # a different size as well
    d3 = tmp_path / "lm3"
    small = WordVocab(["<s>", "</s>", "<unk>", "the"])
    save_model(LstmLM(LMConfig(vocab_size=4, embed_dim=4, hidden_dim=4)), small, str(d3))
    with pytest.raises(InputError, match="vocabulary differs"):
        load_models([str(model_dir), str(d3)])


@pytest.mark.parametrize("args, what", [
    (["--name", "two words"], "--name"),
    (["--name", "x", "--model", "NOPE"], "no such model folder"),
    (["--name", "x", "--text-filter", "not a rule"], "expected 'lowercase'"),
    (["--name", "x", "--batch-tokens", "0"], "--batch-tokens"),
])
def test_cli_rescore_bad_input(tmp_path, model_dir, capsys, args, what):
    src = write_native(tmp_path / "dev.jsonl", make_nbest())
    base = ["rescore", "--nbest", str(src), "--model", str(model_dir), "--out",
            str(tmp_path / "o.jsonl"), "--device", "cpu", "--quiet"]
    # later options win in argparse: --model NOPE replaces the good one
    assert main(base + args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and what in err
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_kaldi_output_needs_am_and_lm0(tmp_path, model_dir, capsys):
    nb = NBest([Utterance("u1", [Hyp("the cat", {"decoder": -1.0, "ctc": -2.0})], "the cat")])
    src = write_native(tmp_path / "espnet_like.jsonl", nb)
    out = tmp_path / "kaldi_out"
    rc = main(["rescore", "--nbest", str(src), "--model", str(model_dir), "--name", "x",
               "--out", str(out), "--out-format", "kaldi", "--device", "cpu", "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'am' and 'lm0'" in err and str(src) in err
    assert not out.exists()
