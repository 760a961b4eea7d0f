"""CPU cost of a distillation training step against its floor (issue: distillation cost).

The floor of a distillation step is what cannot be avoided: the teacher's forward
pass plus the student's own training step.  This script times, per training step
(forward, loss, backward, clip, SGD step: what ``asr_kd.train`` does per batch),
side by side in one process on the same synthetic batches:

* ``hard``: the student's hard-label step alone (``LMObjective``)        (a)
* ``teacher_fwd``: the teacher's forward pass (logits), eval, no_grad    (b)
* ``floor`` = hard + teacher_fwd (computed, not run)                     (c)
* ``teacher_train``: the teacher's own hard-label training step, for scale
* ``live``: ``KDObjective`` with the live teacher, as ``asr-kd distill`` runs it
  (``KDConfig()`` defaults: impl auto, its chunk size)                  (d)
* ``cache_K``: ``KDObjective`` reading a real top-K cache (``build_cache`` +
  ``TeacherCache``, memory-mapped shards in a temporary folder)          (e)
* variants: ``live_chunkC`` (vocabulary chunk C), ``live_reference`` (the
  materialising reference loss), ``live_inference`` (teacher under
  torch.inference_mode), ``teacher_fwd_inference`` / ``teacher_fwd_bf16`` (teacher
  forward under inference_mode / CPU bf16 autocast), ``cache_lookup`` (the cache
  read alone; the floor of the cache path is hard + cache_lookup);
* with ``--baseline-rev REV``: ``base_live`` / ``base_cache_K``, the same steps with
  the ``asr_kd`` package as it was at git revision REV (extracted to a temporary
  folder and imported as ``asr_kd_base``), so before/after run in one process.

Every variant has its own student (same initial weights) and optimizer; the steps
are interleaved round-robin (step i of every variant, then step i + 1), so a
background load slows all variants alike.  Reported: median ms per step over the
timed steps, tokens/s (B x T real tokens per step), and x floor = ms / floor ms
(for cache variants the floor is hard + cache_lookup).

Data: random word ids (V = 10000 by default), sentences of ``bptt - 1`` words so
every batch is a full ``batch x bptt`` sentence batch (``SentenceBatches``, no
padding). Models: ``LxH`` LSTM LMs with tied embeddings (embed = hidden).

    OMP_NUM_THREADS=1 python benchmarks/bench_distill_cpu.py                       # both pairs
    OMP_NUM_THREADS=1 python benchmarks/bench_distill_cpu.py --pairs 2x256:1x96 --steps 6 \\
        --variants hard,teacher_fwd,live,cache_32 --baseline-rev HEAD~3
    python benchmarks/bench_distill_cpu.py --quick                                  # smoke test

Writes a CSV (default benchmarks/out/bench_distill_cpu.csv) and prints a table.
"""
from __future__ import annotations

import argparse
import copy
import csv
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benchmarks", "out", "bench_distill_cpu.csv")
DEFAULT_VARIANTS = ("hard,teacher_fwd,teacher_train,teacher_fwd_inference,teacher_fwd_bf16,live,"
                    "live_chunk512,live_chunk1024,live_reference,live_inference,cache_lookup,"
                    "cache_8,cache_32,cache_128")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_baseline(rev: str, tmp: str):
    """The asr_kd package at git revision ``rev`` (or in the folder ``rev``/asr_kd),
    imported as ``asr_kd_base``."""
    import importlib

    if os.path.isdir(os.path.join(rev, "asr_kd")):
        shutil.copytree(os.path.join(rev, "asr_kd"), os.path.join(tmp, "asr_kd"))
    else:
        arch = subprocess.run(["git", "-C", ROOT, "archive", rev, "asr_kd"], check=True,
                              capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=arch, check=True)
    os.rename(os.path.join(tmp, "asr_kd"), os.path.join(tmp, "asr_kd_base"))
    sys.path.insert(0, tmp)
    base = importlib.import_module("asr_kd_base")
    for m in ("distill", "teacher_cache", "ops"):
        importlib.import_module("asr_kd_base." + m)
    return base


def parse_shape(s: str):
    layers, hidden = s.lower().split("x")
    return int(layers), int(hidden)


def make_lm(vocab: int, shape: str, seed: int):
    import torch

    from asr_kd.models import LMConfig, LstmLM

    layers, hidden = parse_shape(shape)
    torch.manual_seed(seed)
    return LstmLM(LMConfig(vocab_size=vocab, embed_dim=hidden, hidden_dim=hidden,
                           num_layers=layers, dropout=0.0))


def word_vocab(vocab: int):
    from asr_kd.vocab import BOS, EOS, UNK, WordVocab

    return WordVocab([BOS, EOS, UNK] + [f"w{i}" for i in range(vocab - 3)])


