"""CPU time and peak memory of the KD loss: reference (materialises (N, V)) vs
chunked torch (forward + backward).

Every case runs in a fresh subprocess, which reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``); the torch CPU allocator keeps
no peak counter, so process RSS is the honest measure. A baseline subprocess
allocates the same inputs and gradient buffers and initialises BLAS but runs
no loss; ``extra_mb`` = case peak - baseline peak is the loss's working memory.

    python benchmarks/bench_kd_loss.py                 # N in {1024, 4096, 8192}, V in {10000, 65536}
    python benchmarks/bench_kd_loss.py --quick         # small sizes, seconds
    python benchmarks/bench_kd_loss.py --sizes 4096x10000,8192x10000 --teacher topk

Writes benchmarks/out/bench_kd_loss.csv and prints a table.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import time

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out", "bench_kd_loss.csv")


def child(impl: str, n: int, d: int, v: int, chunk: int, teacher_kind: str, k: int,
          repeats: int, warmup: int, threads: int) -> dict:
    """Run one case in this process; return time and peak RSS."""
    import torch
    torch.set_num_threads(threads)
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from asr_kd.ops import KDConfig, TeacherLogits, TeacherTopK, kd_loss

    g = torch.Generator().manual_seed(0)
    h = (torch.randn(n, d, generator=g)).requires_grad_()
    w = (torch.randn(v, d, generator=g) / d ** 0.5).requires_grad_()
    b = torch.zeros(v, requires_grad=True)
    y = torch.randint(0, v, (n,), generator=g)
    if teacher_kind == "topk":
        lp = torch.log_softmax(torch.randn(n, k, generator=g), 1) - 0.1
        ids = torch.stack([torch.randperm(v, generator=g)[:k] for _ in range(n)])
        teacher = TeacherTopK(ids, lp, lp[:, 0])
    else:
        teacher = TeacherLogits(torch.randn(n, d, generator=g), torch.randn(v, d, generator=g) / d ** 0.5,
                                torch.zeros(v))
    torch.ones(64, 64) @ torch.ones(64, 64)           # load/initialise BLAS in every process
    times = []
    if impl == "none":
        # the gradient buffers every impl ends up holding, so that extra = working memory
        grads = [torch.zeros_like(t) for t in (h, w, b)]
        del grads
    else:
        for _ in range(warmup + repeats):
            for t in (h, w, b):
                t.grad = None
            t0 = time.perf_counter()
            loss = kd_loss(h, w, b, y, teacher=teacher, cfg=KDConfig(
                impl=impl, chunk_size=chunk, alpha=0.5, tau=2.0,
                trust="prob" if teacher_kind == "logits" else "none"))
            loss.backward()
            times.append(time.perf_counter() - t0)
            del loss
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss   # KiB on Linux
    return {"time_s": min(times[warmup:]) if times else float("nan"),
            "peak_mb": rss_kb / 1024}


def run_case(impl, n, d, v, args) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", impl, str(n), str(d), str(v),
           "--chunk", str(args.chunk), "--teacher", args.teacher, "--k", str(args.k),
           "--repeats", str(args.repeats), "--warmup", str(args.warmup),
           "--threads", str(args.threads)]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        return {"time_s": float("nan"), "peak_mb": float("nan"),
                "error": (res.stderr.strip().splitlines() or ["killed"])[-1]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="4096x10000,8192x10000,1024x65536,4096x65536,8192x65536",
                    help="comma-separated NxV cases")
    ap.add_argument("--d", type=int, default=512, help="hidden size (student and teacher)")
    ap.add_argument("--chunk", type=int, default=4096, help="vocabulary chunk of the torch impl")
    ap.add_argument("--teacher", choices=("logits", "topk"), default="logits")
    ap.add_argument("--k", type=int, default=32, help="K of a top-K teacher")
    ap.add_argument("--repeats", type=int, default=1, help="timed runs (the minimum is reported)")
    ap.add_argument("--warmup", type=int, default=0, help="untimed runs first")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads; 1 because on a shared, loaded machine OpenMP "
                         "barriers make 2+ threads far slower and noisier")
    ap.add_argument("--impls", default="reference,torch")
    ap.add_argument("--max-ref-gb", type=float, default=10.0,
                    help="skip the reference when its estimated extra memory (~9 float32 "
                         "(N, V) tensors, measured) exceeds this")
    ap.add_argument("--quick", action="store_true", help="small sizes (seconds)")
    ap.add_argument("--out", default=OUT)
    ap.add_argument("--child", nargs=4, metavar=("IMPL", "N", "D", "V"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.child:
        impl, n, d, v = args.child[0], *map(int, args.child[1:])
        print(json.dumps(child(impl, n, d, v, args.chunk, args.teacher, args.k, args.repeats,
                               args.warmup, args.threads)))
        return 0
    if args.quick:
        args.sizes, args.d, args.chunk = "256x2000,512x2000,256x8000", 64, 512
        args.warmup, args.repeats = 1, 3

    rows = []
    for case in args.sizes.split(","):
        n, v = map(int, case.lower().split("x"))
        base = run_case("none", n, args.d, v, args)
        for impl in args.impls.split(","):
            if impl == "reference" and 9 * n * v * 4 / 2 ** 30 > args.max_ref_gb:
                res = {"time_s": float("nan"), "peak_mb": float("nan"), "error": "skipped (--max-ref-gb)"}
            else:
                res = run_case(impl, n, args.d, v, args)
            row = {"impl": impl, "teacher": args.teacher, "N": n, "d": args.d, "V": v,
                   "chunk": args.chunk if impl == "torch" else "", "time_s": round(res["time_s"], 3),
                   "peak_mb": round(res["peak_mb"], 1), "baseline_mb": round(base["peak_mb"], 1),
                   "extra_mb": round(res["peak_mb"] - base["peak_mb"], 1),
                   "nv_f32_mb": round(n * v * 4 / 2 ** 20, 1), "note": res.get("error", "")}
            rows.append(row)
            if len(rows) == 1:
                print(_header())
            print(_fmt(row), flush=True)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    tmp = args.out + ".tmp"
    with open(tmp, "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=list(rows[0]))
        wr.writeheader()
        wr.writerows(rows)
    os.replace(tmp, args.out)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


_COLS = [("impl", 9), ("N", 6), ("V", 7), ("d", 5), ("chunk", 6), ("time_s", 8),
         ("peak_mb", 9), ("baseline_mb", 11), ("extra_mb", 9), ("nv_f32_mb", 9), ("note", 0)]


def _header() -> str:
    return " ".join(f"{c:>{w}}" if w else c for c, w in _COLS)


def _fmt(row: dict) -> str:
    return " ".join(f"{str(row[c]):>{w}}" if w else str(row[c]) for c, w in _COLS)


if __name__ == "__main__":
    sys.exit(main())
