"""GPU time and extra memory of the distillation loss, forward + backward, one GPU,
one run (issue 6): ours (Triton, logits and top-K teacher; chunked torch) against
eager torch, torch.compile, Liger's fused-linear JSD (beta = 0, forward KL; the
chunked and the Triton one), Apple's CCE (hard labels only) and the bare GEMMs.

    python3 benchmarks/bench_kd_kernel.py              # N=16384 d=512 D=1536, V in {10000, 32768, 131072}
    python3 benchmarks/bench_kd_kernel.py --quick      # small sizes, seconds
    python3 benchmarks/bench_kd_kernel.py --vocab 32768 --methods ours_triton,gemm

Per method: median ms over reps (CUDA events around forward + backward),
extra peak MiB = torch.cuda.max_memory_allocated during one step minus the
baseline with inputs and gradient buffers allocated, and x GEMM = ms / the bare
GEMMs' ms. The bare GEMMs are the four matmuls every exact method does:
s = h W^T, t = g U^T (teacher forward), grad_h = G W, grad_W = G^T h (bf16, cuBLAS).
Loss for ours/eager/compile: alpha = 0.5, tau = 2, trust none, with bias.
Liger/CCE run without bias (their APIs); Liger's Triton JSD has no hard term.

Writes bench_kd_kernel.csv to $OUT if set, else benchmarks/out/. Needs CUDA:
without it, exits with a message and measures nothing. Imports only torch
(+ triton, liger-kernel, cut-cross-entropy when installed) and asr_kd.ops.
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ALPHA, TAU, K_TOP = 0.5, 2.0, 32
# most important first: a run cut short by a timeout still has the key rows
METHODS = ["gemm", "ours_triton", "ours_triton_topk", "ours_triton_fp32logits", "compile",
           "cce", "liger_chunked", "liger_triton", "eager", "ours_torch"]


def eager_loss(h, w, b, y, g, u, c):
    """Materialising reference in the inputs' dtype for the GEMMs, fp32 softmax."""
    s = (h @ w.T + b).float()
    with torch.no_grad():
        t = (g @ u.T + c).float()
    hard = F.cross_entropy(s, y)
    logp = F.log_softmax(t / TAU, 1)
    logq = F.log_softmax(s / TAU, 1)
    kl = (logp.exp() * (logp - logq)).sum(1).mean()
    return (1 - ALPHA) * hard + ALPHA * TAU * TAU * kl


def make_inputs(N, d, D, V, dev, dtype):
    gen = torch.Generator(device=dev).manual_seed(0)
    h = torch.randn(N, d, device=dev, generator=gen, dtype=dtype).requires_grad_()
    w = (torch.randn(V, d, device=dev, generator=gen) / math.sqrt(d) * 2).to(dtype).requires_grad_()
    b = (torch.randn(V, device=dev, generator=gen) * 0.1).to(dtype).requires_grad_()
    y = torch.randint(0, V, (N,), device=dev, generator=gen)
    g = torch.randn(N, D, device=dev, generator=gen, dtype=dtype)
    u = (torch.randn(V, D, device=dev, generator=gen) / math.sqrt(D) * 2).to(dtype)
    c = (torch.randn(V, device=dev, generator=gen) * 0.1).to(dtype)
    return h, w, b, y, g, u, c


def make_topk(g, u, c, y, K, rows=1024):
    """The teacher's exact top-K (ids, log-probs, log p(y)), row block by row block."""
    ids, lps, lpy = [], [], []
    with torch.no_grad():
        for r0 in range(0, g.shape[0], rows):
            lp = F.log_softmax((g[r0:r0 + rows] @ u.T + c).float(), 1)
            v, i = lp.topk(K, dim=1)
            ids.append(i)
            lps.append(v)
            lpy.append(lp.gather(1, y[r0:r0 + rows, None])[:, 0])
            del lp
    return torch.cat(ids), torch.cat(lps), torch.cat(lpy)


