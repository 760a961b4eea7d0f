"""Time to a strong LM on the CPU: training-step speed against the CPU's GEMM rate.

For the recipe's PTB shapes (teacher 2x400, student 1x200, V = 10000, sentence
batches of 32) this script measures, side by side in one process (variants
interleaved step by step, so a background load slows them alike):

Batches are real-length sentence batches (PTB's length distribution) padded to a
multiple of 8 tokens; every variant first runs every timed batch once (oneDNN compiles
an LSTM kernel per shape, once), then the timed pass.

* tokens/s of a whole training step (forward, loss, backward, clip, AdamW step:
  what ``asr_kd.train`` does per batch) for each variant:
    - ``full_fp32``: logits + cross_entropy in float32 (the code before the fused loss),
    - ``fused_fp32``: the blocked linear + CE (:mod:`asr_kd.ops.fused_ce`),
    - ``fused_bf16``: the same under CPU bf16 autocast (``cpu_bf16: on``; only where
      the CPU has AMX or AVX512-BF16),
    - ``kd_topK_bf16`` / ``kd_topK_fp32``: the student distilled from a top-K cache
      (``KDObjective`` with a ``TeacherTopK`` of random cached rows, as the cache
      feeds it), for the student shape only;
* the share of each step in the output layer (loss forward + backward on fixed
  hidden states), the optimizer (clip + step) and the rest (embedding + LSTM
  layers forward and backward), each timed on its own;
* the GEMM rate of this CPU at the step's shapes (float32 and, where native, bf16):
  the roofline; "% of GEMM rate" = the step's GEMM FLOPs per second / the rate
  the same GEMMs run at alone (FLOP-weighted over the shapes).

The time-to-quality half (valid perplexity against wall time) is a recipe run,
``benchmarks/time_to_quality.sh`` (two ``asr-kd train-lm`` jobs side by side).

    OMP_NUM_THREADS=1 python benchmarks/bench_train_cpu.py [--steps 12] [--quick]

Writes a CSV (default benchmarks/results/bench_train_cpu.csv) and prints a table.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

# as train() sets it under CPU bf16 (asr_kd.train.ONEDNN_CACHE_BF16), before torch loads oneDNN
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")

import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from asr_kd.corpus import SentenceBatches  # noqa: E402
from asr_kd.device import cpu_bf16_native  # noqa: E402
from asr_kd.distill import KDObjective  # noqa: E402
from asr_kd.models import LMConfig, LstmLM  # noqa: E402
from asr_kd.ops import KDConfig  # noqa: E402
from asr_kd.ops.fused_ce import fused_linear_ce  # noqa: E402
from asr_kd.train import LMObjective, make_optimizer  # noqa: E402
from asr_kd.config import TrainConfig  # noqa: E402
from tables import print_markdown, write_csv  # noqa: E402

SHAPES = {"teacher_2x400": (400, 400, 2, 0.3), "student_1x200": (200, 200, 1, 0.2)}


def ptb_like_batches(v: int, batch: int, n_sent: int, seed: int = 0) -> list:
    """Sentence batches with PTB's length distribution (mean ~21 words, 1..80)."""
    g = torch.Generator().manual_seed(seed)
    lens = (torch.distributions.Gamma(3.0, 0.14).sample((n_sent,)).clamp(1, 80)).long()
    ids = [torch.randint(3, v, (int(n),), generator=g).tolist() for n in lens]
    # padded to a multiple of 8 tokens, as train() does under CPU bf16 (one oneDNN
    # kernel per length); the same batches for every variant
    sb = SentenceBatches(ids, 0, 1, batch, seed=seed, shuffle=True, pad_multiple=8)
    return list(sb.epoch(0))


