"""The report's size frontier section (asr_kd.frontier): maths, table, plots, inputs."""
import json

import pytest

from asr_kd.errors import InputError
from asr_kd.frontier import gain_kept, gap_closed, spread
from asr_kd.report import System, write_report
from asr_kd.results import RunLayout


def test_gain_kept_and_gap_closed():
    assert gain_kept(10.0, 8.0, 8.0) == 100.0          # all of the teacher's gain
    assert gain_kept(10.0, 8.0, 10.0) == 0.0           # none
    assert gain_kept(10.0, 8.0, 9.5) == pytest.approx(25.0)
    assert gain_kept(10.0, 8.0, 7.5) == pytest.approx(125.0)   # better than the teacher
    assert gain_kept(10.0, 8.0, 10.5) == pytest.approx(-25.0)  # worse than the first pass
    assert gain_kept(10.0, 10.0, 9.0) is None          # the teacher gained nothing
    assert gain_kept(10.0, 11.0, 9.0) is None          # ... or lost
    assert gain_kept(None, 8.0, 9.0) is None and gain_kept(10.0, 8.0, None) is None
    assert gap_closed(130.0, 110.0, 120.0) == pytest.approx(50.0)
    assert gap_closed(130.0, 110.0, 135.0) == pytest.approx(-25.0)
    assert gap_closed(110.0, 110.0, 100.0) is None and gap_closed(None, 1.0, 1.0) is None


def test_spread_over_runs():
    assert spread([3.0, 1.0, 2.0]) == {"mean": 2.0, "min": 1.0, "max": 3.0,
                                       "values": [3.0, 1.0, 2.0]}
    assert spread([1.0, None]) is None and spread([]) is None


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def _exp(tmp_path, runs=2):
    """A recipe run (first pass 10 % on dev, 20 % on eval; teacher 8 / 16, ppl 100,
    10,000 parameters) with a frontier of two sizes given large first."""
    exp, lm = tmp_path / "exp", tmp_path / "lm"
    _write(lm / "teacher" / "config.json", {"num_params": 10000, "size_mb": 0.04})
    _write(exp / "ppl" / "teacher.json", {"ppl": 100.0})
    for st in ("dev", "eval"):
        _write(exp / "rescore" / f"{st}.teacher.stats.json", {"hyps_per_s": 100})
    for s, wers in (("first_pass", (10.0, 20.0)), ("teacher", (8.0, 16.0))):
        for st, w in zip(("dev", "eval"), wers):
            _write(exp / "score" / s / f"{st}.json", {"wer": w, "ser": 50.0, "oracle_wer": 1.0})
        _write(exp / "score" / s / "weights.json", {"am": 1.0})
    f = exp / "frontier"
    _write(f / "sizes.json", {"sizes": [
        {"name": "1x64", "num_layers": 1, "hidden_dim": 64, "embed_dim": 64, "proj_dim": 0,
         "int8": False, "trust": ["none"]},
        {"name": "1x8", "num_layers": 1, "hidden_dim": 8, "embed_dim": 8, "proj_dim": 0,
         "int8": True, "trust": ["none", "margin"]}]})
    # per size: system -> (params, valid ppl per run, dev WER per run)
    data = {"1x64": {"baseline": (2000, [120.0, 122.0], [8.5, 8.7]),
                     "student": (2000, [110.0, 112.0], [8.1, 8.3])},
            "1x8": {"baseline": (500, [150.0, 154.0], [9.5, 9.9]),
                    "student": (500, [130.0, 134.0], [9.0, 9.2]),
                    "student_margin": (500, [131.0, 133.0], [8.9, 9.3]),
                    "student_int8": (500, [131.0, 135.0], [9.1, 9.3])}}
    for size, systems in data.items():
        for r in range(1, runs + 1):
            d = f / size / f"seed{r}"
            models = {}
            for s, (params, ppls, wers) in systems.items():
                m = lm / "frontier" / size / f"seed{r}" / s
                _write(m / "config.json", {"num_params": params, "size_mb": params * 4e-6})
                models[s] = str(m)
                _write(d / "ppl" / f"{s}.json", {"ppl": ppls[r - 1]})
                _write(d / "score" / s / "dev.json", {"wer": wers[r - 1]})
                _write(d / "score" / s / "eval.json", {"wer": 2 * wers[r - 1]})
            _write(d / "models.json", models)
        for s in systems:
            if s != "baseline":
                for st in ("dev", "eval"):
                    _write(f / size / "compare" / f"{st}.baseline_vs_{s}.json", {
                        "runs": runs, "bootstrap": {"diff": -0.4, "low": -0.9, "high": 0.1,
                                                    "p_b_better": 0.93},
                        "sign_test": {"p_value": 0.2}})
    return exp, [System("first_pass"), System("teacher", [str(lm / "teacher")])]


