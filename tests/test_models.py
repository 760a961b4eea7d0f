"""LstmLM, TeacherEnsemble, sentence scoring and model folders."""
from __future__ import annotations

import json
import os

import pytest
import torch

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.modeldir import load_model, save_model
from asr_kd.models import LMConfig, LstmLM, TeacherEnsemble, score_sentences
from asr_kd.vocab import WordVocab

pytestmark = pytest.mark.usefixtures("one_thread")

V = 29


def make_lm(seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, embed_dim=12, hidden_dim=12, num_layers=2, init_range=0.3)
    cfg.update(kw)
    return LstmLM(LMConfig(**cfg)).eval()


def rand_ids(B, T, seed=0, lo=3):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(lo, V, (B, T), generator=g)


@pytest.mark.parametrize("kw,d_out", [({}, 12), ({"proj_dim": 5}, 5),
                                      ({"hidden_dim": 16, "tie": "no"}, 16)])
def test_hidden_shape_and_logits_formula(kw, d_out):
    m = make_lm(**kw)
    x = rand_ids(3, 7)
    h, (hs, cs) = m.hidden(x)
    assert h.shape == (3, 7, d_out)
    assert hs.shape == (2, 3, d_out) and cs.shape == (2, 3, m.cfg.hidden_dim)
    assert m.output_weight.shape == (V, d_out) and m.output_bias.shape == (V,)
    with torch.no_grad():
        m.out.bias.normal_()                  # make the bias matter
    logits, _ = m(x)
    assert logits.shape == (3, 7, V)
    h, _ = m.hidden(x)
    ref = h @ m.output_weight.T + m.output_bias
    torch.testing.assert_close(logits, ref, rtol=1e-5, atol=1e-6)
    # the final state equals the last step's output of the top layer
    torch.testing.assert_close(hs[-1], h[:, -1], rtol=1e-5, atol=1e-6)


def test_tied_weights_share_storage():
    m = make_lm(embed_dim=12, hidden_dim=12)
    assert m.cfg.tied
    assert m.out.weight is m.embed.weight
    assert m.output_weight.data_ptr() == m.embed.weight.data_ptr()
    n_untied = make_lm(tie="no").num_params()
    assert m.num_params() == n_untied - V * 12
    # a gradient step on the output layer moves the embedding too
    m.train()
    x = rand_ids(2, 4)
    logits, _ = m(x)
    logits.sum().backward()
    before = m.embed.weight.detach().clone()
    with torch.no_grad():
        m.output_weight.sub_(0.1 * m.output_weight.grad)
    assert not torch.equal(before, m.embed.weight)

    # LSTMP with a projection equal to the embedding: tied again
    p = make_lm(embed_dim=6, hidden_dim=12, proj_dim=6)
    assert p.cfg.tied and p.out.weight is p.embed.weight
    # projection differs from the embedding: not tied
    q = make_lm(embed_dim=12, hidden_dim=12, proj_dim=6)
    assert not q.cfg.tied
    assert q.out.weight is not q.embed.weight and q.out.weight.shape == (V, 6)
    assert q.out.weight.data_ptr() != q.embed.weight.data_ptr()
    # explicit choices
    assert not make_lm(tie="no").cfg.tied
    assert make_lm(tie="no").out.weight.data_ptr() != make_lm(tie="no").embed.weight.data_ptr()
    with pytest.raises(ValueError, match="tie=yes"):
        make_lm(embed_dim=12, hidden_dim=16, tie="yes")


def test_lstmp_trains():
    m = make_lm(embed_dim=8, hidden_dim=16, proj_dim=8, dropout=0.1)
    assert m.lstm.proj_size == 8
    h0, c0 = m.init_state(4)
    assert h0.shape == (2, 4, 8) and c0.shape == (2, 4, 16)
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=0.03)
    x = rand_ids(4, 10, seed=1)
    y = torch.roll(x, -1, 1)
    losses = []
    for _ in range(25):
        logits, _ = m(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        opt.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in m.parameters())
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 0.5