class Step:
    """One training step of a student with an objective (the loop body of asr_kd.train)."""

    def __init__(self, student, objective, clip: float = 5.0, lr: float = 0.1):
        import torch

        self.model, self.obj, self.clip = student, objective, clip
        self.params = [p for p in student.parameters() if p.requires_grad]
        self.opt = torch.optim.SGD(self.params, lr=lr)

    def __call__(self, batch):
        import torch

        self.model.train()
        state = self.obj.init_state(self.model, batch.inputs.shape[0], batch.inputs.device)
        loss_sum, parts, _ = self.obj.loss(self.model, batch, state)
        float(loss_sum.detach())
        loss = loss_sum / max(1, batch.num_tokens)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, self.clip)
        self.opt.step()
        return float(loss.detach())


def build_variants(names, teacher, student0, cache_dirs, base, tmp, args):
    """name -> callable(batch) for every requested variant."""
    import torch

    from asr_kd.distill import KDObjective
    from asr_kd.ops import KDConfig
    from asr_kd.teacher_cache import TeacherCache
    from asr_kd.train import LMObjective

    def student():
        return copy.deepcopy(student0)

    def teacher_fwd(mode):
        def run(batch):
            teacher.eval()
            if mode == "inference":
                with torch.inference_mode():
                    z, _ = teacher(batch.inputs)
            elif mode == "bf16":
                with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
                    z, _ = teacher(batch.inputs)
            else:
                with torch.no_grad():
                    z, _ = teacher(batch.inputs)
            return float(z[0, 0, 0])
        return run

    class InferenceKD(KDObjective):
        """The live teacher under torch.inference_mode (its outputs cloned out of it)."""

        def _teacher(self, batch, t_state):
            with torch.inference_mode():
                t, s = super()._teacher(batch, t_state)
            return type(t)(t.hidden.clone(), t.weight, t.bias), s

    out = {}
    for name in names:
        if name == "hard":
            out[name] = Step(student(), LMObjective())
        elif name == "teacher_train":   # the teacher's own training step (a copy of it)
            out[name] = Step(copy.deepcopy(teacher).train().requires_grad_(True), LMObjective())
        elif name.startswith("teacher_fwd"):
            out[name] = teacher_fwd(name[len("teacher_fwd_"):] if name != "teacher_fwd" else "")
        elif name == "live":
            out[name] = Step(student(), KDObjective(KDConfig(), teacher=teacher))
        elif name.startswith("live_chunk"):
            c = int(name[len("live_chunk"):])
            out[name] = Step(student(), KDObjective(KDConfig(chunk_size=c), teacher=teacher))
        elif name == "live_reference":
            out[name] = Step(student(), KDObjective(KDConfig(impl="reference"), teacher=teacher))
        elif name == "live_inference":
            out[name] = Step(student(), InferenceKD(KDConfig(), teacher=teacher))
        elif name == "cache_lookup":
            cache = TeacherCache(cache_dirs[min(cache_dirs)])
            out[name] = (lambda c: lambda b: float(c.lookup(b.positions.reshape(-1))[1][0, 0]))(cache)
        elif name.startswith("cache_"):
            k = int(name[len("cache_"):])
            out[name] = Step(student(), KDObjective(KDConfig(), cache=TeacherCache(cache_dirs[k])))
        elif name == "base_live":
            out[name] = Step(student(), base.distill.KDObjective(base.distill.KDSettings(),
                                                                 teacher=teacher))
        elif name.startswith("base_cache_"):
            k = int(name[len("base_cache_"):])
            cache = base.teacher_cache.TeacherCache(cache_dirs[k])
            out[name] = Step(student(), base.distill.KDObjective(base.distill.KDSettings(),
                                                                 cache=cache))
        else:
            raise SystemExit(f"unknown variant {name!r}")
    return out