def _rows(md, heading):
    part = md.split(heading, 1)[1].split("\n### ", 1)[0].split("\n## ", 1)[0]
    return {l.split("|")[1].strip(): [c.strip() for c in l.split("|")[2:-1]]
            for l in part.splitlines() if l.startswith("| ") and not l.startswith("| size")}


def test_frontier_table_plots_and_results(tmp_path):
    exp, systems = _exp(tmp_path)
    out = tmp_path / "report"
    md = write_report(RunLayout(str(exp)), systems, ["dev", "eval"], str(out))
    assert "## Size frontier" in md and "Missing inputs" not in md
    rows = _rows(md, "### dev:")
    # sorted by parameters (1x8 first), one row per student; params, % of teacher,
    # baseline and student WER with their ranges, the pooled interval, P(better),
    # the gain kept (first 10, teacher 8: (10 - 9.7) / 2 = 15 %, range from the runs),
    # the perplexities and the gap closed ((152 - 132) / (152 - 100) = 38.5 %)
    assert list(rows) == ["1x8", "1x8 (student_margin)", "1x8 (student_int8)", "1x64"]
    assert rows["1x8"] == ["500", "5.00", "9.70 (9.50-9.90)", "9.10 (9.00-9.20)",
                           "-0.40 [-0.90, +0.10]", "0.930", "15.0 (5.0-25.0)",
                           "45.0 (40.0-50.0)", "152.0 (150.0-154.0)", "132.0 (130.0-134.0)",
                           "38.5"]
    assert rows["1x64"][:2] == ["2,000", "20.00"]
    assert rows["1x64"][6:8] == ["70.0 (65.0-75.0)", "90.0 (85.0-95.0)"]
    assert rows["1x64"][10] == "47.6"   # (121 - 111) / (121 - 100)
    eval_rows = _rows(md, "### eval:")  # eval WER = 2 x dev; first 20, teacher 16
    assert eval_rows["1x8"][2:4] == ["19.40 (19.00-19.80)", "18.20 (18.00-18.40)"]
    assert eval_rows["1x8"][6] == "15.0 (5.0-25.0)"
    res = json.loads((out / "results.json").read_text())
    fr = res["frontier"]
    assert fr["teacher"] == {"params": 10000, "ppl": 100.0, "dev": 8.0, "eval": 16.0}
    st = fr["sizes"][0]["systems"]["student"]
    assert st["dev"]["values"] == [9.0, 9.2] and st["gain_kept"]["dev"]["mean"] == \
        pytest.approx(45.0)
    for png in ("frontier_wer.png", "frontier_ppl.png"):
        assert (out / png).stat().st_size > 5000
    html = (out / "report.html").read_text()
    assert "Size frontier" in html and 'title="frontier_wer.png"' in html


def test_one_run_shows_values_without_ranges(tmp_path):
    exp, systems = _exp(tmp_path, runs=1)
    md = write_report(RunLayout(str(exp)), systems, ["dev"], str(tmp_path / "r"))
    assert _rows(md, "### dev:")["1x8"][2:4] == ["9.50", "9.00"]


def test_missing_results_are_dashes_and_listed(tmp_path):
    exp, systems = _exp(tmp_path)
    gone = exp / "frontier" / "1x64" / "seed2" / "score" / "student" / "dev.json"
    gone.unlink()
    no_test = exp / "frontier" / "1x8" / "compare" / "dev.baseline_vs_student.json"
    no_test.unlink()
    md = write_report(RunLayout(str(exp)), systems, ["dev"], str(tmp_path / "r"))
    # one run without the value: no mean over the other run alone
    rows = _rows(md, "### dev:")
    assert rows["1x64"][3] == "-" and rows["1x8"][4] == "- [-, -]"
    assert "## Missing inputs" in md and str(gone) in md and str(no_test) in md
    assert md.count(str(gone)) == 1


