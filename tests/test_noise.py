"""The scoring-side noise filter (asr_kd.noise) and its options in score, tune, compare, report."""
from __future__ import annotations

import json

import pytest

from asr_kd.cli import main
from asr_kd.errors import InputError
from asr_kd.nbest.model import Hyp, NBest, Utterance
from asr_kd.noise import DEFAULT_NOISE, NoiseFilter, build_filter
from asr_kd.report import markdown
from nbest_fixtures import write_text


def test_patterns_exact_and_star_only():
    f = NoiseFilter(["-pau-", "[*]", "<*>", "@reject@", "um*"])
    text = "-pau- a [noise] b <unk> [laughter] @reject@ um umm n [ ] <> c"
    # '[noise]' is a word pattern, not a character class; '[ ]' are two words
    assert f.text(text) == "a b n [ ] c"
    assert NoiseFilter(["[noise]"]).text("n o i s e [noise] [x]") == "n o i s e [x]"
    assert not NoiseFilter([]) and NoiseFilter(["x"])
    assert NoiseFilter(["a.b"]).text("a.b axb") == "axb"          # '.' is literal


@pytest.mark.parametrize("bad", ["*", "**", "a b"])
def test_bad_patterns_are_refused(bad):
    with pytest.raises(InputError, match="would remove every word|one word"):
        NoiseFilter([bad])


def test_build_filter_default_lists_and_vocab_file(tmp_path):
    assert build_filter().patterns == DEFAULT_NOISE == ("-pau-",)
    assert build_filter(default=False).patterns == ()
    v = write_text(tmp_path / "noise.vocab", "# noise tags\n[noise]\n\n[laughter] 12\n")
    f = build_filter(["<unk>,[vocalized-noise]", "@reject@"], [str(v)])
    assert f.patterns == ("-pau-", "<unk>", "[vocalized-noise]", "@reject@", "[noise]",
                          "[laughter]")
    with pytest.raises(InputError, match="missing"):
        build_filter(None, [str(tmp_path / "missing")])


def test_filter_nbest_keeps_scores_and_counts_removed_tokens():
    nb = NBest([Utterance("u", [Hyp("a [noise] b", {"am": -1.0}), Hyp("-pau-", {"am": -2.0})],
                          "[laughter] a b -pau-"),
                Utterance("v", [Hyp("c", {"am": 0.0})], None)])
    out, n_hyp, n_ref = build_filter(["[*]"]).nbest(nb)
    assert [h.text for h in out.utts[0].hyps] == ["a b", ""]
    assert out.utts[0].ref == "a b" and out.utts[1].ref is None
    assert (n_hyp, n_ref) == (2, 2)
    assert out.utts[0].hyps[0].scores is nb.utts[0].hyps[0].scores
    assert nb.utts[0].hyps[0].text == "a [noise] b"              # the input is unchanged


def _srilm_set(tmp_path):
    """Headerless SRILM lists (log10 am lm nwords words) with noise in hyps and refs.

    u1: hyp 1 is right once noise is gone, but has 4 tokens; hyp 2 ('a c', 1 error) wins
    whenever the 2 noise tokens count towards the word insertion penalty.
    u2: the reference holds noise; the only hypothesis is right without it.
    """
    d = tmp_path / "nb"
    write_text(d / "u1.nbest", "-1 0 4 a [noise] -pau- b\n-1.5 0 2 a c\n")
    write_text(d / "u2.nbest", "-2 0 2 [laughter] d\n")
    ref = write_text(tmp_path / "ref", "u1 a b\nu2 d e -pau- [noise]\n")
    return d, ref