def bench_pair(pair: str, args, base, tmp: str) -> list[dict]:
    import torch

    from asr_kd.corpus import SentenceBatches
    from asr_kd.teacher_cache import build_cache

    t_shape, s_shape = pair.split(":")
    n_steps = args.warmup + args.steps
    g = torch.Generator().manual_seed(args.seed)
    ids = torch.randint(3, args.vocab, (args.batch * n_steps, args.bptt - 1), generator=g).tolist()
    tok = word_vocab(args.vocab)
    layout = SentenceBatches(ids, tok.bos, tok.eos, args.batch, shuffle=False)
    batches = list(layout.epoch(0))
    teacher = make_lm(args.vocab, t_shape, args.seed + 1).eval()
    student0 = make_lm(args.vocab, s_shape, args.seed + 2)

    names = [v for v in args.variants.split(",") if v]
    if base is not None:
        names += ["base_live"] + [f"base_cache_{v[6:]}" for v in names
                                  if v.startswith("cache_") and v[6:].isdigit()]
    ks = sorted({int(v.rsplit("_", 1)[1]) for v in names
                 if (v.startswith("cache_") or v.startswith("base_cache_")) and v[-1].isdigit()})
    if "cache_lookup" in names and not ks:
        ks = [32]
    cache_dirs = {}
    for k in ks:
        d = os.path.join(tmp, f"cache_{pair.replace(':', '_')}_{k}")
        t0 = time.perf_counter()
        build_cache(teacher, tok, ids, d, topk=k, batch_size=args.batch)
        print(f"  {pair}: top-{k} cache of {layout.num_tokens()} tokens built in "
              f"{time.perf_counter() - t0:.1f}s", file=sys.stderr)
        cache_dirs[k] = d
    fns = build_variants(names, teacher, student0, cache_dirs, base, tmp, args)

    times = {n: [] for n in names}
    losses = {n: [] for n in names}
    t_start = time.perf_counter()
    for i in range(n_steps):
        b = batches[i % len(batches)]
        order = names if i % 2 == 0 else names[::-1]
        for n in order:
            t0 = time.perf_counter()
            val = fns[n](b)
            dt = time.perf_counter() - t0
            if i >= args.warmup:
                times[n].append(dt)
            losses[n].append(val)
        if time.perf_counter() - t_start > args.max_seconds:
            print(f"  {pair}: stopping after {i + 1} steps (--max-seconds)", file=sys.stderr)
            break

    tokens = batches[0].num_tokens
    med = {n: 1000 * statistics.median(ts) for n, ts in times.items() if ts}
    floor = med.get("hard", float("nan")) + med.get("teacher_fwd", float("nan"))
    floor_cache = med.get("hard", float("nan")) + med.get("cache_lookup", 0.0)
    rows = []

    def row(name, ms, note=""):
        is_cache = "cache_" in name and name != "cache_lookup"
        f = floor_cache if is_cache else floor
        return {"pair": pair, "teacher": t_shape, "student": s_shape, "V": args.vocab,
                "batch": f"{args.batch}x{args.bptt}", "variant": name,
                "ms_per_step": round(ms, 1), "tokens_per_s": round(1000 * tokens / ms, 1),
                "x_floor": round(ms / f, 2),
                "steps": len(times.get(name, [])) or "",
                "min_ms": round(1000 * min(times[name]), 1) if times.get(name) else "",
                "first_loss": round(losses[name][0], 5) if losses.get(name) else "",
                "last_loss": round(losses[name][-1], 5) if losses.get(name) else "",
                "threads": torch.get_num_threads(), "note": note}
    for n in names:
        if n in med:
            rows.append(row(n, med[n]))
        if n == "teacher_fwd" and "hard" in med:
            rows.append(row("floor", floor, "hard + teacher_fwd"))
    return rows


COLS = ["pair", "variant", "ms_per_step", "min_ms", "tokens_per_s", "x_floor", "first_loss",
        "last_loss", "note"]


def print_table(rows):
    width = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in COLS}
    print("  ".join(c.rjust(width[c]) for c in COLS))
    for r in rows:
        print("  ".join(str(r[c]).rjust(width[c]) for c in COLS))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", default="2x256:1x96,2x400:1x200",
                    help="teacher:student shapes (LAYERSxHIDDEN, tied), comma-separated")
    ap.add_argument("--vocab", type=int, default=10000)
    ap.add_argument("--batch", type=int, default=32, help="sentences per batch")
    ap.add_argument("--bptt", type=int, default=35, help="tokens per sentence incl. </s>")
    ap.add_argument("--warmup", type=int, default=1, help="untimed steps")
    ap.add_argument("--steps", type=int, default=6, help="timed steps (the median is reported)")
    ap.add_argument("--max-seconds", type=float, default=150.0,
                    help="per pair: stop the round-robin after this long (keeps runs short)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--variants", default=DEFAULT_VARIANTS,
                    help="comma-separated; chunk sizes as live_chunkC, caches as cache_K")
    ap.add_argument("--baseline-rev", default="",
                    help="also run live/cache steps with asr_kd at this git revision "
                    "(or from this folder's asr_kd/)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="tiny shapes, 2 steps (smoke test)")
    ap.add_argument("--out", default=OUT, help="CSV output")
    args = ap.parse_args(argv)
    if args.quick:
        args.pairs, args.vocab, args.batch, args.bptt = "1x32:1x16", 500, 4, 6
        args.warmup, args.steps = 1, 2

    sys.path.insert(0, ROOT)
    import torch

    torch.set_num_threads(args.threads)
    tmp = tempfile.mkdtemp(prefix="bench_distill_")
    try:
        base = load_baseline(args.baseline_rev, tmp) if args.baseline_rev else None
        print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {cpu_model()}, "
              f"V = {args.vocab}, batches {args.batch}x{args.bptt}"
              + (f", baseline {args.baseline_rev}" if base else ""), file=sys.stderr)
        rows = []
        for pair in args.pairs.split(","):
            rows += bench_pair(pair, args, base, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for r in rows:
        r["cpu"] = cpu_model()
        r["torch"] = torch.__version__
        r["baseline_rev"] = args.baseline_rev
    print_table(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp_out = args.out + ".tmp"
    with open(tmp_out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp_out, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
