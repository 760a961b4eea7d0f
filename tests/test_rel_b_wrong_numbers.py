"""Inputs that used to give a plausible but wrong number with exit 0: references left
without words by the scoring filter, SentencePiece models that cannot spell the lists,
repeated keys in weights and configs, an infinite learning rate, overflowing weights."""
from __future__ import annotations

import json
import warnings

import pytest

from asr_kd.checks import oov_report, oov_warning
from asr_kd.cli import main
from asr_kd.nbest.model import Hyp, NBest, Utterance


def _jsonl(path, ref, hyps, n=12):
    """n utterances, reference ``ref``, hypotheses ``hyps`` with am/lm0 scores that vary."""
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"utt": f"u{i}", "ref": ref, "hyps": [
                {"text": t, "scores": {"am": -1.0 - i * (k + 1), "lm0": -2.0 - k * i}}
                for k, t in enumerate(hyps)]}) + "\n")
    return str(path)


@pytest.fixture
def noise_only(tmp_path):
    return _jsonl(tmp_path / "noise.jsonl", "[noise] -pau-", ["[noise]", "-pau- [noise]", ""])


@pytest.fixture
def plain(tmp_path):
    return _jsonl(tmp_path / "plain.jsonl", "a b c", ["a b c", "a b d", "a"])


# ------------------------------------------------------ 7: no reference words --

@pytest.mark.parametrize("extra", [[], ["--decode", "consensus", "--posterior-scale", "1"]])
def test_score_refuses_references_without_words(noise_only, capsys, extra):
    assert main(["score", "--nbest", noise_only, "--weight", "am=1", "--noise", "[noise]",
                 *extra]) == 2
    out, err = capsys.readouterr()
    assert "%WER" not in out
    assert err.count("error:") == 1 and "references have no words" in err and noise_only in err


def test_tune_refuses_references_without_words_and_writes_nothing(noise_only, tmp_path, capsys):
    out = tmp_path / "w.json"
    assert main(["tune", "--nbest", noise_only, "--scores", "am,lm0", "--noise", "[noise]",
                 "--out", str(out)]) == 2
    assert "references have no words" in capsys.readouterr().err
    assert not out.exists()


def test_compare_refuses_references_without_words(tmp_path, capsys):
    (tmp_path / "ref").write_text("u1 [noise]\nu2 -pau-\n")
    (tmp_path / "a").write_text("u1 x\nu2 y\n")
    assert main(["compare", "--ref", str(tmp_path / "ref"), str(tmp_path / "a"),
                 str(tmp_path / "a"), "--noise", "[noise]"]) == 2
    assert "references have no words" in capsys.readouterr().err


def test_references_with_words_still_score(plain, capsys):
    assert main(["score", "--nbest", plain, "--weight", "am=1"]) == 0
    assert "%WER 0.00 [ 0 / 36" in capsys.readouterr().out


# ------------------------------------------------- 8: SentencePiece unknowns --

@pytest.fixture(scope="module")
def upper_spm(tmp_path_factory):
    pytest.importorskip("sentencepiece")
    from asr_kd.vocab import SpmTokenizer

    root = tmp_path_factory.mktemp("spm")
    words = ["ALPHA", "BRAVO", "CHARLIE", "DELTA", "ECHO", "FOXTROT", "GOLF", "HOTEL"]
    lines = [" ".join(words[(i * 3 + k) % len(words)] for k in range(1 + i % 5))
             for i in range(300)]
    (root / "t.txt").write_text("\n".join(lines) + "\n")
    return SpmTokenizer(SpmTokenizer.train(root / "t.txt", str(root / "m"), 40, seed=0))


def test_spm_unknown_pieces_are_reported_with_the_case_fix(upper_spm):
    nb = NBest([Utterance(f"u{i}", [Hyp("alpha bravo charlie"), Hyp("delta echo")])
                for i in range(3)])
    rep = oov_report(nb, upper_spm)
    assert rep is not None and rep.unit == "pieces" and rep.rate > 0.2
    assert rep.case_fix == "uppercase" and rep.fixed_share == 1.0
    msg = oov_warning(rep, "exp/spm_lm")
    assert "pieces" in msg and "<unk>" in msg and "--text-filter uppercase" in msg
    # the fix applied: nothing unknown, no warning
    fixed = oov_report(nb, upper_spm, str.upper)
    assert fixed.oov == 0 and oov_warning(fixed, "exp/spm_lm") is None


