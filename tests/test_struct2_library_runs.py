"""The steps `score`, `tune`, `ppl --json` and `distill` ran inside their CLI modules are
library functions: score_set.score_set, tune_set.tune_set, results.ppl_json,
distill.cache_ensemble, nbest.srilm.reader_options, tuned_on.filter_for_record.
The CLI prints what they return; these tests call them directly on tiny sets."""
from __future__ import annotations

import json

import pytest

from asr_kd.cli import main
from asr_kd.distill import cache_ensemble
from asr_kd.errors import InputError
from asr_kd.noise import build_filter
from asr_kd.ops import KDConfig
from asr_kd.results import ppl_json
from asr_kd.score_set import ScoreRequest, score_set
from asr_kd.tune_set import TuneRequest, tune_set

# am=1, lm0=0.1 picks "a c" (total -1.3 against -2.1) in u1 and "c" in u2: 1 error in 3
# words; an lm0 weight above 0.5 picks "a b": no error
UTTS = [{"utt": "u1", "ref": "a b", "hyps": [{"text": "a b", "scores": {"am": -2, "lm0": -1}},
                                             {"text": "a c", "scores": {"am": -1, "lm0": -3}}]},
        {"utt": "u2", "ref": "c", "hyps": [{"text": "c", "scores": {"am": -1, "lm0": -1}},
                                           {"text": "d", "scores": {"am": -3, "lm0": -3}}]}]


def _nbest(tmp_path, refs: bool = True):
    path = tmp_path / ("dev.jsonl" if refs else "noref.jsonl")
    path.write_text("".join(json.dumps(u if refs else {k: v for k, v in u.items() if k != "ref"})
                            + "\n" for u in UTTS))
    return str(path)


def _collect():
    said = {"warn": [], "info": [], "show": []}
    return said, {k: said[k].append for k in said}