@torch.no_grad()
def _by_hand(m, sent, bos, eos):
    """Sum of log-softmax, one step at a time, natural log."""
    state = m.init_state(1)
    total = 0.0
    prev = bos
    for y in sent + [eos]:
        logits, state = m(torch.tensor([[prev]]), state)
        total += float(torch.log_softmax(logits[0, 0].double(), -1)[y])
        prev = y
    return total


@pytest.mark.parametrize("kw", [{}, {"proj_dim": 5}])
def test_score_sentences_equals_step_by_step(kw):
    m = make_lm(**kw)
    sents = [[5, 6, 7, 8, 9, 10], [], [4], [20, 3, 28, 11]]
    scores = score_sentences(m, sents, bos=0, eos=1)
    assert len(scores) == 4 and all(isinstance(s, float) for s in scores)
    for s, sc in zip(sents, scores):
        assert sc == pytest.approx(_by_hand(m, s, 0, 1), rel=1e-5, abs=1e-5)
        assert sc < 0
    # padding in a batch does not change a sentence's score
    alone = score_sentences(m, [sents[2]], 0, 1)[0]
    assert alone == pytest.approx(scores[2], abs=1e-5)
    assert score_sentences(m, [], 0, 1) == []


def test_token_logprobs_zero_on_ignored_targets():
    m = make_lm()
    x = rand_ids(2, 5)
    y = rand_ids(2, 5, seed=1)
    y[0, 3:] = -100
    lp, _ = m.token_logprobs(x, y)
    assert lp.shape == (2, 5)
    assert (lp[0, 3:] == 0).all() and (lp[0, :3] < 0).all() and (lp[1] < 0).all()
    full = torch.log_softmax(m(x)[0], -1)
    torch.testing.assert_close(lp[1], full[1].gather(-1, y[1:2].T).squeeze(-1))


@pytest.mark.parametrize("kw", [{}, {"proj_dim": 5}])
def test_stateful_windows_equal_one_pass(kw):
    m = make_lm(**kw)
    data = rand_ids(3, 23, seed=4)
    x, y = data[:, :-1], data[:, 1:]
    one, _ = m.token_logprobs(x, y)
    state = m.init_state(3)
    parts = []
    for i in range(0, x.shape[1], 5):
        lp, state = m.token_logprobs(x[:, i: i + 5], y[:, i: i + 5], state)
        parts.append(lp)
    torch.testing.assert_close(torch.cat(parts, 1), one, rtol=1e-5, atol=1e-5)
    # and resetting the state in between gives something else
    reset, _ = m.token_logprobs(x[:, 5:10], y[:, 5:10])
    assert not torch.allclose(reset, one[:, 5:10], atol=1e-4)


@pytest.mark.parametrize("combine", ["prob", "logit"])
def test_ensemble_combine_formula(combine):
    members = [make_lm(seed=s, hidden_dim=8 + 4 * s, embed_dim=8) for s in range(3)]
    ens = TeacherEnsemble(members, combine).eval()
    assert ens.num_params() == sum(m.num_params() for m in members)
    x = rand_ids(2, 6)
    y = rand_ids(2, 6, seed=9)
    y[1, 4:] = -100
    lp, states = ens.token_logprobs(x, y)
    assert len(states) == 3
    logits = [m(x)[0].double() for m in members]
    if combine == "prob":
        p = sum(torch.softmax(z, -1) for z in logits) / 3
        ref_lp = torch.log(p)
    else:
        ref_lp = torch.log_softmax(sum(logits) / 3, -1)
    ref = ref_lp.gather(-1, y.clamp(min=0).unsqueeze(-1)).squeeze(-1).masked_fill(y < 0, 0)
    torch.testing.assert_close(lp.double(), ref, rtol=1e-5, atol=1e-5)
    # the two modes differ, and a one-member ensemble is the member itself
    other = TeacherEnsemble(members, "logit" if combine == "prob" else "prob")
    assert not torch.allclose(other.token_logprobs(x, y)[0], lp, atol=1e-4)
    single, _ = TeacherEnsemble(members[:1], combine).token_logprobs(x, y)
    torch.testing.assert_close(single, members[0].token_logprobs(x, y)[0], rtol=1e-5, atol=1e-6)
    # stateful ensemble scoring carries each member's state
    s = ens.init_state(2)
    a, s = ens.token_logprobs(x[:, :3], y[:, :3], s)
    b, _ = ens.token_logprobs(x[:, 3:], y[:, 3:], s)
    torch.testing.assert_close(torch.cat([a, b], 1), lp, rtol=1e-5, atol=1e-5)
    hs, _ = ens.hidden(x)
    assert [h.shape[-1] for h in hs] == [8, 12, 16]
    scores = score_sentences(ens, [[4, 5], [6]], 0, 1)
    assert len(scores) == 2


