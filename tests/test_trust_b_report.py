"""The report says what its numbers are: the LM-weight curve follows the LM's key, the
size plot is in MB, the perplexity column its mode and unit (per word for subword
models), each set its size and each system its error types; comparisons of systems
not in the report are left out."""
from __future__ import annotations

import json
import random

import pytest
import torch

from asr_kd.cli import main
from asr_kd.modeldir import save_model
from asr_kd.models import LMConfig, LstmLM
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.report import System, collect, markdown, plots
from asr_kd.results import RunLayout
from asr_kd.tune import tune_weights


def _nbest(keys):
    rng = random.Random(0)
    utts = []
    for i in range(6):
        hyps = [Hyp(t, {k: rng.uniform(-10, 0) for k in keys}) for t in ("a b", "a c", "b")]
        utts.append(Utterance(f"u{i}", hyps, ref="a b"))
    return NBest(utts)


@pytest.mark.parametrize("keys,want", [
    (["decoder", "ctc", "lm"], "lm"),                      # ESPnet's order
    (["am", "lm0", "lm:student"], "lm:student"),           # a rescoring LM
    (["score", "rank", "lm0"], "lm0"),
    (["score", "rank"], "rank"),                           # no LM key: the second key
])
def test_curve_follows_the_lm_key(keys, want):
    assert tune_weights(_nbest(keys), keys, wip=True, quiet=True).curve_key == want


def _exp(tmp_path):
    exp = tmp_path / "exp"
    fp32, int8 = tmp_path / "fp32", tmp_path / "int8"
    for d, mb in ((fp32, 4.0), (int8, 1.0)):   # same parameters, a quarter of the bytes
        d.mkdir()
        (d / "config.json").write_text(json.dumps({"num_params": 1000, "size_mb": mb}))
    (exp / "ppl").mkdir(parents=True)
    (exp / "ppl" / "fp32.json").write_text(json.dumps(
        {"ppl": 30.0, "mode": "sentence", "unit": "token", "word_ppl": 90.0}))
    (exp / "ppl" / "int8.json").write_text(json.dumps(
        {"ppl": 31.0, "mode": "sentence", "unit": "token", "word_ppl": 93.0}))
    (exp / "rescore").mkdir()
    for s in ("first_pass", "fp32", "int8"):
        (exp / "score" / s).mkdir(parents=True)
        (exp / "score" / s / "dev.json").write_text(json.dumps(
            {"wer": 9.5, "ser": 40.0, "oracle_wer": 3.0, "utts": 12, "words": 200,
             "sub": 11, "del": 5, "ins": 3}))
        (exp / "score" / s / "weights.json").write_text('{"am": 1.0}')
        (exp / "score" / s / "curve.json").write_text(json.dumps(
            {"key": "lm:" + s if s != "first_pass" else "lm", "points": [[0, 10.0], [1, 9.5]]}))
    (exp / "compare").mkdir()
    for pair in ("fp32_vs_int8", "fp32_vs_gone"):   # "gone": a system of an older run
        (exp / "compare" / f"dev.{pair}.json").write_text(json.dumps(
            {"a": {"wer": 9.5}, "b": {"wer": 9.5}, "bootstrap": {"diff": 0.0}}))
    return exp, [System("first_pass"), System("fp32", [str(fp32)]),
                 System("int8", [str(int8)])]


def test_markdown_states_ppl_kind_counts_and_error_types(tmp_path):
    exp, systems = _exp(tmp_path)
    res = collect(RunLayout(str(exp)), systems, ["dev"])
    md = markdown(res)
    head = next(l for l in md.splitlines() if l.startswith("| system"))
    assert "ppl (sentence, per word)" in head and head.endswith("| sub | del | ins |")
    assert "12 utterances, 200 reference words." in md
    row = next(l for l in md.splitlines() if l.startswith("| fp32 "))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[8] == "90.0"                    # the per-word perplexity, not 30.0 per piece
    assert cells[-3:] == ["11", "5", "3"]
    assert [(c["a"], c["b"]) for c in res["comparisons"]] == [("fp32", "int8")]


def test_plots_use_mb_and_the_lm_weight(tmp_path, monkeypatch):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    seen = {}
    real = Figure.savefig

    def record(fig, f, **kw):
        ax = fig.axes[0]
        seen[ax.get_title()] = (ax.get_xlabel(), [tuple(c.get_offsets()[i]) for c in
                                                   ax.collections for i in
                                                   range(len(c.get_offsets()))])
        return real(fig, f, **kw)

    monkeypatch.setattr(Figure, "savefig", record)
    exp, systems = _exp(tmp_path)
    out = tmp_path / "rep"
    out.mkdir()
    plots(collect(RunLayout(str(exp)), systems, ["dev"]), str(out))
    size = next(v for k, v in seen.items() if "size" in k)
    assert size[0] == "LM size (MB)" and sorted(x for x, _ in size[1]) == [1.0, 4.0]
    curve = next(v for k, v in seen.items() if "weight" in k)
    assert curve[0].startswith("LM weight")


def test_ppl_json_per_word_for_a_subword_model(tmp_path, capsys):
    from test_vocab import _spm_text  # tests/ is on sys.path

    lines = _spm_text(tmp_path / "train.txt")
    assert main(["vocab", "--text", str(tmp_path / "train.txt"), "--out", str(tmp_path / "spm"),
                 "--spm-size", "40", "--text-format", "plain"]) == 0
    from asr_kd.vocab import load_vocab_path
    tok = load_vocab_path(tmp_path / "spm")
    torch.manual_seed(0)
    save_model(LstmLM(LMConfig(vocab_size=tok.size, embed_dim=8, hidden_dim=8, num_layers=1)),
               tok, str(tmp_path / "lm"))
    # words never seen whole: each is several pieces
    test = [s.replace(" ", "", 1) for s in lines[:20]]
    (tmp_path / "test.txt").write_text("\n".join(test) + "\n")
    capsys.readouterr()
    assert main(["ppl", "--model", str(tmp_path / "lm"), "--text", str(tmp_path / "test.txt"),
                 "--json", "--quiet"]) == 0
    r = json.loads(capsys.readouterr().out)
    words = sum(len(s.split()) + 1 for s in test)
    assert r["unit"] == "token" and r["mode"] == "stream" and r["words"] == words
    assert r["tokens"] > words        # pieces, not words
    # the same log-likelihood over fewer units
    assert r["word_ppl"] == pytest.approx(r["ppl"] ** (r["tokens"] / words), rel=1e-3)
