"""report.html: self-contained, with the details and leakage sections, and an utterance
browser checked in a real headless Chromium (skipped where none is installed)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from asr_kd.cli import main

REFS = {"u1": "show me flights from boston", "u2": "list fares to denver",
        "u3": "flights on monday", "u4": "from denver to boston", "u5": "show me fares"}
CHOICE = {  # each system's chosen hypothesis per utterance
    "first_pass": {"u1": "show flights from boston", "u2": "list fares to denver please",
                   "u3": "flight on monday", "u4": "from denver to austin", "u5": "show me fares"},
    "teacher": {"u1": "show me flights from boston", "u2": "list fares to denver please",
                "u3": "flights on monday", "u4": "from denver to austin", "u5": "show me fares"},
    "student": {"u1": "show me flights from boston", "u2": "list fares denver",
                "u3": "flights on a monday", "u4": "from denver to boston", "u5": "show me fares"},
}


def make_exp(tmp_path, capsys, refs=REFS, choice=CHOICE):
    """exp/score/<system>/eval.json + details, compare details, overlap.json; the report."""
    exp = tmp_path / "exp"
    for name, hyps in choice.items():
        nb = tmp_path / f"{name}.jsonl"
        nb.write_text("".join(json.dumps({"utt": u, "ref": refs[u], "hyps": [
            {"text": hyps[u], "scores": {"am": 0.0}}]}) + "\n" for u in refs))
        d = exp / "score" / name
        d.mkdir(parents=True)
        (d / "weights.json").write_text('{"am": 1.0}')
        assert main(["score", "--nbest", str(nb), "--weight", "am=1", "--json", "--out-hyp",
                     str(d / "eval.hyp"), "--details", str(d / "details" / "eval")]) == 0
        (d / "eval.json").write_text(capsys.readouterr().out)
    ref = tmp_path / "eval.ref"
    ref.write_text("".join(f"{u} {t}\n" for u, t in refs.items()))
    (exp / "compare").mkdir()
    assert main(["compare", "--ref", str(ref), str(exp / "score" / "teacher" / "eval.hyp"),
                 str(exp / "score" / "student" / "eval.hyp"), "--json", "--details",
                 str(exp / "compare" / "eval.teacher_vs_student")]) == 0
    (exp / "compare" / "eval.teacher_vs_student.json").write_text(capsys.readouterr().out)
    (tmp_path / "lm.txt").write_text("show me fares\nsome other text here\n")
    assert main(["overlap", "--lm-text", str(tmp_path / "lm.txt"), "--ref", str(ref),
                 "--out", str(exp / "overlap.json")]) == 0
    capsys.readouterr()
    assert main(["report", "--exp", str(exp), "--out", str(exp / "report"), "--sets", "eval",
                 *[a for n in choice for a in ("--system", n)]]) == 0
    capsys.readouterr()
    return exp


def test_report_html_is_self_contained_and_links_details(tmp_path, capsys):
    exp = make_exp(tmp_path, capsys)
    page = (exp / "report" / "report.html").read_text()
    assert "<link" not in page and not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert page.count('src="data:image/png;base64,') == 3   # the three plots, inline
    data = json.loads(re.search(r'<script type="application/json" id="utt-data">(.*?)</script>',
                                page, re.S).group(1))
    assert list(data) == ["eval"] and list(data["eval"]["systems"]) == list(CHOICE)
    assert data["eval"]["systems"]["student"]["ops"][1] == "CCDC"  # "to" deleted
    md = (exp / "report" / "report.md").read_text()
    assert "[student](../score/student/details/eval/summary.txt)" in md
    assert "[teacher vs student](../compare/eval.teacher_vs_student/differences.txt)" in md
    # B = student better on u4, worse on u3; ties u1, u5 (same choice) and u2 (1 error each)
    assert "| eval | [teacher vs student](../compare/eval.teacher_vs_student/differences.txt) " \
        "| 1 | 1 | 3 | 3 |" in md
    assert "| eval.ref | 1 of 5 | 20.00 | 0 of 0 | 0.00 |" in md   # "show me fares"
    for link in re.findall(r"\]\(([^)]+)\)", md):
        assert (exp / "report" / link).resolve().is_file(), link
    assert "<h2>Where systems differ</h2>" in page and "<table>" in page


def test_report_html_escapes_words_that_look_like_markup(tmp_path, capsys):
    refs = {"u1": "a </script> b", "u2": "<!-- c"}
    choice = {"teacher": {"u1": "a </script> b", "u2": "<!-- d"},
              "student": {"u1": "a <b>x</b> b", "u2": "<!-- c"}}
    exp = make_exp(tmp_path, capsys, refs, choice)
    page = (exp / "report" / "report.html").read_text()
    raw = re.search(r'id="utt-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(raw)["eval"]["ref"] == ["a </script> b", "<!-- c"]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def run_browser(url: str, tmp_path) -> tuple[str, list[str]]:
    """(the DOM after the page's scripts ran, the console messages) from headless Chromium."""
    p = subprocess.run([_chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", f"--user-data-dir={tmp_path / 'chrome-profile'}",
                        "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000",
                        "--dump-dom", url], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    console = [line for line in p.stderr.splitlines() if ":CONSOLE" in line]
    return p.stdout, console


def _rows(dom: str) -> list[str]:
    table = re.search(r'<table id="utts">(.*?)</table>', dom, re.S).group(1)
    return re.findall(r'<tr class="utt" data-utt="([^"]+)"', table)


needs_chromium = pytest.mark.skipif(_chromium() is None, reason="no Chromium installed "
                                    "(apt-get install chromium)")


@pytest.mark.slow  # headless Chromium
@needs_chromium
def test_browser_loads_without_console_errors_and_filters(tmp_path, capsys):
    exp = make_exp(tmp_path, capsys)
    url = (exp / "report" / "report.html").as_uri()
    dom, console = run_browser(url, tmp_path)
    assert console == []
    assert _rows(dom) == list(REFS)                     # every utterance, in id order
    assert re.search(r'<span id="shown">5</span> of <span id="total">5</span>', dom)
    # the student's edits, coloured: u2 deletes "to", u3 inserts "a"
    assert '<span class="D" title="deleted">to</span>' in dom
    assert '<span class="I" title="inserted">a</span>' in dom
    assert '<span class="S" title="reference: boston"><span class="r">boston</span>austin</span>' \
        in dom
    table = re.search(r'<table id="utts">(.*?)</table>', dom, re.S).group(1)
    n_edit = len(re.findall(r'<span class="[SID]" title=', table))
    assert n_edit == sum(json.loads((exp / "score" / s / "eval.json").read_text())[k]
                         for s in CHOICE for k in ("sub", "del", "ins"))
    # filter: student differs from teacher
    differ = [u for u in REFS if CHOICE["teacher"][u] != CHOICE["student"][u]]
    dom, console = run_browser(url + "#differ=teacher,student", tmp_path)
    assert console == [] and _rows(dom) == differ == ["u2", "u3", "u4"]
    # sort by the first pass's errors, most first (ties in id order)
    dom, _ = run_browser(url + "#sort=errors:first_pass", tmp_path)
    det = json.loads((exp / "score" / "first_pass" / "details" / "eval" / "details.json")
                     .read_text())
    errs = {u["utt"]: u["errors"] for u in det["utterances"]}
    assert _rows(dom) == sorted(REFS, key=lambda u: (-errs[u], u))
    dom, _ = run_browser(url + "#errors=1&differ=teacher,student&sort=difference", tmp_path)
    # |errors(student) - errors(teacher)|, largest first, student better first: u4 -1, u3 +1, u2 0
    assert _rows(dom) == ["u4", "u3", "u2"]
    # the check can fail: a page whose script throws is caught
    bad = tmp_path / "bad.html"
    bad.write_text((exp / "report" / "report.html").read_text().replace(
        "setup(); draw();", "setup(); noSuchFunction(); draw();"))
    dom, console = run_browser(bad.as_uri(), tmp_path)
    assert any("noSuchFunction" in c for c in console) and _rows(dom) == []