def test_ensemble_rejects_bad_members():
    with pytest.raises(ValueError, match="vocabulary size"):
        TeacherEnsemble([make_lm(), make_lm(vocab_size=V + 1)])
    with pytest.raises(ValueError, match="combine"):
        TeacherEnsemble([make_lm()], "max")


def test_lmconfig_dict_round_trip():
    c = LMConfig(vocab_size=10, proj_dim=4, tie="no")
    assert LMConfig.from_dict(c.to_dict()) == c
    with pytest.raises(ValueError, match="hiden_dim"):
        LMConfig.from_dict({"vocab_size": 10, "hiden_dim": 3})


def test_tie_accepts_yaml_booleans():
    # YAML reads `tie: yes` / `--tie no` as booleans; they must not silently mean "untied"
    assert LMConfig(vocab_size=10, tie=True).tie == "yes"
    assert LMConfig(vocab_size=10, embed_dim=8, hidden_dim=8, tie=True).tied
    assert LMConfig(vocab_size=10, tie=False).tie == "no"
    assert not LMConfig(vocab_size=10, embed_dim=8, hidden_dim=8, tie=False).tied
    with pytest.raises(ValueError, match="tie must be"):
        LMConfig(vocab_size=10, tie="maybe")


# -- model folders ---------------------------------------------------------------
WORDS = ["a", "b", "c", "d", "e"]


def tiny_vocab():
    return WordVocab(["<s>", "</s>", "<unk>"] + WORDS + [f"w{i}" for i in range(V - 8)])


@pytest.mark.parametrize("kw", [{}, {"proj_dim": 5, "tie": "no"}, {"hidden_dim": 16}])
def test_save_load_round_trip(tmp_path, kw):
    m = make_lm(**kw)
    with torch.no_grad():
        m.out.bias.normal_()
    v = tiny_vocab()
    cfg = save_model(m, v, str(tmp_path / "m"), {"note": "hi"})
    files = sorted(os.listdir(tmp_path / "m"))
    assert files == ["config.json", "model.safetensors", "words.txt"]
    on_disk = json.loads((tmp_path / "m" / "config.json").read_text())
    assert on_disk == cfg
    assert on_disk["num_params"] == m.num_params() == sum(p.numel() for p in m.parameters())
    size = os.path.getsize(tmp_path / "m" / "model.safetensors")
    assert on_disk["size_mb"] == pytest.approx(size / 1e6, abs=1e-3) and on_disk["size_mb"] > 0
    assert on_disk["note"] == "hi" and on_disk["model"]["vocab_size"] == V
    assert on_disk["tokenizer"] == {"kind": "words", "file": "words.txt", "size": V}

    m2, v2, cfg2 = load_model(str(tmp_path / "m"))
    assert not m2.training and cfg2 == cfg and v2.itos == v.itos
    assert m2.cfg == m.cfg
    for (k, a), (k2, b) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k == k2 and torch.equal(a, b), k
    if m2.cfg.tied:
        assert m2.out.weight is m2.embed.weight
    sents = [[3, 4, 5], [], [7, 6, 5, 4, 3, 10]]
    assert score_sentences(m2, sents, v.bos, v.eos) == score_sentences(m, sents, v.bos, v.eos)


@pytest.fixture
def model_dir(tmp_path):
    d = tmp_path / "m"
    save_model(make_lm(), tiny_vocab(), str(d))
    (tmp_path / "t.txt").write_text("a b c\nd e\n", encoding="utf-8")
    return d


