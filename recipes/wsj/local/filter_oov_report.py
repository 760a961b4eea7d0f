#!/usr/bin/env python3
"""OOV rates of an N-best file's text under a text-filter rules file, block by block.

    local/filter_oov_report.py NBEST.json RULES words.txt [--csv OUT.csv]

NBEST.json is a HyPoradise file (a list of {"id", "input": [hypotheses], "output": ref}).
For each setting -- no filter, all rules, and all rules but one block (each named block of
RULES in turn) -- the table gives the share of hypothesis tokens and of reference tokens not
in words.txt after that filter (the filter is what `asr-kd rescore --text-filter` applies to
hypotheses before LM scoring; the reference columns show the same filter on the references).
"worth" is what the block is worth: the hypothesis OOV rate without it minus with all rules,
in percentage points (positive: the block removes OOVs; blocks that only change the form
of in-vocabulary words, e.g. "percent" -> "N", are worth about 0 here).
"""
import argparse
import csv
import json
import sys
from collections import Counter

from asr_kd.errors import InputError
from asr_kd.textfilter import TextFilter, list_blocks


def load_hyporadise(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise InputError(f"cannot read HyPoradise JSON ({e})", path) from None
    if not isinstance(data, list):
        raise InputError("expected a JSON list of {\"input\": [...], \"output\": ...}", path)
    hyps, refs = Counter(), Counter()
    for i, utt in enumerate(data):
        if not isinstance(utt, dict) or not isinstance(utt.get("input"), list):
            raise InputError(f"item {i}: expected {{\"input\": [hypotheses], \"output\": ref}}",
                             path)
        hyps.update(str(h) for h in utt["input"])
        if utt.get("output") is not None:
            refs[str(utt["output"])] += 1
    return hyps, refs


def load_words(path):
    words = set()
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                words.add(line.split()[0])
    if not words:
        raise InputError("no words", path)
    return words


def oov(texts: Counter, filt, words):
    """(tokens, OOV tokens) over texts (a Counter of distinct strings, weighted by count)."""
    n = bad = 0
    for text, count in texts.items():
        toks = (filt(text) if filt else text).split()
        n += count * len(toks)
        bad += count * sum(t not in words for t in toks)
    return n, bad


def report(nbest, rules, words_txt):
    hyps, refs = load_hyporadise(nbest)
    words = load_words(words_txt)
    settings = [("no filter", None, None), ("all rules", TextFilter.from_file(rules), None)]
    for name, _, _ in list_blocks(rules):
        settings.append((f"all but {name}", TextFilter.from_file(rules, skip=[name]), name))
    rows = []
    for label, filt, block in settings:
        hn, hb = oov(hyps, filt, words)
        rn, rb = oov(refs, filt, words)
        rows.append({"setting": label, "block": block or "",
                     "hyp_tokens": hn, "hyp_oov": hb, "hyp_oov_pct": 100.0 * hb / max(hn, 1),
                     "ref_tokens": rn, "ref_oov": rb, "ref_oov_pct": 100.0 * rb / max(rn, 1)})
    all_rules = rows[1]
    for r in rows:
        r["worth_pp"] = (r["hyp_oov_pct"] - all_rules["hyp_oov_pct"]) if r["block"] else None
    return rows


def print_table(rows, title, out=sys.stdout):
    print(title, file=out)
    head = (f"{'setting':<24} {'hyp tokens':>10} {'hyp OOV':>8} {'hyp OOV %':>9} "
            f"{'ref tokens':>10} {'ref OOV':>8} {'ref OOV %':>9} {'worth (pp)':>10}")
    print(head, file=out)
    print("-" * len(head), file=out)
    for r in rows:
        worth = "" if r["worth_pp"] is None else f"{r['worth_pp']:+.2f}"
        print(f"{r['setting']:<24} {r['hyp_tokens']:>10} {r['hyp_oov']:>8} "
              f"{r['hyp_oov_pct']:>9.2f} {r['ref_tokens']:>10} {r['ref_oov']:>8} "
              f"{r['ref_oov_pct']:>9.2f} {worth:>10}", file=out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("nbest", help="HyPoradise JSON file")
    ap.add_argument("rules", help="text-filter rules file with named blocks")
    ap.add_argument("words", help="LM vocabulary, words.txt ('word id' per line)")
    ap.add_argument("--csv", help="also write the table as CSV")
    args = ap.parse_args(argv)
    try:
        rows = report(args.nbest, args.rules, args.words)
    except InputError as e:
        print(f"{ap.prog}: error: {e}", file=sys.stderr)
        return 2
    print_table(rows, f"{args.nbest}: OOV rates vs {args.words} under {args.rules}")
    if args.csv:
        cols = ["setting", "block", "hyp_tokens", "hyp_oov", "hyp_oov_pct",
                "ref_tokens", "ref_oov", "ref_oov_pct", "worth_pp"]
        with open(args.csv, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=cols)
            w.writeheader()
            for r in rows:
                w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else ("" if v is None else v))
                            for k, v in r.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