class _Cache:
    """Random top-K teacher rows for every position of a batch, like TeacherCache.lookup."""

    def __init__(self, v: int, k: int, n: int = 4096):
        g = torch.Generator().manual_seed(1)
        self.ids = torch.stack([torch.randperm(v, generator=g)[:k] for _ in range(64)])
        lp = torch.log_softmax(torch.randn(64, k + 1, generator=g) * 3, 1)
        self.lps = lp[:, :k].sort(1, descending=True).values
        self.tgt = lp[:, 0]
        self.n = n

    def lookup(self, pos):
        i = pos % 64
        return self.ids[i], self.lps[i], self.tgt[i]


class Variant:
    """A model + optimizer + objective, stepped like asr_kd.train does."""

    def __init__(self, name, shape, v, objective, bf16, seed=0):
        e, h, layers, drop = SHAPES[shape]
        torch.manual_seed(seed)
        self.model = LstmLM(LMConfig(vocab_size=v, embed_dim=e, hidden_dim=h, num_layers=layers,
                                     dropout=drop, init_range=0.05)).train()
        self.opt, self.params = make_optimizer(self.model, TrainConfig(optimizer="adamw",
                                                                       lr=1e-3))
        self.name, self.shape, self.objective, self.bf16 = name, shape, objective, bf16
        self.times = []

    def step(self, batch):
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            loss, _, _ = self.objective.loss(self.model, batch,
                                             self.objective.init_state(self.model,
                                                                       batch.inputs.shape[0],
                                                                       "cpu"))
        self.opt.zero_grad(set_to_none=True)
        (loss / batch.num_tokens).backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return time.perf_counter() - t

    def output_only(self, batch):
        """Forward + backward of the output loss alone on fixed hidden states."""
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            h, _ = self.model.hidden(batch.inputs)
        h = h.reshape(-1, h.shape[-1]).detach().requires_grad_()
        y = batch.targets.reshape(-1)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            if isinstance(self.objective, KDObjective):
                from asr_kd.ops import kd_loss, TeacherTopK
                pos = batch.positions.reshape(-1).clamp(min=0)
                ids, lps, tgt = self.objective.cache.lookup(pos)
                loss = kd_loss(h, self.model.output_weight, self.model.output_bias, y,
                               teacher=TeacherTopK(ids, lps, tgt), cfg=self.objective.s)
            elif self.objective.output_loss == "fused":
                loss = fused_linear_ce(h, self.model.output_weight, self.model.output_bias, y)
            else:
                z = self.model.out(h)
                loss = torch.nn.functional.cross_entropy(z.float(), y, ignore_index=-100,
                                                         reduction="sum")
        loss.backward()
        self.model.zero_grad(set_to_none=True)
        return time.perf_counter() - t

    def optimizer_only(self):
        for p in self.params:
            p.grad = torch.zeros_like(p)
        t = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return time.perf_counter() - t


def gemm_rate(m, k, n, dtype, reps=6) -> float:
    """GFLOP/s of an (m, k) x (k, n) product, best of ``reps``."""
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * m * k * n / best / 1e9


