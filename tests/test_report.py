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