def test_no_frontier_no_section(tmp_path):
    exp, systems = _exp(tmp_path)
    (exp / "frontier" / "sizes.json").unlink()
    md = write_report(RunLayout(str(exp)), systems, ["dev"], str(tmp_path / "r"))
    assert "Size frontier" not in md and not (tmp_path / "r" / "frontier_wer.png").exists()
    assert "frontier" not in json.loads((tmp_path / "r" / "results.json").read_text())


@pytest.mark.parametrize("rel, text, msg", [
    ("frontier/sizes.json", '{"sizes": [{"nam', "corrupt sizes.json"),
    ("frontier/sizes.json", '{"sizes": [1]}', "not a frontier plan"),
    ("frontier/1x8/seed1/score/student/dev.json", '{"wer": 9', "corrupt dev.json"),
    ("frontier/1x8/compare/dev.baseline_vs_student.json", "{", "corrupt dev.baseline_vs"),
])
def test_truncated_inputs_are_refused_naming_the_file(tmp_path, rel, text, msg):
    exp, systems = _exp(tmp_path)
    (exp / rel).write_text(text)
    with pytest.raises(InputError, match=msg) as e:
        write_report(RunLayout(str(exp)), systems, ["dev"], str(tmp_path / "r"))
    assert str(exp / rel) in str(e.value)
    assert not (tmp_path / "r" / "report.md").exists()


def test_a_teacher_without_gain_gives_no_shares_and_says_so(tmp_path):
    exp, systems = _exp(tmp_path)
    (exp / "score" / "teacher" / "dev.json").write_text('{"wer": 10.5}')   # worse than first
    md = write_report(RunLayout(str(exp)), systems, ["dev"], str(tmp_path / "r"))
    assert "first pass WER 10.00 (the teacher gains nothing over the first pass here" in md
    row = _rows(md, "### dev:")["1x8"]
    assert row[6:8] == ["-", "-"] and row[3] == "9.10 (9.00-9.20)"


def test_an_int8_export_the_recipe_could_not_make_is_noted_not_missing(tmp_path):
    exp, systems = _exp(tmp_path)
    plan = json.loads((exp / "frontier" / "sizes.json").read_text())
    plan["sizes"][0]["int8"] = True     # asked for at 1x64; models.json has no student_int8
    (exp / "frontier" / "sizes.json").write_text(json.dumps(plan))
    md = write_report(RunLayout(str(exp)), systems, ["dev"], str(tmp_path / "r"))
    assert "No int8 student at 1x64: asked for, but `asr-kd export` refused it" in md
    assert "1x64 (student_int8)" not in md and "Missing inputs" not in md


def test_test_text_perplexities_get_their_table(tmp_path):
    """run.sh --lm-test: stream and sentence perplexity on the test text per system."""
    exp, systems = _exp(tmp_path)
    for mode, t in (("stream", 90.0), ("sentence", 95.0)):
        _write(exp / "ppl" / f"teacher.test.{mode}.json", {"ppl": t})
        for r, (b, st) in enumerate(((130.0, 110.0), (134.0, 112.0)), 1):
            for s, v in (("baseline", b), ("student", st), ("student_margin", st),
                         ("student_int8", st)):
                _write(exp / "frontier" / "1x8" / f"seed{r}" / "ppl" / f"{s}.test.{mode}.json",
                       {"ppl": v + (5 if mode == "sentence" else 0)})
    md = write_report(RunLayout(str(exp)), systems, ["dev"], str(tmp_path / "r"))
    assert "### Test perplexity: teacher 90.0 (stream mode), 95.0 (sentence mode)" in md
    rows = _rows(md, "### Test perplexity")
    # stream: baseline 132, student 111, teacher 90: (132 - 111) / (132 - 90) = 50 %
    assert rows["1x8"] == ["500", "132.0 (130.0-134.0)", "111.0 (110.0-112.0)", "50.0",
                           "137.0 (135.0-139.0)", "116.0 (115.0-117.0)", "50.0"]
    assert rows["1x64"][1:] == ["-"] * 6   # not measured there
    res = json.loads((tmp_path / "r" / "results.json").read_text())
    assert res["frontier"]["teacher"]["test_ppl_sentence"] == 95.0