def build(method, inp, topk):
    """Return a zero-arg callable doing forward + backward, or raise ImportError."""
    h, w, b, y, g, u, c = inp
    from asr_kd.ops import KDConfig, TeacherLogits, TeacherTopK, kd_loss
    teacher = TeacherLogits(g, u, c)
    if method == "eager":
        return lambda: eager_loss(h, w, b, y, g, u, c).backward()
    if method == "compile":
        fn = torch.compile(eager_loss, dynamic=False)
        return lambda: fn(h, w, b, y, g, u, c).backward()
    if method == "ours_torch":
        return lambda: kd_loss(h, w, b, y, teacher=teacher, cfg=KDConfig(
            alpha=ALPHA, tau=TAU, impl="torch", chunk_size=8192)).backward()
    if method.startswith("ours_triton@"):
        # sweep variant "ours_triton@<scratch MiB>[,fp32|,topk]": row block from the scratch budget
        from asr_kd.ops.kd_triton import kd_loss_triton
        spec = method.split("@", 1)[1].split(",")
        mb, opt = float(spec[0]), (spec[1] if len(spec) > 1 else "")
        cfg = KDConfig(alpha=ALPHA, tau=TAU)
        tch = TeacherTopK(*topk) if opt == "topk" else (teacher,)
        ldt = "float32" if opt == "fp32" else None
        return lambda: kd_loss_triton(h, w, b, y, tch, cfg, scratch_mb=mb,
                                      logits_dtype=ldt).loss.backward()
    if method in ("ours_triton", "ours_triton_fp32logits", "ours_triton_topk"):
        from asr_kd.ops import triton_available
        if not triton_available():
            raise ImportError("asr_kd.ops.kd_triton not importable")
        if method == "ours_triton_topk":
            tk = TeacherTopK(*topk)
            return lambda: kd_loss(h, w, b, y, teacher=tk,
                                   cfg=KDConfig(alpha=ALPHA, tau=TAU, impl="triton")).backward()
        if method == "ours_triton_fp32logits":
            from asr_kd.ops.kd_triton import kd_loss_triton
            cfg = KDConfig(alpha=ALPHA, tau=TAU)
            return lambda: kd_loss_triton(h, w, b, y, (teacher,), cfg,
                                          logits_dtype="float32").loss.backward()
        return lambda: kd_loss(h, w, b, y, teacher=teacher,
                               cfg=KDConfig(alpha=ALPHA, tau=TAU, impl="triton")).backward()
    if method == "liger_chunked":
        from liger_kernel.chunked_loss import LigerFusedLinearJSDLoss
        fn = LigerFusedLinearJSDLoss(weight_hard_loss=1 - ALPHA, weight_soft_loss=ALPHA,
                                     beta=0.0, temperature=TAU)
        return lambda: fn(h, w, g, u, y).backward()
    if method == "liger_triton":
        from liger_kernel.ops.fused_linear_jsd import LigerFusedLinearJSDFunction
        return lambda: LigerFusedLinearJSDFunction.apply(h, w, g, u, y, 0.0, -100, TAU).backward()
    if method == "cce":
        from cut_cross_entropy import linear_cross_entropy
        return lambda: linear_cross_entropy(h, w, y).backward()
    raise ValueError(method)


def gemm_floor(inp, reps):
    """Median ms of the four bare GEMMs (preallocated outputs)."""
    h, w, b, y, g, u, c = inp
    N, V = h.shape[0], w.shape[0]
    with torch.no_grad():
        s = torch.empty(N, V, device=h.device, dtype=h.dtype)
        t = torch.empty_like(s)
        G = torch.randn_like(s)
        gh = torch.empty_like(h)
        gw = torch.empty_like(w)

        def step():
            torch.mm(h, w.T, out=s)
            torch.mm(g, u.T, out=t)
            torch.mm(G, w, out=gh)
            torch.mm(G.T, h, out=gw)
        ms = time_it(step, reps, warmup=2)
    del s, t, G, gh, gw
    torch.cuda.empty_cache()
    return ms


def time_it(step, reps, warmup=2, budget_s=4.0):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    times = []
    t_start = time.time()
    for _ in range(reps):
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        step()
        e1.record()
        e1.synchronize()
        times.append(e0.elapsed_time(e1))
        if time.time() - t_start > budget_s and len(times) >= 3:
            break
    return statistics.median(times)


def zero_grads(inp):
    for t in inp[:3]:
        t.grad.zero_()


