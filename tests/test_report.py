"""The report's Markdown tables (asr_kd.report.markdown)."""
from asr_kd.report import markdown


def _row(name, wer, params=None):
    return {"system": name, "models": [], "params": params, "size_mb": None, "ppl": None,
            "curve": None, "weights": None, "dev": {"wer": wer, "ser": 50.0, "oracle_wer": 5.0},
            "dev_hyps_per_s": None}


def test_relative_wer_column_and_teacher_share():
    res = {"sets": ["dev"], "comparisons": [],
           "systems": [_row("first_pass", 10.0), _row("teacher", 9.0, 1000),
                       _row("student", 9.5, 185)]}
    md = markdown(res)
    lines = {l.split("|")[1].strip(): [c.strip() for c in l.split("|")[1:-1]]
             for l in md.splitlines() if l.startswith("| ") and "system" not in l}
    assert lines["first_pass"][1:3] == ["10.00", "+0.0"]
    assert lines["teacher"][1:3] == ["9.00", "-10.0"] and lines["teacher"][6] == "100.0"
    assert lines["student"][1:3] == ["9.50", "-5.0"] and lines["student"][6] == "18.5"


def test_relative_column_without_first_pass_is_a_dash():
    res = {"sets": ["dev"], "comparisons": [], "systems": [_row("student", 9.5, 10)]}
    row = [l for l in markdown(res).splitlines() if l.startswith("| student")][0]
    assert row.split("|")[3].strip() == "-"


# -- inputs: corrupt files are refused, missing ones named (asr_kd.report docstring) --

import json  # noqa: E402

import pytest  # noqa: E402

from asr_kd.errors import InputError  # noqa: E402
from asr_kd.report import System, collect, load_results  # noqa: E402
from asr_kd.results import RunLayout  # noqa: E402


def _exp(tmp_path):
    """An experiment folder with everything a first pass and one model system leave."""
    exp, lm = tmp_path / "exp", tmp_path / "lm"
    lm.mkdir()
    (lm / "config.json").write_text(json.dumps({"num_params": 100, "size_mb": 0.1, "seed": 1}))
    (exp / "ppl").mkdir(parents=True)
    (exp / "ppl" / "student.json").write_text('{"ppl": 80.5}')
    (exp / "rescore").mkdir()
    (exp / "rescore" / "dev.student.stats.json").write_text('{"hyps_per_s": 900}')
    for s in ("first_pass", "student"):
        (exp / "score" / s).mkdir(parents=True)
        (exp / "score" / s / "dev.json").write_text('{"wer": 9.5, "ser": 40.0, "oracle_wer": 3.0}')
        (exp / "score" / s / "weights.json").write_text('{"am": 1.0}')
    return exp, [System("first_pass"), System("student", [str(lm)])]


def test_complete_run_reports_without_a_missing_section(tmp_path):
    exp, systems = _exp(tmp_path)
    res = collect(RunLayout(str(exp)), systems, ["dev"])
    assert "missing" not in res                  # first pass: no ppl/stats/config by design
    row = [l for l in markdown(res).splitlines() if l.startswith("| student")][0]
    assert "80.5" in row and "900" in row and "Missing inputs" not in markdown(res)


@pytest.mark.parametrize("name", ["ppl/student.json", "rescore/dev.student.stats.json",
                                  "score/student/dev.json", "score/first_pass/weights.json"])
def test_truncated_input_is_refused_naming_it(tmp_path, name):
    exp, systems = _exp(tmp_path)
    path = exp / name
    path.write_text(path.read_text()[:-3])
    with pytest.raises(InputError) as e:
        collect(RunLayout(str(exp)), systems, ["dev"])
    assert str(e.value).startswith(f"{path}: corrupt ") and "\n" not in str(e.value)


def test_truncated_model_config_and_compare_are_refused(tmp_path):
    exp, systems = _exp(tmp_path)
    (exp / "compare").mkdir()
    (exp / "compare" / "dev.first_pass_vs_student.json").write_text('{"a": {"wer": 9')
    with pytest.raises(InputError, match="first_pass_vs_student.json: corrupt"):
        collect(RunLayout(str(exp)), systems, ["dev"])
    (exp / "compare" / "dev.first_pass_vs_student.json").unlink()
    cfg = tmp_path / "lm" / "config.json"
    cfg.write_text('{"num_params": 1')
    with pytest.raises(InputError, match="config.json: corrupt"):
        collect(RunLayout(str(exp)), systems, ["dev"])


def test_missing_inputs_are_named_in_the_report(tmp_path):
    exp, systems = _exp(tmp_path)
    (exp / "ppl" / "student.json").unlink()
    (exp / "score" / "student" / "dev.json").unlink()
    res = collect(RunLayout(str(exp)), systems, ["dev"])
    assert res["missing"] == [str(exp / "ppl" / "student.json"),
                              str(exp / "score" / "student" / "dev.json")]
    md = markdown(res)
    assert "## Missing inputs" in md and f"- `{exp / 'ppl' / 'student.json'}`" in md


def test_results_of_a_run_must_be_a_report(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        load_results(str(tmp_path))
    (tmp_path / "results.json").write_text('{"systems": [')
    with pytest.raises(InputError, match="not valid JSON"):
        load_results(str(tmp_path))
    (tmp_path / "results.json").write_text('[]')
    with pytest.raises(InputError, match="not a report's results.json"):
        load_results(str(tmp_path))


def test_report_command_refuses_a_truncated_input_in_one_line(tmp_path, capsys):
    from asr_kd.cli import main

    exp, systems = _exp(tmp_path)
    (exp / "score" / "student" / "dev.json").write_text('{"wer": 9.5, "ser"')
    rc = main(["report", "--exp", str(exp), "--out", str(tmp_path / "rep"), "--sets", "dev",
               "--system", "first_pass", "--system", f"student={systems[1].models[0]}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "dev.json: corrupt dev.json" in err
    assert not (tmp_path / "rep" / "report.md").exists()
