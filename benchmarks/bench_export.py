"""Exported models side by side: fp32 PyTorch, ONNX fp32, ONNX int8, torch.ao int8.

For every ``--model NAME=DIR`` each variant is built in this run (``asr-kd
export``'s code, self-check included; torch.ao dynamic int8 of LSTM + Linear in
memory) and measured on the same lists and text:

- ``MB``: size on disk (``model.safetensors``; ``model.onnx``; for torch.ao int8
  the ``torch.save`` size of its quantised state dict, which asr-kd does not
  write: it is measured here only);
- speed: ``rescore_nbest`` (prefix trie, the shipped path) on the first
  ``--speed-utts`` utterances of the eval list, median of ``--repeats`` runs,
  variants interleaved (order reversed on odd repeats): hypotheses/s and
  hypothesis tokens/s (words + ``</s>``), and the ratio to fp32 PyTorch;
- ``ppl``: sentence-mode perplexity of ``--text`` (what rescoring sees);
- WER: weights (first-pass ``--scores`` + ``lm:NAME`` + word insertion penalty)
  tuned on the dev list with the fp32 PyTorch model's scores, then applied
  unchanged to every variant's scores on dev and eval: the change a deployment
  that tunes once and ships the int8 model would see.  The first pass (weights
  ``--scores`` tuned alone) is listed as a reference row.

    # mini task (after recipes/wsj/run.sh; after run_seeds.sh, exp/seed1/...)
    OMP_NUM_THREADS=1 taskset -c 1 python benchmarks/bench_export.py --tag mini \\
        --model teacher=recipes/wsj/exp/teacher1 --model student=recipes/wsj/exp/student \\
        --dev recipes/wsj/data/dev.nbest.jsonl.gz --eval recipes/wsj/data/eval.nbest.jsonl.gz \\
        --text recipes/wsj/data/lm/valid.txt --scores am,lm0

Writes benchmarks/results/bench_export_<tag>.csv and prints a Markdown table.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VARIANTS = ("torch fp32", "onnx fp32", "onnx int8", "torch.ao int8")


def build_variants(name: str, model_dir: str, work: str):
    """{variant: (model, MB on disk)} for one model folder."""
    import torch

    from asr_kd.export import export_model, load_exported, quantize_torch
    from asr_kd.modeldir import load_model

    model, tok, _ = load_model(model_dir, "cpu")
    out = {"torch fp32": (model, os.path.getsize(os.path.join(model_dir, "model.safetensors")))}
    for fmt, label in (("onnx", "onnx fp32"), ("int8", "onnx int8")):
        d = os.path.join(work, f"{name}.{fmt}")
        t0 = time.perf_counter()
        cfg = export_model(model_dir, fmt, d)
        print(f"  exported {name} as {fmt} in {time.perf_counter() - t0:.1f} s; check "
              f"{cfg['check']['diff']}", file=sys.stderr)
        out[label] = (load_exported(d)[0], os.path.getsize(os.path.join(d, "model.onnx")))
    q = quantize_torch(model)
    buf = io.BytesIO()
    torch.save(q.state_dict(), buf)
    out["torch.ao int8"] = (q, buf.getbuffer().nbytes)
    return out, tok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True, metavar="NAME=DIR")
    ap.add_argument("--dev", required=True, help="dev N-best (weights tuned here)")
    ap.add_argument("--eval", required=True, help="eval N-best (reported)")
    ap.add_argument("--format", default=None, help="N-best format (default: detected)")
    ap.add_argument("--text", required=True, help="text for the perplexity")
    ap.add_argument("--scores", required=True, help="first-pass score keys, e.g. am,lm0")
    ap.add_argument("--speed-utts", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tag", default="run")
    ap.add_argument("--work", default=os.path.join(ROOT, "benchmarks", "out", "export"))
    ap.add_argument("--out", default=None, help="CSV (default benchmarks/results/"
                    "bench_export_<tag>.csv)")
    args = ap.parse_args(argv)

    import torch
    sys.path.insert(0, ROOT)
    from asr_kd.corpus import read_sentences
    from asr_kd.nbest import NBest, read_nbest
    from asr_kd.perplexity import perplexity
    from asr_kd.rescore import rescore_nbest
    from asr_kd.scoring import corpus_wer, pick_best
    from asr_kd.tune import tune_weights

    threads = torch.get_num_threads()
    dev = read_nbest(args.dev, args.format)
    evl = read_nbest(args.eval, args.format)
    speed_set = NBest(evl.utts[: args.speed_utts])
    sents = read_sentences(args.text)
    keys = args.scores.split(",")
    os.makedirs(args.work, exist_ok=True)
    n_hyps = speed_set.num_hyps()
    n_tok = sum(len(h.text.split()) + 1 for u in speed_set for h in u.hyps)
    print(f"dev {len(dev)} utts, eval {len(evl)} utts ({n_hyps} hypotheses of the first "
          f"{len(speed_set)} timed), text {len(sents)} sentences; {threads} thread(s)",
          file=sys.stderr)

    fp = tune_weights(dev, keys, wip=True)
    rows = [{"model": "first pass", "variant": "-", "MB": "", "hyps_per_s": "",
             "tokens_per_s": "", "speed_vs_fp32": "", "ppl": "", "ppl_change_pct": "",
             "dev_wer": round(corpus_wer(dev, pick_best(dev, fp.weights)).wer, 3),
             "eval_wer": round(corpus_wer(evl, pick_best(evl, fp.weights)).wer, 3),
             "wer_change": "", "max_abs_lm_diff": ""}]
    for spec in args.model:
        name, _, model_dir = spec.partition("=")
        variants, tok = build_variants(name, model_dir, args.work)
        times = {v: [] for v in VARIANTS}
        for r in range(args.repeats):
            for v in (VARIANTS if r % 2 == 0 else tuple(reversed(VARIANTS))):
                t0 = time.perf_counter()
                rescore_nbest(speed_set, variants[v][0], tok, "speed")
                times[v].append(time.perf_counter() - t0)
                print(f"  {name} repeat {r + 1}: {v:14s} {times[v][-1]:7.2f} s", file=sys.stderr)
        key = f"lm:{name}"
        weights = None
        base = {}
        for v in VARIANTS:
            m = variants[v][0]
            t0 = time.perf_counter()
            res = {}
            for label, nb in (("dev", dev), ("eval", evl)):
                rescore_nbest(nb, m, tok, name)
                res[label] = [h.scores[key] for u in nb for h in u.hyps]
            if weights is None:  # fp32 PyTorch: tune once, on dev
                weights = tune_weights(dev, keys + [key], wip=True).weights
                print(f"  {name}: weights tuned on dev with fp32 PyTorch scores: {weights} "
                      f"(first pass alone: {fp.weights})", file=sys.stderr)
            ppl = perplexity(m, tok, sents, "sentence")["ppl"]
            wer = {label: corpus_wer(nb, pick_best(nb, weights)).wer
                   for label, nb in (("dev", dev), ("eval", evl))}
            if v == "torch fp32":
                base = {"t": statistics.median(times[v]), "ppl": ppl, "wer": wer, "lm": res}
            diff = max(abs(a - b) for label in res for a, b in zip(res[label], base["lm"][label]))
            t = statistics.median(times[v])
            rows.append({
                "model": name, "variant": v, "MB": round(variants[v][1] / 1e6, 3),
                "hyps_per_s": round(n_hyps / t, 1), "tokens_per_s": round(n_tok / t, 1),
                "speed_vs_fp32": round(base["t"] / t, 2), "ppl": round(ppl, 3),
                "ppl_change_pct": round(100 * (ppl / base["ppl"] - 1), 3),
                "dev_wer": round(wer["dev"], 3), "eval_wer": round(wer["eval"], 3),
                "wer_change": round(wer["eval"] - base["wer"]["eval"], 3),
                "max_abs_lm_diff": f"{diff:.2e}"})
            print(f"  {name} {v}: scored and measured in {time.perf_counter() - t0:.1f} s",
                  file=sys.stderr)

    out = args.out or os.path.join(ROOT, "benchmarks", "results", f"bench_export_{args.tag}.csv")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    print(f"\n{args.tag}: speed on the first {len(speed_set)} eval utterances ({n_hyps} "
          f"hypotheses), median of {args.repeats}, {threads} thread(s); WER with weights "
          f"tuned on dev with the fp32 PyTorch model\n")
    print("| model | variant | MB | hyps/s | tokens/s | speed vs fp32 | ppl | ppl change % "
          "| dev WER | eval WER | eval WER change | max abs lm diff |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(r[k]) for k in rows[0]) + " |")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