def measure(method, inp, topk, reps):
    """(ms, extra MiB, note)."""
    try:
        step = build(method, inp, topk)
    except ImportError as e:
        return None, None, f"not installed ({e})"
    torch.cuda.synchronize()
    try:
        t0 = time.time()
        step()                      # first call: compile / autotune outside the timing
        torch.cuda.synchronize()
        first_s = time.time() - t0
        zero_grads(inp)
        torch.cuda.empty_cache()
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        step()
        torch.cuda.synchronize()
        extra = (torch.cuda.max_memory_allocated() - base) / 2 ** 20
        ms = time_it(step, reps, warmup=1)
    except torch.cuda.OutOfMemoryError:
        torch.cuda.empty_cache()
        return None, None, "OOM"
    except Exception as e:        # a competitor failing must not stop the run
        torch.cuda.empty_cache()
        return None, None, f"error: {type(e).__name__}: {str(e)[:120]}"
    return ms, extra, (f"first call {first_s:.1f}s" if first_s > 2 else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes (N=2048, d=128, D=384)")
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--D", type=int, default=1536)
    ap.add_argument("--vocab", default="10000,32768,131072")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])
    ap.add_argument("--sweep", default="",
                    help="scratch budgets in MiB, e.g. 64,256,4096: adds ours_triton@S, "
                         "ours_triton@S,fp32 (float32 logits) and ours_triton@S,topk rows "
                         "(time/memory trade-off; the default budget is 1024)")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_kd_kernel: no CUDA device (torch.cuda.is_available() is False); "
              "this benchmark needs one GPU. Nothing measured.", file=sys.stderr)
        return 2
    if args.quick:
        args.n, args.d, args.D = 2048, 128, 384
        if args.vocab == ap.get_default("vocab"):
            args.vocab = "4096,10007"
        args.reps = min(args.reps, 5)
    methods = [m for m in args.methods.split(",") if m]
    for m in methods:
        if m not in METHODS:
            ap.error(f"unknown method {m!r}; choose from {METHODS}")
    for mb in [x for x in args.sweep.split(",") if x]:
        methods += [f"ours_triton@{mb}", f"ours_triton@{mb},fp32", f"ours_triton@{mb},topk"]
    dtype = getattr(torch, args.dtype)
    dev = torch.device("cuda")
    try:
        import triton
        tv = triton.__version__
    except ImportError:
        tv = "none"
    print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; triton {tv}; "
          f"N={args.n} d={args.d} D={args.D} {args.dtype} alpha={ALPHA} tau={TAU}", flush=True)

    out_dir = os.environ.get("OUT") or os.path.join(ROOT, "benchmarks", "out")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "bench_kd_kernel.csv")
    f = open(path, "w", newline="")
    wr = csv.DictWriter(f, fieldnames=["device", "N", "d", "D", "dtype", "V", "method", "ms",
                                       "extra_mib", "x_gemm", "note"])
    wr.writeheader()
    rows = []

    def emit(r):          # CSV row by row: a run cut short keeps what it measured
        rows.append(r)
        wr.writerow(dict(device=torch.cuda.get_device_name(0), N=args.n, d=args.d, D=args.D,
                         dtype=args.dtype, **r))
        f.flush()

    for V in [int(v) for v in args.vocab.split(",")]:
        inp = make_inputs(args.n, args.d, args.D, V, dev, dtype)
        for t in inp[:3]:
            t.grad = torch.zeros_like(t)
        topk = (make_topk(*inp[4:7], inp[3], K_TOP)
                if any("topk" in m for m in methods) else None)
        torch.cuda.empty_cache()
        gemm_ms = gemm_floor(inp, args.reps) if "gemm" in methods else None
        if gemm_ms is not None:
            emit(dict(V=V, method="gemm", ms=gemm_ms, extra_mib=None, x_gemm=1.0, note=""))
            print(f"V={V:>7} {'gemm':<24} {gemm_ms:9.2f} ms", flush=True)
        for m in methods:
            if m == "gemm":
                continue
            ms, extra, note = measure(m, inp, topk, args.reps)
            x = (ms / gemm_ms) if (ms is not None and gemm_ms) else None
            emit(dict(V=V, method=m, ms=ms, extra_mib=extra, x_gemm=x, note=note))
            print(f"V={V:>7} {m:<24} " + (f"{ms:9.2f} ms {extra:10.1f} MiB" if ms is not None
                                          else f"{'-':>9}    {'-':>10}    ") +
                  (f"  x{x:.2f} GEMM" if x else "") + (f"  {note}" if note else ""), flush=True)
        if any(m.startswith("ours_triton") for m in methods):
            from asr_kd.ops import kd_triton as kt
            print(f"cuBLAS float32-output GEMMs for bf16 inputs: mm {kt._MM_OUT_DTYPE[0]}, "
                  f"addmm {kt._ADDMM_OUT_DTYPE[0]} (False = upcast fallback)", flush=True)
        del inp, topk
        torch.cuda.empty_cache()

    f.close()
    print(f"\n== summary (median ms / extra peak MiB / x bare GEMMs) -> {path}")
    vs = sorted({r["V"] for r in rows})
    print(f"{'method':<24}" + "".join(f"{'V=' + str(v):>28}" for v in vs))
    for m in methods:
        cells = []
        for v in vs:
            r = next((r for r in rows if r["V"] == v and r["method"] == m), None)
            if r is None or r["ms"] is None:
                cells.append(f"{(r['note'][:26] if r else '-'):>28}")
            elif r["extra_mib"] is None:
                cells.append(f"{r['ms']:>10.2f} ms{'':>16}")
            else:
                cells.append(f"{r['ms']:>9.2f} / {r['extra_mib']:>7.1f} / x{r['x_gemm'] or 0:.2f}")
        print(f"{m:<24}" + "".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
