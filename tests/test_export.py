"""`asr-kd export` (asr_kd.export): ONNX fp32 / int8 export, its self-check, and rescoring
and perplexity with the exported folder through the same code as the PyTorch model."""
from __future__ import annotations

import json
import os

import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from asr_kd import export as ex  # noqa: E402
from asr_kd.cli import main  # noqa: E402
from asr_kd.errors import InputError  # noqa: E402
from asr_kd.modeldir import load_models, save_model  # noqa: E402
from asr_kd.models import LMConfig, LstmLM, TeacherEnsemble  # noqa: E402
from asr_kd.nbest import read_nbest, write_jsonl  # noqa: E402
from asr_kd.nbest.model import Hyp, NBest, Utterance  # noqa: E402
from asr_kd.rescore import score_trie  # noqa: E402
from asr_kd.vocab import WordVocab  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported")

WORDS = [f"w{i}" for i in range(197)]
V = len(WORDS) + 3


def make_model_dir(path, seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, embed_dim=32, hidden_dim=48, num_layers=2, init_range=0.3, dropout=0.3)
    cfg.update(kw)
    model = LstmLM(LMConfig(**cfg)).eval()
    save_model(model, WordVocab(["<s>", "</s>", "<unk>"] + WORDS), str(path))
    return model


def random_sents(n, seed, max_len=12):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, V, (int(torch.randint(1, max_len, (1,), generator=g)),),
                          generator=g).tolist() for _ in range(n)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    model = make_model_dir(root / "lm")
    for fmt in ("onnx", "int8"):
        assert main(["export", "--model", str(root / "lm"), "--format", fmt,
                     "--out", str(root / fmt)]) == 0
    return root, model


def test_folder_layout_and_config(exported):
    root, model = exported
    for fmt, prec in (("onnx", "fp32"), ("int8", "int8")):
        d = root / fmt
        assert sorted(os.listdir(d)) == ["config.json", "model.onnx", "words.txt"]
        cfg = json.loads((d / "config.json").read_text())
        assert cfg["format"] == ex.EXPORT_FORMAT and cfg["precision"] == prec
        assert cfg["onnx"]["opset"] == ex.OPSET
        assert cfg["model"]["vocab_size"] == V
        assert (d / "words.txt").read_bytes() == (root / "lm" / "words.txt").read_bytes()
        for k, lim in ex.TOLERANCE["onnx" if fmt == "onnx" else "int8"].items():
            assert 0 <= cfg["check"]["diff"][k] <= lim
    import onnx
    g = onnx.load(str(root / "onnx" / "model.onnx"))
    assert [i.name for i in g.graph.input] == ex.INPUTS
    assert [o.name for o in g.graph.output] == ex.OUTPUTS
    assert g.opset_import[0].version == ex.OPSET
    # int8 weights: the quantised graph is much smaller than the fp32 one
    assert os.path.getsize(root / "int8" / "model.onnx") < 0.5 * os.path.getsize(
        root / "onnx" / "model.onnx")


def test_onnx_logprobs_match_torch_whole_sequence_and_steps(exported):
    root, model = exported
    onnx_lm, tok, _ = ex.load_exported(str(root / "onnx"))
    x = torch.randint(0, V, (3, 7))
    with torch.no_grad():
        ref, (rh, rc) = model(x)
        ref = torch.log_softmax(ref, -1)
        got, (gh, gc) = onnx_lm.hidden(x)
        assert got.shape == (3, 7, V)
        assert torch.allclose(got, ref, atol=1e-4) and torch.allclose(gh, rh, atol=1e-5)
        # one step at a time, state carried (what the trie does), batch size 3 then 2
        state = onnx_lm.init_state(3)
        for t in range(7):
            lp, state = onnx_lm.hidden(x[:, t:t + 1], state)
            assert torch.allclose(lp[:, 0], ref[:, t], atol=1e-4)
        lp, _ = onnx_lm.hidden(x[:2, :1], (state[0][:, :2], state[1][:, :2]))
        assert lp.shape == (2, 1, V)
    sents = random_sents(20, 1)
    a, _ = score_trie(model, sents, tok.bos, tok.eos)
    b, _ = score_trie(onnx_lm, sents, tok.bos, tok.eos)
    assert max(abs(p - q) for p, q in zip(a, b)) < 1e-3


def test_int8_is_close_but_not_identical(exported):
    root, model = exported
    int8, tok, _ = ex.load_exported(str(root / "int8"))
    diff = ex.compare_models(model, int8, random_sents(30, 2), tok.bos, tok.eos)
    assert 0 < diff["token_max"] <= ex.TOLERANCE["int8"]["token_max"]
    assert diff["ppl_rel"] <= ex.TOLERANCE["int8"]["ppl_rel"]