def test_spm_in_case_lists_give_no_warning(upper_spm):
    nb = NBest([Utterance("u", [Hyp("ALPHA BRAVO"), Hyp("GOLF HOTEL ECHO")])])
    assert oov_warning(oov_report(nb, upper_spm), "lm") is None


# ------------------------------------------------------- 9: duplicates, inf --

def test_weights_file_with_a_repeated_key_is_refused(plain, tmp_path, capsys):
    w = tmp_path / "w.json"
    w.write_text('{"am": 1.73, "lm0": 1, "am": 8.57}')
    assert main(["score", "--nbest", plain, "--weights", str(w)]) == 2
    out, err = capsys.readouterr()
    assert "%WER" not in out
    assert err.count("\n") == 1 and str(w) in err and "'am' is given twice" in err


def test_tune_fallback_weights_with_a_repeated_key_are_refused(plain, tmp_path, capsys):
    w = tmp_path / "first.json"
    w.write_text('{"am": 1, "lm0": 0.5, "lm0": 9}')
    assert main(["tune", "--nbest", plain, "--scores", "am,lm0", "--fallback", str(w),
                 "--out", str(tmp_path / "o.json")]) == 2
    assert "given twice" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


@pytest.fixture
def texts(tmp_path):
    (tmp_path / "t.txt").write_text("a b c\nb c a\nc a b\n" * 4)
    return str(tmp_path / "t.txt")


def _train(tmp_path, conf_text, texts, *flags):
    (tmp_path / "c.yaml").write_text(conf_text)
    return main(["train-lm", "--config", str(tmp_path / "c.yaml"), "--train", texts,
                 "--valid", texts, "--out", str(tmp_path / "m"), "--quiet", "--epochs", "1",
                 "--embed-dim", "8", "--hidden-dim", "8", "--num-layers", "1", *flags])


def test_config_with_a_repeated_key_is_refused(tmp_path, texts, capsys):
    assert _train(tmp_path, "lr: 1.0\nbatch_size: 4\nlr: 20\n", texts) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "c.yaml:3" in err and "'lr' is given twice" in err
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_kd_section_with_a_repeated_key_is_refused(tmp_path):
    from asr_kd.config import load_config
    from asr_kd.errors import InputError

    (tmp_path / "s.yaml").write_text("lr: 1.0\nkd:\n  alpha: 0.5\n  tau: 2.0\n  alpha: 0.9\n")
    with pytest.raises(InputError, match=r"s.yaml:5: .*'alpha' is given twice"):
        load_config(str(tmp_path / "s.yaml"), {}, sections={"kd"})


@pytest.mark.parametrize("conf, flags, want", [
    ("lr: .inf\n", [], "c.yaml: lr: expected a finite number, got inf"),
    ("lr: .nan\n", [], "c.yaml: lr: expected a finite number, got nan"),
    ("lr: 1.0\n", ["--lr", ".inf"], "--lr: expected a finite number, got inf"),
    ("proj_dim: [1, 2]\n", [], "c.yaml: proj_dim: expected an integer"),
    ("amp: maybe\n", [], "c.yaml: amp: expected true or false"),
    ("min_lr: 1e-3\n", [], "write 1.0e-3"),
    ("batching: words\n", [], "c.yaml: batching must be one of"),
    ("dropout: 1.5\n", [], "c.yaml: dropout must be < 1, got 1.5"),
    ("proj_dim: -4\n", [], "c.yaml: proj_dim must be >= 0, got -4"),
    ("lr: 1.0\n", ["--embed-dim", "0"], "--embed-dim must be >= 1, got 0"),
])
def test_bad_config_values_name_file_and_key_and_train_nothing(tmp_path, texts, capsys,
                                                               conf, flags, want):
    assert _train(tmp_path, conf, texts, *flags) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and want in err, err
    assert not (tmp_path / "m" / "model.safetensors").exists()


def test_weights_that_overflow_are_refused(plain, tmp_path, capsys):
    w = tmp_path / "w.json"
    w.write_text('{"am": 1e308, "lm0": 1e308}')
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)   # numpy's raw overflow warning fails
        rc = main(["score", "--nbest", plain, "--weights", str(w)])
    assert rc == 2
    out, err = capsys.readouterr()
    assert "%WER" not in out
    assert err.count("\n") == 1 and "not a finite number" in err and "u0" in err