def _cli_ppl_error(model_dir, capsys):
    rc = main(["ppl", "--model", str(model_dir), "--text", str(model_dir.parent / "t.txt"),
               "--device", "cpu", "--quiet"])
    cap = capsys.readouterr()
    assert rc == 2
    lines = cap.err.strip("\n").split("\n")
    assert len(lines) == 1, cap.err
    assert lines[0].startswith("asr-kd ppl: error:")
    assert "Traceback" not in cap.err
    return lines[0]


def test_model_dir_ok_through_cli(model_dir, capsys):
    assert main(["ppl", "--model", str(model_dir), "--text", str(model_dir.parent / "t.txt"),
                 "--device", "cpu", "--quiet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tokens"] == 7 and out["oov"] == 0


@pytest.mark.parametrize("keep", [0, 7, 100])
def test_truncated_weights(model_dir, capsys, keep):
    w = model_dir / "model.safetensors"
    blob = w.read_bytes()
    w.write_bytes(blob[: keep if keep < 100 else len(blob) - 100])
    with pytest.raises(InputError) as e:
        load_model(str(model_dir))
    assert str(e.value).startswith(str(w) + ": ")
    assert str(w) in _cli_ppl_error(model_dir, capsys)


def test_weights_holding_nan_or_wrong_shape(model_dir, capsys):
    from safetensors.torch import load_file, save_file
    w = model_dir / "model.safetensors"
    sd = load_file(str(w))
    bad = dict(sd, **{"out.bias": torch.full_like(sd["out.bias"], float("nan"))})
    save_file(bad, str(w))
    with pytest.raises(InputError, match="NaN") as e:
        load_model(str(model_dir))
    assert str(w) in str(e.value)
    bad = dict(sd, **{"out.bias": torch.zeros(V + 1)})
    save_file(bad, str(w))
    with pytest.raises(InputError, match="shape") as e:
        load_model(str(model_dir))
    bad = {k: t for k, t in sd.items() if k != "out.bias"}
    save_file(bad, str(w))
    with pytest.raises(InputError, match="missing") as e:
        load_model(str(model_dir))
    os.unlink(w)
    with pytest.raises(InputError, match="missing weights") as e:
        load_model(str(model_dir))
    assert str(w) in _cli_ppl_error(model_dir, capsys)


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe garbage", b"[1, 2]",
                                     b'{"format": "something-else"}'])
def test_garbage_config(model_dir, capsys, content):
    c = model_dir / "config.json"
    c.write_bytes(content)
    with pytest.raises(InputError) as e:
        load_model(str(model_dir))
    assert str(e.value).startswith(str(c) + ": ")
    assert str(c) in _cli_ppl_error(model_dir, capsys)


def test_bad_model_section(model_dir, capsys):
    c = model_dir / "config.json"
    cfg = json.loads(c.read_text())
    cfg["model"]["hiden_dim"] = 3
    c.write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="hiden_dim") as e:
        load_model(str(model_dir))
    assert str(c) in str(e.value)
    _cli_ppl_error(model_dir, capsys)


def test_missing_words_txt(model_dir, capsys):
    os.unlink(model_dir / "words.txt")
    with pytest.raises(InputError) as e:
        load_model(str(model_dir))
    assert str(model_dir / "words.txt") in str(e.value)
    assert str(model_dir / "words.txt") in _cli_ppl_error(model_dir, capsys)


def test_missing_folder_or_config(tmp_path, capsys):
    (tmp_path / "t.txt").write_text("a\n", encoding="utf-8")
    with pytest.raises(InputError, match="no such model folder"):
        load_model(str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no config.json"):
        load_model(str(empty))
    assert str(empty) in _cli_ppl_error(empty, capsys)


def test_vocab_size_mismatch(model_dir, capsys):
    words = model_dir / "words.txt"
    words.write_text(words.read_text() + f"extra {V}\n")
    with pytest.raises(InputError, match=f"{V + 1} ids") as e:
        load_model(str(model_dir))
    assert str(words) in str(e.value)
    msg = _cli_ppl_error(model_dir, capsys)
    assert str(words) in msg and str(V) in msg