def test_check_refuses_and_writes_nothing(tmp_path, monkeypatch, capsys):
    make_model_dir(tmp_path / "lm")
    with pytest.raises(ex.ExportCheckError, match="token_max .* > 1e-09"):
        ex.export_model(str(tmp_path / "lm"), "int8", str(tmp_path / "a"),
                        tolerance={"token_max": 1e-9})
    assert not (tmp_path / "a").exists() or os.listdir(tmp_path / "a") == []
    # the CLI: one line, exit 2, nothing under --out
    monkeypatch.setitem(ex.TOLERANCE, "int8", dict(ex.TOLERANCE["int8"], token_mean=0.0))
    assert main(["export", "--model", str(tmp_path / "lm"), "--format", "int8",
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "beyond tolerance" in err and "nothing written" in err
    assert not (tmp_path / "b").exists() or os.listdir(tmp_path / "b") == []


def test_check_text_option(tmp_path, capsys):
    make_model_dir(tmp_path / "lm")
    (tmp_path / "t.txt").write_text("u1 w1 w2 w3\nu2 w5 w6\nu3\nu4 w9 w100 w7 w8\n")  # Kaldi text
    assert main(["export", "--model", str(tmp_path / "lm"), "--format", "onnx",
                 "--out", str(tmp_path / "o"), "--check-text", str(tmp_path / "t.txt")]) == 0
    cfg = json.loads((tmp_path / "o" / "config.json").read_text())
    assert cfg["check"]["diff"]["sentences"] == 3
    assert cfg["check"]["diff"]["tokens"] == 3 + 2 + 4 + 3


def _nbest():
    utts = []
    for u in range(6):
        base = " ".join(f"w{(u * 7 + k) % 190}" for k in range(5))
        hyps = [Hyp(base, {"am": -1.0}), Hyp(base + " w3", {"am": -2.0}),
                Hyp(base.replace("w", "w1", 1), {"am": -3.0}), Hyp("zzz " + base, {"am": -4.0})]
        utts.append(Utterance(f"u{u}", hyps, ref=base))
    return NBest(utts)


def test_rescore_and_ppl_cli_with_exported_model(exported, tmp_path, capsys):
    root, _ = exported
    write_jsonl(_nbest(), str(tmp_path / "in.jsonl"))
    (tmp_path / "text").write_text("w1 w2 w3 w4\nw10 w11 zzz\nw150 w3\n")
    out, ppl = {}, {}
    for name in ("lm", "onnx", "int8"):
        assert main(["rescore", "--nbest", str(tmp_path / "in.jsonl"), "--model",
                     str(root / name), "--name", "x", "--out", str(tmp_path / f"{name}.jsonl"),
                     "--quiet"]) == 0
        out[name] = [h.scores for u in read_nbest(str(tmp_path / f"{name}.jsonl"), "jsonl")
                     for h in u.hyps]
        for mode in ("stream", "sentence"):
            capsys.readouterr()
            assert main(["ppl", "--model", str(root / name), "--text", str(tmp_path / "text"),
                         "--mode", mode, "--json", "--quiet"]) == 0
            ppl[name, mode] = json.loads(capsys.readouterr().out)
    for a, b in zip(out["lm"], out["onnx"]):
        assert abs(a["lm:x"] - b["lm:x"]) < 1e-3 and a["oov:x"] == b["oov:x"] == b["oov:x"]
    diffs = [abs(a["lm:x"] - b["lm:x"]) for a, b in zip(out["lm"], out["int8"])]
    assert 0 < max(diffs) < ex.TOLERANCE["int8"]["sentence_max"]
    for mode in ("stream", "sentence"):
        ref = ppl["lm", mode]
        assert ppl["onnx", mode]["tokens"] == ref["tokens"] and ppl["onnx", mode]["oov"] == 1
        assert abs(ppl["onnx", mode]["ppl"] / ref["ppl"] - 1) < 1e-4
        assert abs(ppl["int8", mode]["ppl"] / ref["ppl"] - 1) < ex.TOLERANCE["int8"]["ppl_rel"]


def test_ensemble_of_exported_members(tmp_path):
    """--model A B with exported members: the same prob/logit average as the torch ensemble."""
    m1 = make_model_dir(tmp_path / "a", seed=1, num_layers=1)
    m2 = make_model_dir(tmp_path / "b", seed=2, hidden_dim=20)
    for n in ("a", "b"):
        ex.export_model(str(tmp_path / n), "onnx", str(tmp_path / f"{n}.onnx"))
    sents = random_sents(15, 3)
    for combine in ("prob", "logit"):
        ens, tok = load_models([str(tmp_path / "a.onnx"), str(tmp_path / "b.onnx")],
                               combine=combine, allow_exported=True)
        ref = TeacherEnsemble([m1, m2], combine).eval()
        a, _ = score_trie(ref, sents, tok.bos, tok.eos)
        b, _ = score_trie(ens, sents, tok.bos, tok.eos)
        assert max(abs(p - q) for p, q in zip(a, b)) < 1e-3


def test_refusals(exported, tmp_path, capsys):
    root, _ = exported
    # training commands get the PyTorch folder, not the export
    with pytest.raises(InputError, match="can only score"):
        load_models([str(root / "onnx")])
    # exporting into the model folder itself would replace its config.json
    with pytest.raises(InputError, match="not the model folder itself"):
        ex.export_model(str(root / "lm"), "onnx", str(root / "lm" / "."))
    # a changed model.onnx is caught by its checksum
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in os.listdir(root / "onnx"):
        (bad / f).write_bytes((root / "onnx" / f).read_bytes())
    blob = bytearray((bad / "model.onnx").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (bad / "model.onnx").write_bytes(bytes(blob))
    with pytest.raises(InputError, match="model.onnx: checksum differs"):
        ex.load_exported(str(bad))
    # LSTMP has no ONNX LSTM equivalent: one clear line
    make_model_dir(tmp_path / "p", proj_dim=16, num_layers=1)
    assert main(["export", "--model", str(tmp_path / "p"), "--format", "onnx",
                 "--out", str(tmp_path / "po")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "LSTMP" in err
