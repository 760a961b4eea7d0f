"""N-best rescoring speed: naive padded batches vs the shipped prefix trie.

On real ESPnet LibriSpeech 30-best lists (``../shared/data/librispeech-espnet-nbest/
dev_clean`` relative to the repository root), three ways to get the same
``log P(w1..wn </s> | <s>)`` for every hypothesis:

- ``naive``:  every hypothesis its own row, padded batches of whole sentences
  (sorted by length, at most ``--batch-tokens`` padded tokens per batch);
- ``padded``: ``rescore_nbest(method="padded")``: identical token sequences once,
  then padded batches per group of utterances;
- ``trie``:   ``rescore_nbest(method="trie")`` (shipped default): identical
  sequences once, shared prefixes once.

The methods alternate within each repeat (order reversed on odd repeats) and
the median time of ``--repeats`` runs is reported, with hypotheses/s, LM token
(output-layer row) evaluations and the largest absolute score difference from
``naive``.  Tokenisation is timed for all three.

    python benchmarks/bench_rescore.py                     # first 300 utterances, random 2x200 LM
    python benchmarks/bench_rescore.py --utts 100 --repeats 1
    python benchmarks/bench_rescore.py --model exp/libri/lm --utts 2703

Without ``--model`` the LM is a randomly initialised 2x200 word LSTM over the
selected lists' own vocabulary (timing does not depend on the weights).
Writes benchmarks/out/bench_rescore.csv and prints a table.
"""
from __future__ import annotations

import argparse
import csv
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_NBEST = os.path.join(ROOT, "..", "shared", "data", "librispeech-espnet-nbest",
                             "dev_clean")
OUT = os.path.join(ROOT, "benchmarks", "out", "bench_rescore.csv")
METHODS = ("naive", "padded", "trie")


def run_naive(nbest, model, tok, batch_tokens: int, device: str):
    """Every hypothesis scored as its own padded row; returns (scores, token evals)."""
    from asr_kd.rescore import score_padded

    seqs = [tok.encode(h.text) for u in nbest for h in u.hyps]
    return score_padded(model, seqs, tok.bos, tok.eos, device, batch_tokens)


def run_shipped(nbest, model, tok, method: str, batch_tokens: int, device: str):
    from asr_kd.rescore import rescore_nbest

    _, stats = rescore_nbest(nbest, model, tok, "bench", method=method,
                             batch_tokens=batch_tokens, device=device)
    return [h.scores["lm:bench"] for u in nbest for h in u.hyps], stats.token_evals


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nbest", default=DEFAULT_NBEST, help="N-best set (default: dev_clean 30-best)")
    ap.add_argument("--utts", type=int, default=300, help="first N utterances (default 300)")
    ap.add_argument("--model", help="model folder (default: random 2x200 LM over the lists' words)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-tokens", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT)
    args = ap.parse_args(argv)

    if not os.path.isdir(args.nbest):
        print(f"bench_rescore: skipped: N-best folder {os.path.normpath(args.nbest)} not found "
              "(the real LibriSpeech lists live in ../shared/data; give --nbest)")
        return 0

    import torch
    sys.path.insert(0, ROOT)
    from asr_kd.models import LMConfig, LstmLM
    from asr_kd.modeldir import load_models
    from asr_kd.nbest import NBest, read_nbest
    from asr_kd.vocab import WordVocab

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    full = read_nbest(args.nbest)
    nbest = NBest(full.utts[: args.utts])
    texts = [h.text for u in nbest for h in u.hyps]
    if args.model:
        model, tok = load_models([args.model], args.device)
        model_desc = args.model
    else:
        tok = WordVocab.build(texts)
        model = LstmLM(LMConfig(vocab_size=tok.size, embed_dim=200, hidden_dim=200,
                                num_layers=2)).eval()
        model_desc = f"random 2x200 LSTM, V={tok.size}"
    model.to(args.device).eval()
    n_hyps = len(texts)
    n_words = sum(len(t.split()) for t in texts)
    print(f"{len(nbest)} utterances, {n_hyps} hypotheses, {n_words} words "
          f"(+{n_hyps} </s>); model: {model_desc}; {args.threads} thread(s), {args.device}")

    times = {m: [] for m in METHODS}
    scores, evals = {}, {}
    for r in range(args.repeats):
        order = METHODS if r % 2 == 0 else tuple(reversed(METHODS))
        for m in order:
            t0 = time.perf_counter()
            if m == "naive":
                sc, ev = run_naive(nbest, model, tok, args.batch_tokens, args.device)
            else:
                sc, ev = run_shipped(nbest, model, tok, m, args.batch_tokens, args.device)
            times[m].append(time.perf_counter() - t0)
            scores[m], evals[m] = sc, ev
            print(f"  repeat {r + 1}: {m:6s} {times[m][-1]:7.2f} s", file=sys.stderr)

    rows = []
    base = statistics.median(times["naive"])
    for m in METHODS:
        t = statistics.median(times[m])
        diff = max((abs(a - b) for a, b in zip(scores[m], scores["naive"])), default=0.0)
        rows.append({
            "method": m, "utts": len(nbest), "hyps": n_hyps, "median_s": round(t, 3),
            "hyps_per_s": round(n_hyps / t, 1), "speedup": round(base / t, 2),
            "token_evals": evals[m], "evals_vs_naive": round(evals[m] / evals["naive"], 3),
            "max_abs_diff": f"{diff:.2e}", "repeats": args.repeats, "threads": args.threads,
            "model": model_desc,
        })
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)

    print(f"\n| method | median s | hyps/s | speed vs naive | LM token evals | evals vs naive "
          f"| max abs diff vs naive |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['median_s']:.2f} | {r['hyps_per_s']:.0f} | "
              f"{r['speedup']:.2f}x | {r['token_evals']} | {r['evals_vs_naive']:.3f} | "
              f"{r['max_abs_diff']} |")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
