#!/usr/bin/env bash
# One-shot GPU check for issue 6 (run from the repo root on the device machine):
#   1. install carried wheels from .whl/ (pytest, hypothesis, liger-kernel, cut-cross-entropy) into /tmp/site
#   2. GPU tests: tests/test_kd_triton.py and tests/test_kd_loss.py, -m gpu
#   3. the benchmark (bench_kd_kernel.py), rows printed as measured, CSV to $OUT
# Budget: tests ~1-2 min, benchmark capped by BENCH_TIMEOUT (default 390 s). Well under 10 min.
# Usage: bash benchmarks/gpu_check.sh [--quick]   (extra args go to the benchmark)
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-$PWD/benchmarks/out}"
mkdir -p "$OUT"
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl 2>&1 | tail -2
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 - <<'PY'
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.get_device_name(0))
for mod in ("triton", "liger_kernel", "cut_cross_entropy", "pytest", "hypothesis"):
    try:
        m = __import__(mod); print(mod, getattr(m, "__version__", "?"))
    except Exception as e:
        print(mod, "MISSING:", e)
PY
echo "== GPU tests"
t0=$(date +%s)
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -m gpu -p no:cacheprovider --maxfail=10 --tb=short \
  tests/test_kd_triton.py tests/test_kd_loss.py 2>&1 | tee "$OUT/gpu_tests.txt" | tail -40
echo "tests: $(( $(date +%s) - t0 )) s"
echo "== benchmark"
t0=$(date +%s)
timeout "${BENCH_TIMEOUT:-390}" python3 benchmarks/bench_kd_kernel.py "$@" 2>&1 | tee "$OUT/bench_kd_kernel.txt"
echo "benchmark: $(( $(date +%s) - t0 )) s (rc ${PIPESTATUS[0]}; 124 = cut by BENCH_TIMEOUT, rows so far are in $OUT/bench_kd_kernel.csv)"
