"""``report.html``: the report as one self-contained page, with an utterance browser.

Written beside ``report.md`` by :func:`asr_kd.report.write_report`.  One file, no
server and no network: CSS and JavaScript inline, the PNG plots as ``data:`` URIs,
the utterance data as JSON in a ``<script type="application/json">`` element.

Contents: the Markdown report converted (headings, paragraphs, lists, tables,
``code``, **bold**, links), the plots, and the utterance browser: per set, every
utterance with its reference and each system's chosen hypothesis (first pass
included) coloured by edit (substitution, insertion, deletion), read from
``exp/score/<system>/details/<set>/details.json`` (``asr-kd score --details``).
Controls: the set; "only where B differs from A" (default A = teacher, B =
student); "only utterances with errors"; sort by id, by a system's errors, or
by errors(B) - errors(A).  The state can be given in the URL fragment, e.g.
``report.html#set=eval&differ=teacher,student&sort=errors:student``.

:func:`details_markdown` gives the Markdown section that links the details files
(``score --details``, ``compare --details``) and shows the leakage check
(``exp/overlap.json``, ``asr-kd overlap``) and the top confusion pairs.
"""
from __future__ import annotations

import base64
import html
import json
import os
import re

from .fileio import atomic_write, read_json


def _details_path(exp: str, system: str, st: str) -> str:
    return os.path.join(exp, "score", system, "details", st, "details.json")


def load_browser_data(exp: str, systems: list[str], sets: list[str]) -> dict:
    """``{set: {"utts", "ref", "systems": {name: {"hyp", "ops", "errors"}}}}`` from the
    systems' ``details.json``; systems without one are left out, sets without any too.
    A present but unreadable file is an InputError naming it."""
    out = {}
    for st in sets:
        cols, utts, refs = {}, None, None
        for name in systems:
            path = _details_path(exp, name, st)
            if not os.path.isfile(path):
                continue
            rows = read_json(path, "details.json").get("utterances") or []
            if utts is None:
                utts, refs = [r["utt"] for r in rows], [r["ref"] for r in rows]
            elif [r["utt"] for r in rows] != utts:
                continue  # scored on other utterances: not comparable row by row
            cols[name] = {"hyp": [r["hyp"] for r in rows], "ops": [r["ops"] for r in rows],
                          "errors": [r["errors"] for r in rows]}
        if cols:
            out[st] = {"utts": utts, "ref": refs, "systems": cols}
    return out


def _rel(path: str, out_dir: str) -> str:
    return os.path.relpath(path, out_dir).replace(os.sep, "/")


