#!/usr/bin/env bash
# One-shot GPU check (run from the repo root on the device machine):
#   1. install carried wheels from .whl/ into /tmp/site; an `asr-kd` shim on PATH
#   2. [--ptb-kd EXP] the PTB distillation runs (recipes/ptb/run_kd.sh stages 1-2,
#      all five models at once) in the background, concurrently with step 3
#   3. GPU tests: tests/test_kd_triton.py and tests/test_kd_loss.py, -m gpu
#   4. waits for step 2, packs its models into $OUT/ptb_kd_*.tar
#   5. the benchmark (bench_kd_kernel.py), rows printed as measured, CSV to $OUT
# Caps: TEST_TIMEOUT (240 s), PTB_TIMEOUT (300 s), BENCH_TIMEOUT (default 390 s).
# Usage: bash benchmarks/gpu_check.sh [--ptb-kd EXP] [benchmark args, e.g. --quick]
#   EXP holds data/ptb.{train,valid,test}.txt and the teacher in small/.
set -u
cd "$(dirname "$0")/.."
export OUT="${OUT:-$PWD/benchmarks/out}" PYTHONUNBUFFERED=1
mkdir -p "$OUT"
ptb_exp=""
if [ "${1:-}" = "--ptb-kd" ]; then ptb_exp=$2; shift 2; fi
if compgen -G ".whl/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl 2>&1 | tail -2
  export PYTHONPATH="/tmp/site:${PYTHONPATH:-}"
fi
export PYTHONPATH="$PWD:${PYTHONPATH:-}"
if ! command -v asr-kd > /dev/null; then
  mkdir -p /tmp/bin && printf '#!/bin/sh\nexec python3 -m asr_kd.cli "$@"\n' > /tmp/bin/asr-kd
  chmod +x /tmp/bin/asr-kd && export PATH="/tmp/bin:$PATH"
fi
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
ptb_pid=""
if [ -n "$ptb_exp" ]; then
  echo "== PTB distillation (background) in $ptb_exp"
  ( t0=$(date +%s)
    timeout "${PTB_TIMEOUT:-300}" bash recipes/ptb/run_kd.sh --ptb "$ptb_exp/data" --student-conf recipes/ptb/conf/student_gpu.yaml \
      --exp "$ptb_exp" --jobs 5 --stage 1 --stop-stage 2
    echo "ptb rc $? after $(( $(date +%s) - t0 )) s" ) > "$OUT/ptb_kd.txt" 2>&1 &
  ptb_pid=$!
fi
echo "== GPU tests"
t0=$(date +%s)
timeout "${TEST_TIMEOUT:-240}" python3 -m pytest -q -m gpu -p no:cacheprovider --maxfail=10 --tb=short \
  tests/test_kd_triton.py tests/test_kd_loss.py 2>&1 | tee "$OUT/gpu_tests.txt" | tail -40
echo "tests: $(( $(date +%s) - t0 )) s"
if [ -n "$ptb_pid" ]; then
  wait "$ptb_pid"
  cat "$OUT/ptb_kd.txt"
  for m in "$ptb_exp"/*/; do tail -n 2 "$m/metrics.csv" 2>/dev/null | sed "s|^|$(basename "$m"): |"; done
  tail -n 3 "$ptb_exp"/log/*.log
  # finished models (ppl.md written) travel as weights, unfinished ones as train_state.pt
  pack() {
    local tarf=$1; shift; local files=() m f
    for m in "$@"; do
      for f in $m/config.json $m/metrics.csv $m/words.txt ppl/$m.valid.json ppl/$m.test.json ppl/$m.test_sentence.json; do
        [ -f "$ptb_exp/$f" ] && files+=("$f")
      done
      if [ -f "$ptb_exp/ppl.md" ] && [ -f "$ptb_exp/$m/model.safetensors" ]; then files+=("$m/model.safetensors")
      elif [ -f "$ptb_exp/$m/train_state.pt" ]; then files+=("$m/train_state.pt"); fi
    done
    [ ${#files[@]} -gt 0 ] && tar -C "$ptb_exp" -cf "$OUT/$tarf" "${files[@]}"
  }
  pack ptb_kd_1.tar baseline student_none
  pack ptb_kd_2.tar student_prob student_rank
  pack ptb_kd_3.tar student_margin
  tar -C "$ptb_exp" -rf "$OUT/ptb_kd_3.tar" log $( [ -f "$ptb_exp/ppl.md" ] && echo ppl.md )
  ls -la "$OUT"
fi
echo "== benchmark"
t0=$(date +%s)
timeout "${BENCH_TIMEOUT:-390}" python3 benchmarks/bench_kd_kernel.py "$@" 2>&1 | tee "$OUT/bench_kd_kernel.txt"
echo "benchmark: $(( $(date +%s) - t0 )) s (rc ${PIPESTATUS[0]}; 124 = cut by BENCH_TIMEOUT, rows so far are in $OUT/bench_kd_kernel.csv)"