def test_score_set_returns_the_result_the_cli_prints(tmp_path, capsys):
    said, say = _collect()
    out = score_set(ScoreRequest(nbest=_nbest(tmp_path), weight=["am=1", "lm0=0.1"]), **say)
    assert (out.result.errors, out.result.words, out.utts, out.decode) == (1, 3, 2, "1best")
    assert out.result.wer == pytest.approx(100 / 3)
    assert out.record == {"noise": ["-pau-"]} and said == {"warn": [], "info": [], "show": []}
    capsys.readouterr()
    assert main(["score", "--nbest", _nbest(tmp_path), "--weight", "am=1", "--weight", "lm0=0.1",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {**out.result.to_dict(), **out.record}


@pytest.mark.parametrize("decode", [None, "consensus"])
def test_score_set_without_references_writes_the_hypotheses_only(tmp_path, decode):
    hyp = tmp_path / "hyp.txt"
    req = ScoreRequest(nbest=_nbest(tmp_path, refs=False), weight=["am=1", "lm0=0.1"],
                       out_hyp=str(hyp), decode=decode,
                       posterior_scale=1.0 if decode else None)
    out = score_set(req, **_collect()[1])
    assert out.result is None and out.utts == 2
    assert out.decode == (decode or "1best")
    assert hyp.read_text() == "u1 a c\nu2 c\n"


def test_score_set_shows_the_srilm_weights_before_a_later_error(tmp_path):
    said, say = _collect()
    req = ScoreRequest(nbest=_nbest(tmp_path), weight=["am=1", "lm0=0.1"], print_srilm=True,
                       out_mesh=str(tmp_path / "mesh"), details=str(tmp_path / "det"))
    with pytest.raises(InputError, match="--out-mesh needs consensus decoding"):
        score_set(req, **say)
    assert len(said["show"]) == 1 and said["show"][0].startswith("SRILM weights")
    assert not (tmp_path / "mesh").exists()


def test_score_set_uses_the_recorded_filter_and_warns_about_another(tmp_path):
    w = tmp_path / "w.json"
    w.write_text(json.dumps({"am": 1.0, "lm0": 0.1, "_tuned_on": {"noise": ["-pau-", "b"]}}))
    said, say = _collect()
    out = score_set(ScoreRequest(nbest=_nbest(tmp_path), weights=str(w)), **say)
    assert said["info"][0].startswith(f"scoring filter from {w} (what it was tuned with)")
    assert (out.result.errors, out.result.words) == (1, 2)   # "b" left the reference: "a"
    said, say = _collect()
    out = score_set(ScoreRequest(nbest=_nbest(tmp_path), weights=str(w), noise=["zz"]), **say)
    assert any("was tuned with the scoring filter" in m for m in said["warn"])
    assert (out.result.errors, out.result.words) == (1, 3)


def test_tune_set_writes_the_weights_it_returns(tmp_path):
    out = tmp_path / "w.json"
    curve = tmp_path / "curve.json"
    said, say = _collect()
    res = tune_set(TuneRequest(nbest=_nbest(tmp_path), keys=["am", "lm0"], out=str(out),
                               curve_out=str(curve)), warn=say["warn"], info=say["info"],
                   log=say["show"])
    written = json.loads(out.read_text())
    assert {k: v for k, v in written.items() if not k.startswith("_")} == res.weights
    assert res.weights["am"] == 1.0 and res.scale is None and res.guard is None
    assert res.result.errors == 0 and res.curve_key == "lm0"
    assert json.loads(curve.read_text())["best"] == res.best == res.weights["lm0"]
    score = score_set(ScoreRequest(nbest=_nbest(tmp_path), weights=str(out)), **_collect()[1])
    assert score.result.errors == res.result.errors


def test_tune_set_refuses_a_set_without_references_before_writing(tmp_path):
    out = tmp_path / "w.json"
    with pytest.raises(InputError, match="tuning needs references"):
        tune_set(TuneRequest(nbest=_nbest(tmp_path, refs=False), keys=["am", "lm0"],
                             out=str(out)), warn=print, info=print, log=print)
    assert not out.exists()


def test_ppl_json_fields():
    res = {"ppl": 12.345678, "tokens": 10, "oov": 1, "sentences": 2, "word_ppl": 20.000049,
           "words": 8}
    assert json.loads(ppl_json(res, "stream", word_unit=False)) == {
        "ppl": 12.3457, "tokens": 10, "oov": 1, "sentences": 2, "mode": "stream",
        "unit": "token", "word_ppl": 20.0, "words": 8}
    assert json.loads(ppl_json(res, "sentence", word_unit=True))["unit"] == "word"


def test_cache_ensemble_takes_the_caches_rule_unless_another_was_set():
    cfg = KDConfig()
    other = "logit" if cfg.ensemble != "logit" else "prob"
    assert cache_ensemble(cfg, None, None, "c") is cfg
    assert cache_ensemble(cfg, cfg.ensemble, "--ensemble", "c") is cfg
    assert cache_ensemble(cfg, other, None, "c").ensemble == other
    with pytest.raises(InputError, match="kd.ensemble says") as e:
        cache_ensemble(cfg, other, "kd.ensemble", "cache_dir")
    assert "cache_dir" in str(e.value)


def test_srilm_reader_options(tmp_path):
    from asr_kd.nbest.srilm import reader_options

    jsonl = _nbest(tmp_path)
    assert reader_options(None, None, None, None, jsonl) == {}
    with pytest.raises(InputError, match="applies to srilm input only"):
        reader_options(["x=d"], None, None, None, jsonl)
    with pytest.raises(InputError, match="apply to srilm input"):
        reader_options(None, "am", None, None, jsonl)
    assert reader_options(None, "am", None, None, jsonl, keys_used=True) == {}
    assert reader_options(["x=d", "y=e"], None, "lm", "srilm", jsonl) == {
        "scores": {"x": "d", "y": "e"}, "lm": "lm"}
    with pytest.raises(InputError, match="given twice"):
        reader_options(["x=d", "x=e"], None, None, "srilm", jsonl)


def test_filter_for_record_without_a_readable_record_keeps_the_options_filter():
    from asr_kd.tuned_on import filter_for_record

    flt = build_filter(["zz"])
    for rec in (None, {}, {"noise": "not a list"}, {"noise": ["-pau-", "zz"]}):
        assert filter_for_record(flt, True, rec, "w.json", print, print) is flt