def details_markdown(exp: str, out_dir: str, systems: list[str], sets: list[str]) -> str:
    """The report's details section: links to the details files, the top confusion pairs,
    the win/loss/tie counts of each comparison and the leakage check.  Empty when the
    experiment folder has none of them."""
    out = []
    links = []
    for st in sets:
        have = [(s, _details_path(exp, s, st)) for s in systems]
        have = [(s, p) for s, p in have if os.path.isfile(p)]
        if have:
            links.append(f"- {st}: " + ", ".join(
                f"[{s}]({_rel(os.path.join(os.path.dirname(p), 'summary.txt'), out_dir)})"
                for s, p in have))
    if links:
        out += ["## Where the errors are", "",
                "Per system (`asr-kd score --details`): alignments (`alignments.pra`, "
                "`per_utt.txt`), `ops.txt`, and in `summary.txt` the top confusions, inserted "
                "and deleted words and WER per speaker. Browse the utterances in `report.html`.",
                ""] + links + [""]
        for st in sets[-1:]:   # the reported set: the top confusion pairs side by side
            rows = []
            for s in systems:
                p = _details_path(exp, s, st)
                if os.path.isfile(p):
                    d = read_json(p, "details.json")
                    conf = ", ".join(f"{r} -> {h} ({n})" for r, h, n in d.get("confusions", [])[:5])
                    rows.append(f"| {s} | {d.get('sub')} | {d.get('del')} | {d.get('ins')} | "
                                f"{conf or '-'} |")
            out += [f"Top confusion pairs ({st}):", "",
                    "| system | sub | del | ins | top confusions (reference -> hypothesis) |",
                    "|---|---|---|---|---|"] + rows + [""]
    cdir = os.path.join(exp, "compare")
    diffs = []
    if os.path.isdir(cdir):
        for name in sorted(os.listdir(cdir)):
            p = os.path.join(cdir, name, "differences.json")
            if os.path.isfile(p):
                d = read_json(p, "differences.json")
                st, pair = name.split(".", 1)
                a, _, b = pair.partition("_vs_")
                diffs.append(f"| {st} | [{a} vs {b}]({_rel(p[:-5] + '.txt', out_dir)}) | "
                             f"{d.get('b_better')} | {d.get('a_better')} | {d.get('ties')} | "
                             f"{d.get('differ')} |")
    if diffs:
        out += ["## Where systems differ", "",
                "`asr-kd compare --details`: utterances where B makes fewer errors than A, more, "
                "as many (the sign test's inputs), and where the two choose differently.", "",
                "| set | A vs B | B better | A better | ties | choices differ |",
                "|---|---|---|---|---|---|"] + diffs + [""]
    ov_path = os.path.join(exp, "overlap.json")
    if os.path.isfile(ov_path):
        ov = read_json(ov_path, "overlap.json")
        n = ov.get("n", 8)
        lim = ov.get("limits") or {}
        out += ["## Leakage check (LM text vs references)", "",
                f"`asr-kd overlap`: reference sentences found whole in the LM text, and the "
                f"share of reference {n}-grams found there, after the LM-input filter "
                f"(`{ov.get('text_filter') or 'none'}`). Limits: sentences "
                f"{lim.get('sentences') if lim.get('sentences') is not None else 'none'} %, "
                f"{n}-grams {lim.get('ngrams') if lim.get('ngrams') is not None else 'none'} %.",
                "", f"| references | sentences in LM text | % | {n}-grams in LM text | % |",
                "|---|---|---|---|---|"]
        for s in ov.get("sets", []):
            out.append(f"| {os.path.basename(str(s.get('ref')))} | {s.get('exact')} of "
                       f"{s.get('refs')} | {s.get('exact_share', 0):.2f} | "
                       f"{s.get('ngrams_found')} of {s.get('ngrams')} | "
                       f"{s.get('ngram_share', 0):.2f} |")
        out.append("")
    return "\n".join(out)


def runs_markdown(runs: list[str], out_dir: str) -> str:
    """Links to each run's own ``report.html`` (their utterance browsers), for a report
    that combines several runs; empty for one run."""
    have = [d for d in runs if os.path.isfile(os.path.join(d, "report.html"))]
    if not have:
        return ""
    return "\n".join(["## Runs", "", "Each run's report, with its utterance browser: " + ", ".join(
        f"[run {k}]({_rel(os.path.join(d, 'report.html'), out_dir)})"
        for k, d in enumerate(runs, 1) if d in have), ""])


_INLINE = re.compile(r"`([^`]*)`|\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)")


def _inline(text: str) -> str:
    out, pos = [], 0
    for m in _INLINE.finditer(text):
        out.append(html.escape(text[pos:m.start()]))
        if m.group(1) is not None:
            out.append(f"<code>{html.escape(m.group(1))}</code>")
        elif m.group(2) is not None:
            out.append(f"<b>{html.escape(m.group(2))}</b>")
        else:
            out.append(f'<a href="{html.escape(m.group(4))}">{html.escape(m.group(3))}</a>')
        pos = m.end()
    out.append(html.escape(text[pos:]))
    return "".join(out)