def step_gemms(shape, v, n_tok, batch):
    """(m, k, n) of every GEMM in one training step (forward and backward)."""
    e, h, layers, _ = SHAPES[shape]
    out = []
    d = h
    for shape_mkn in ((n_tok, d, v), (n_tok, v, d), (v, n_tok, d)):     # logits, dh, dW
        out.append(shape_mkn)
    for layer in range(layers):
        x = e if layer == 0 else h
        out += [(n_tok, x, 4 * h), (n_tok, 4 * h, x), (4 * h, n_tok, x)]  # input GEMMs
        steps = max(1, n_tok // batch)
        out += [(batch, h, 4 * h)] * (3 * steps)                          # recurrent, per step
    return out


def roofline(gemms, dtype):
    """(total GFLOP, seconds at the measured GEMM rates) of a list of GEMM shapes."""
    rates, flops, secs = {}, 0.0, 0.0
    for mkn in gemms:
        if mkn not in rates:
            rates[mkn] = gemm_rate(*mkn, dtype)
        f = 2 * mkn[0] * mkn[1] * mkn[2] / 1e9
        flops += f
        secs += f / rates[mkn]
    return flops, secs


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=12, help="timed steps per variant")
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--topk", type=int, default=64)
    ap.add_argument("--shapes", default=",".join(SHAPES))
    ap.add_argument("--quick", action="store_true", help="2 steps, small vocabulary (smoke test)")
    ap.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results",
                                                  "bench_train_cpu.csv"))
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.vocab = 2, 2000
    bf16_ok = cpu_bf16_native()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s), native bf16: {'yes' if bf16_ok else 'no'}")
    batches = ptb_like_batches(args.vocab, args.batch, args.batch * (args.steps + 3))
    rows = []
    for shape in args.shapes.split(","):
        variants = [Variant("full_fp32", shape, args.vocab, LMObjective("full"), False),
                    Variant("fused_fp32", shape, args.vocab, LMObjective("fused"), False)]
        if bf16_ok:
            variants.append(Variant("fused_bf16", shape, args.vocab, LMObjective("fused"), True))
        if shape.startswith("student"):
            kd = KDConfig(alpha=0.5, tau=2.0)
            cache = _Cache(args.vocab, args.topk)
            variants.append(Variant(f"kd_top{args.topk}_fp32", shape, args.vocab,
                                    KDObjective(kd, cache=cache), False))
            if bf16_ok:
                variants.append(Variant(f"kd_top{args.topk}_bf16", shape, args.vocab,
                                        KDObjective(kd, cache=cache), True))
        for v in variants:           # warm-up: every batch shape once (oneDNN compiles per shape)
            for b in batches[:2 + args.steps]:
                v.step(b)
                v.output_only(b)
        step_t = {v.name: [] for v in variants}
        out_t = {v.name: [] for v in variants}
        opt_t = {v.name: [] for v in variants}
        toks = []
        for i in range(args.steps):
            b = batches[2 + i]
            toks.append(b.num_tokens)
            for v in variants:
                step_t[v.name].append(v.step(b) / b.num_tokens)
                out_t[v.name].append(v.output_only(b) / b.num_tokens)
                opt_t[v.name].append(v.optimizer_only())
        n_tok = int(statistics.median(toks))
        gemms = step_gemms(shape, args.vocab, n_tok, args.batch)
        gflop, t32 = roofline(gemms, torch.float32)
        _, t16 = roofline(gemms, torch.bfloat16) if bf16_ok else (gflop, float("nan"))
        for v in variants:
            s = statistics.median(step_t[v.name])
            o = statistics.median(out_t[v.name])
            p = statistics.median(opt_t[v.name]) / n_tok
            roof = t16 if v.bf16 else t32
            rows.append(dict(shape=shape, variant=v.name, tokens_per_s=round(1 / s),
                             ms_per_step=round(s * n_tok * 1e3, 1),
                             output_share=round(o / s, 3), optimizer_share=round(p / s, 3),
                             recurrent_share=round(max(0.0, 1 - (o + p) / s), 3),
                             gemm_gflop_per_token=round(gflop / n_tok * 1e3, 2),
                             gemm_rate_gflops=round(gflop / roof, 1),
                             step_gflops=round(gflop / n_tok / s, 1),
                             pct_of_gemm_rate=round(100 * (roof / n_tok) / s, 1),
                             tokens_per_step=n_tok))
        base = next(r for r in rows if r["shape"] == shape and r["variant"] == "full_fp32")
        for r in rows:
            if r["shape"] == shape:
                r["speedup_vs_full_fp32"] = round(r["tokens_per_s"] / base["tokens_per_s"], 2)
    cols = ["shape", "variant", "tokens_per_s", "speedup_vs_full_fp32", "ms_per_step",
            "output_share", "recurrent_share", "optimizer_share", "gemm_rate_gflops",
            "step_gflops", "pct_of_gemm_rate"]
    print_markdown(rows, cols)
    write_csv(args.out, rows)
    print(f"# wrote {args.out}")


if __name__ == "__main__":
    main()