def _score(args, capsys):
    rc = main(["score", *args, "--json"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out), out.err


def test_score_with_and_without_filter(tmp_path, capsys):
    d, ref = _srilm_set(tmp_path)
    base = ["--nbest", str(d), "--ref", str(ref), "--weight", "am=1", "--weight", "wip=-1"]
    raw, _ = _score(base + ["--no-default-noise"], capsys)
    # u1: totals (ln) -1*2.303-4 vs -1.5*2.303-2: hyp 2 'a c' vs ref 'a b': 1 sub;
    # u2: '[laughter] d' vs 'd e -pau- [noise]': edit distance 4 over 4 words
    assert raw["words"] == 6 and raw["sub"] + raw["ins"] + raw["del"] == 5
    assert raw["wer"] == pytest.approx(500 / 6) and raw["ser"] == 100.0
    assert raw["noise"] == []
    dflt, _ = _score(base, capsys)                 # -pau- only (the default)
    assert dflt["noise"] == ["-pau-"] and dflt["words"] == 5
    full, err = _score(base + ["--noise", "[*]"], capsys)
    # the filtered word count makes hyp 1 win in u1 (2 words each): 0 errors; u2: 'd' vs 'd e'
    assert (full["words"], full["sub"], full["ins"], full["del"]) == (4, 0, 0, 1)
    assert full["wer"] == pytest.approx(25.0) and full["ser"] == pytest.approx(50.0)
    assert full["noise"] == ["-pau-", "[*]"]
    assert "removed 3 hypothesis and 2 reference tokens" in err
    # the same through a noise vocabulary file
    v = write_text(tmp_path / "v", "[noise]\n[laughter]\n")
    same, _ = _score(base + ["--noise-vocab", str(v)], capsys)
    assert {k: same[k] for k in ("wer", "words")} == {k: full[k] for k in ("wer", "words")}


def test_out_hyp_holds_the_scored_text(tmp_path, capsys):
    d, ref = _srilm_set(tmp_path)
    hyp = tmp_path / "hyp"
    _score(["--nbest", str(d), "--ref", str(ref), "--weight", "am=1", "--noise", "[*]",
            "--out-hyp", str(hyp)], capsys)
    assert hyp.read_text() == "u1 a b\nu2 d\n"


def test_tune_records_the_filter_and_tunes_on_filtered_counts(tmp_path, capsys):
    d, ref = _srilm_set(tmp_path)
    out, curve = tmp_path / "w.json", tmp_path / "curve.json"
    rc = main(["tune", "--nbest", str(d), "--ref", str(ref), "--scores", "am,lm0", "--wip",
               "--noise", "[*]", "--out", str(out), "--curve-out", str(curve)])
    text = capsys.readouterr().out
    assert rc == 0
    assert "scoring filter: -pau- [*]" in text
    assert "%WER 25.00 [ 1 / 4," in text           # u1 right, u2 one deletion
    assert json.loads(curve.read_text())["noise"] == ["-pau-", "[*]"]


def test_compare_filters_refs_and_both_systems(tmp_path, capsys):
    ref = write_text(tmp_path / "ref", "u1 a b -pau-\nu2 c [noise]\n")
    a = write_text(tmp_path / "a", "u1 a b\nu2 c\n")
    b = write_text(tmp_path / "b", "u1 a [laughter] b\nu2 x\n")
    rc = main(["compare", "--ref", str(ref), str(a), str(b), "--noise", "[*]", "--json",
               "--n-boot", "10"])
    res = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert (res["a"]["wer"], res["a"]["words"]) == (0.0, 3)
    assert res["b"]["wer"] == pytest.approx(100 / 3) and res["b"]["sub"] == 1
    assert res["noise"] == ["-pau-", "[*]"]


def test_report_states_the_filter_and_flags_a_mix():
    def row(name, noise):
        return {"system": name, "models": [], "params": None, "size_mb": None, "ppl": None,
                "curve": None, "weights": None, "dev_hyps_per_s": None,
                "dev": {"wer": 1.0, "ser": 1.0, "oracle_wer": 1.0, "noise": noise}}
    from asr_kd.report import _noise_filters
    rows = [row("first_pass", ["-pau-", "[*]"]), row("student", ["-pau-", "[*]"])]
    md = markdown({"sets": ["dev"], "comparisons": [], "systems": rows,
                   "noise": _noise_filters(rows, ["dev"])})
    assert "Scoring filter (words removed from hypotheses and references before WER, SER " \
           "and oracle): `-pau-` `[*]`\n" in md
    rows[1]["dev"]["noise"] = ["-pau-"]
    md = markdown({"sets": ["dev"], "comparisons": [], "systems": rows,
                   "noise": _noise_filters(rows, ["dev"])})
    assert "differs between results" in md