def markdown_to_html(md: str) -> str:
    """The subset of Markdown the report writes: ``#`` headings, paragraphs, ``-`` lists,
    pipe tables, inline code, bold and links.  Everything else is escaped text."""
    out, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if not line.strip():
            i += 1
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            out.append(f"<h{min(level, 6)}>{_inline(line[level:].strip())}</h{min(level, 6)}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows[1:] if not all(set(c) <= set("-:") for c in r)]
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
                       + "</tr></thead><tbody>" + "".join(
                           "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>"
                           for r in body) + "</tbody></table>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].startswith(("#", "|", "- ")):
                para.append(lines[i])
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


def _json_script(obj) -> str:
    # no "<" at all inside the script element ("</script>" would end it, "<!--" could
    # open a comment state); JSON's \u003c reads back as "<"
    return json.dumps(obj).replace("<", "\\u003c")


_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ccc;padding:2px 6px;
text-align:left;vertical-align:top}th{background:#f2f2f2}code{background:#f4f4f4;padding:0 2px}
img{max-width:48%;margin:4px;border:1px solid #ddd}
#controls{position:sticky;top:0;background:#fff;padding:6px 0;border-bottom:1px solid #ccc}
#controls label{margin-right:1em}
#utts td.txt{font-family:ui-monospace,monospace;font-size:13px}
.S{background:#ffd9a8}.S .r{color:#a33;text-decoration:line-through;font-size:11px;margin-right:2px}
.I{background:#c8f0c8}.D{background:#ffc4c4;text-decoration:line-through}
.n{color:#666;font-size:12px}.ok{color:#080}
"""

_JS = r"""
(function(){
  var data = JSON.parse(document.getElementById('utt-data').textContent);
  var sets = Object.keys(data);
  var el = function(id){ return document.getElementById(id); };
  if (!sets.length) { el('browser').textContent = 'No per-utterance details (asr-kd score --details) in this experiment.'; return; }
  var params = {};
  location.hash.replace(/^#/, '').split('&').forEach(function(kv){
    var i = kv.indexOf('='); if (i > 0) params[decodeURIComponent(kv.slice(0, i))] = decodeURIComponent(kv.slice(i + 1));
  });
  function opt(sel, values, chosen){
    sel.innerHTML = '';
    values.forEach(function(v){ var o = document.createElement('option'); o.value = v; o.textContent = v;
      if (v === chosen) o.selected = true; sel.appendChild(o); });
  }
  function esc(s){ return s.replace(/[&<>"]/g, function(c){ return {'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]; }); }
  function render(ref, hyp, ops){
    var r = ref ? ref.split(' ') : [], h = hyp ? hyp.split(' ') : [], i = 0, j = 0, out = [];
    for (var k = 0; k < ops.length; k++) {
      var op = ops[k];
      if (op === 'C') { out.push(esc(h[j])); i++; j++; }
      else if (op === 'S') { out.push('<span class="S" title="reference: ' + esc(r[i]) + '"><span class="r">' + esc(r[i]) + '</span>' + esc(h[j]) + '</span>'); i++; j++; }
      else if (op === 'D') { out.push('<span class="D" title="deleted">' + esc(r[i]) + '</span>'); i++; }
      else { out.push('<span class="I" title="inserted">' + esc(h[j]) + '</span>'); j++; }
    }
    return out.join(' ');
  }
  var st = params.set && data[params.set] ? params.set : sets[sets.length - 1];
  opt(el('set'), sets, st);
  function setup(){
    var names = Object.keys(data[st].systems);
    var diff = (params.differ || '').split(',');
    var a = names.indexOf(diff[0]) >= 0 ? diff[0] : (names.indexOf('teacher') >= 0 ? 'teacher' : names[0]);
    var b = names.indexOf(diff[1]) >= 0 ? diff[1] : (names.indexOf('student') >= 0 ? 'student' : names[names.length - 1]);
    opt(el('sys-a'), names, a); opt(el('sys-b'), names, b);
    el('differ').checked = !!params.differ;
    el('errs-only').checked = params.errors === '1';
    var sorts = ['id'].concat(names.map(function(n){ return 'errors:' + n; }), ['difference']);
    opt(el('sort'), sorts, sorts.indexOf(params.sort) >= 0 ? params.sort : 'id');
  }
  function draw(){
    var d = data[st], names = Object.keys(d.systems), a = el('sys-a').value, b = el('sys-b').value;
    var idx = d.utts.map(function(_, i){ return i; });
    if (el('differ').checked) idx = idx.filter(function(i){ return d.systems[a].hyp[i] !== d.systems[b].hyp[i]; });
    if (el('errs-only').checked) idx = idx.filter(function(i){ return names.some(function(n){ return d.systems[n].errors[i] > 0; }); });
    var s = el('sort').value;
    if (s.indexOf('errors:') === 0) { var e = d.systems[s.slice(7)].errors; idx.sort(function(x, y){ return e[y] - e[x] || x - y; }); }
    else if (s === 'difference') { var ea = d.systems[a].errors, eb = d.systems[b].errors;
      idx.sort(function(x, y){ return Math.abs(eb[y] - ea[y]) - Math.abs(eb[x] - ea[x]) || (eb[x] - ea[x]) - (eb[y] - ea[y]) || x - y; }); }
    var head = '<tr><th>utterance</th><th>system</th><th>errors</th><th>words (reference, then each system with its edits)</th></tr>';
    var rows = [];
    idx.forEach(function(i){
      var span = names.length + 1;
      rows.push('<tr class="utt" data-utt="' + esc(d.utts[i]) + '"><td rowspan="' + span + '">' + esc(d.utts[i]) + '</td><td>reference</td><td></td><td class="txt">' + esc(d.ref[i]) + '</td></tr>');
      names.forEach(function(n){
        var c = d.systems[n], e = c.errors[i];
        rows.push('<tr class="hyp" data-system="' + esc(n) + '"><td>' + esc(n) + '</td><td class="' + (e ? 'n' : 'ok') + '">' + e + '</td><td class="txt">' + render(d.ref[i], c.hyp[i], c.ops[i]) + '</td></tr>');
      });
    });
    el('utts').innerHTML = head + rows.join('');
    el('shown').textContent = idx.length;
    el('total').textContent = d.utts.length;
  }
  el('set').addEventListener('change', function(){ st = el('set').value; setup(); draw(); });
  ['sys-a', 'sys-b', 'differ', 'errs-only', 'sort'].forEach(function(id){ el(id).addEventListener('change', draw); });
  setup(); draw();
})();
"""


def html_page(md: str, out_dir: str, browser: dict, title: str = "Rescoring report") -> str:
    """The whole page: converted Markdown, the PNGs of ``out_dir`` inline, the browser."""
    imgs = []
    for name in sorted(os.listdir(out_dir)) if os.path.isdir(out_dir) else []:
        if name.endswith(".png"):
            with open(os.path.join(out_dir, name), "rb") as f:
                b64 = base64.b64encode(f.read()).decode("ascii")
            imgs.append(f'<img alt="{html.escape(name)}" title="{html.escape(name)}" '
                        f'src="data:image/png;base64,{b64}">')
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>", f"<style>{_CSS}</style></head><body>",
        markdown_to_html(md),
        "<h2>Plots</h2>" if imgs else "", "<div>" + "".join(imgs) + "</div>",
        '<h2 id="browser-title">Utterances</h2><div id="browser">',
        '<div id="controls"><label>set <select id="set"></select></label>'
        '<label><input type="checkbox" id="differ"> only where '
        '<select id="sys-b"></select> differs from <select id="sys-a"></select></label>'
        '<label><input type="checkbox" id="errs-only"> only with errors</label>'
        '<label>sort <select id="sort"></select></label>'
        '<span><span id="shown">0</span> of <span id="total">0</span> utterances; '
        '<span class="S">substitution</span> <span class="I">insertion</span> '
        '<span class="D">deletion</span></span></div>',
        '<table id="utts"></table></div>',
        f'<script type="application/json" id="utt-data">{_json_script(browser)}</script>',
        f"<script>{_JS}</script>", "</body></html>", ""])


def write_html(out_dir: str, md: str, exp: str | None, systems: list[str], sets: list[str]
               ) -> str:
    """Write ``out_dir/report.html``; returns its path.  ``exp``: where the details are
    (None: no utterance browser, e.g. a report combining several runs)."""
    browser = load_browser_data(exp, systems, sets) if exp else {}
    path = os.path.join(out_dir, "report.html")
    with atomic_write(path) as f:
        f.write(html_page(md, out_dir, browser))
    return path
