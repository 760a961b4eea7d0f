"""CPU speed of LSTM LM training and scoring (tokens per second).

Two PTB-style word LMs (Zaremba et al. "medium"/"large" shapes without their
dropout): 2 layers of 200 and of 650 units, tied embeddings, vocabulary about
10000.  Batches are stream batches of 20 rows x 35 steps, taken from PTB's
training text when ``../shared/data/ptb`` exists (vocabulary built from it:
10000 words incl. ``<unk>``, plus ``<s>``/``</s>``), else random tokens
with V = 10000.

* train: forward, summed cross-entropy, backward, clip, SGD step (what
  ``asr_kd.train`` does per batch), state carried across windows;
* score: ``token_logprobs`` under ``torch.no_grad()`` in eval mode, state carried.

A few warm-up steps are run and not timed; tokens/s counts the B x T predicted
tokens of the timed steps.

    python benchmarks/bench_lm.py               # 3 warm-up + 20 timed steps per case
    python benchmarks/bench_lm.py --quick       # 1 warm-up + 2 timed steps
    python benchmarks/bench_lm.py --sizes 200 --threads 1 --data none

Writes benchmarks/out/bench_lm.csv and prints a table.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "out", "bench_lm.csv")
PTB = os.path.join(ROOT, "..", "shared", "data", "ptb")


def load_batches(data: str, vocab: int, batch: int, bptt: int, n_windows: int, seed: int):
    """(StreamBatches, vocabulary size, description) with at least ``n_windows`` windows."""
    import torch

    from asr_kd.corpus import StreamBatches

    need = batch * bptt * n_windows + 1
    train_txt = os.path.join(data, "ptb.train.txt") if data != "none" else ""
    if train_txt and os.path.isfile(train_txt):
        from asr_kd.corpus import read_sentences
        from asr_kd.vocab import WordVocab

        sents = read_sentences(train_txt, "plain")
        tok = WordVocab.build(sents)
        ids, n = [], 0
        for s in sents:
            ids.append(tok.encode(s))
            n += len(ids[-1]) + 1
            if n >= need:
                break
        if n >= need:
            return StreamBatches(ids, tok.bos, tok.eos, batch, bptt), tok.size, "ptb"
    g = torch.Generator().manual_seed(seed)
    flat = torch.randint(3, vocab, (need,), generator=g).tolist()
    return StreamBatches([flat], 0, 1, batch, bptt), vocab, "random"


def bench_case(hidden: int, layers: int, batches, vocab: int, warmup: int, steps: int,
               score_steps: int, seed: int) -> dict:
    import torch

    from asr_kd.models import LMConfig, LstmLM
    from asr_kd.train import LMObjective, detach_state

    torch.manual_seed(seed)
    model = LstmLM(LMConfig(vocab_size=vocab, embed_dim=hidden, hidden_dim=hidden,
                            num_layers=layers, dropout=0.0))
    windows = list(batches.epoch(0))
    B, T = windows[0].inputs.shape

    # -- training ----------------------------------------------------------
    obj = LMObjective()
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    model.train()
    state = model.init_state(B)
    times = []
    for i in range(warmup + steps):
        b = windows[i % len(windows)]
        t0 = time.perf_counter()
        state = detach_state(state)
        loss_sum, _, state = obj.loss(model, b, state)
        opt.zero_grad(set_to_none=True)
        (loss_sum / b.num_tokens).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    train_s = sum(times)

    # -- scoring -----------------------------------------------------------
    model.eval()
    state = model.init_state(B)
    stimes = []
    with torch.no_grad():
        for i in range(warmup + score_steps):
            b = windows[i % len(windows)]
            t0 = time.perf_counter()
            lp, state = model.token_logprobs(b.inputs, b.targets, state)
            float(lp.sum())
            if i >= warmup:
                stimes.append(time.perf_counter() - t0)
    score_s = sum(stimes)
    return {
        "model": f"{layers}x{hidden}", "params_M": round(model.num_params() / 1e6, 2),
        "vocab": vocab, "batch": B, "bptt": T, "train_steps": steps,
        "train_ms_per_step": round(1000 * train_s / steps, 1),
        "train_tok_s": round(B * T * steps / train_s, 1),
        "score_steps": score_steps,
        "score_ms_per_step": round(1000 * score_s / score_steps, 1),
        "score_tok_s": round(B * T * score_steps / score_s, 1),
    }


def print_table(rows: list[dict]) -> None:
    cols = ["model", "params_M", "vocab", "batch", "bptt", "data", "threads",
            "train_ms_per_step", "train_tok_s", "score_ms_per_step", "score_tok_s"]
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.rjust(width[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).rjust(width[c]) for c in cols))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 warm-up + 2 timed steps (smoke test)")
    ap.add_argument("--sizes", default="200,650", help="hidden sizes, comma-separated")
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=10000, help="V for random tokens")
    ap.add_argument("--batch", type=int, default=20)
    ap.add_argument("--bptt", type=int, default=35)
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3, quick 1)")
    ap.add_argument("--steps", type=int, default=None, help="timed train steps (default 20, quick 2)")
    ap.add_argument("--score-steps", type=int, default=None,
                    help="timed scoring steps (default 40, quick 3)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    ap.add_argument("--data", default=PTB, help="folder with ptb.train.txt, or 'none' for random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=OUT, help="CSV output")
    args = ap.parse_args(argv)

    sys.path.insert(0, ROOT)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    steps = args.steps or (2 if args.quick else 20)
    score_steps = args.score_steps or (3 if args.quick else 40)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    t0 = time.perf_counter()
    batches, vocab, source = load_batches(args.data, args.vocab, args.batch, args.bptt,
                                          warmup + max(steps, score_steps), args.seed)
    print(f"data: {source}, V = {vocab}, {len(batches)} windows of {args.batch}x{args.bptt} "
          f"(loaded in {time.perf_counter() - t0:.1f}s); torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}",
          file=sys.stderr)
    rows = []
    for h in sizes:
        r = bench_case(h, args.layers, batches, vocab, warmup, steps, score_steps, args.seed)
        r.update(data=source, threads=torch.get_num_threads(), quick=args.quick,
                 torch=torch.__version__)
        rows.append(r)
        print(f"  {r['model']}: train {r['train_tok_s']:.0f} tok/s, score {r['score_tok_s']:.0f} tok/s",
              file=sys.stderr)
    print_table(rows)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
