# Environment for the recipe: the asr-kd command and sane defaults.
# The repository's .venv (made by `make demo` / `make test`) is used when present.
_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
if [ -x "$_root/.venv/bin/asr-kd" ]; then
  export PATH="$_root/.venv/bin:$PATH"
fi
export PYTHONUNBUFFERED=1
export LC_ALL=C.UTF-8
# Kaldi tools (lattice-to-nbest, nbest-to-linear) are only needed by
# local/import_kaldi_nbest.sh; put KALDI_ROOT/src/*bin on PATH there.
if [ -n "${KALDI_ROOT:-}" ]; then
  for d in latbin bin fstbin lmbin; do export PATH="$KALDI_ROOT/src/$d:$PATH"; done
fi
# glibc hands large freed buffers (a step's logits and gradients) back to the OS and then
# page-faults them in again on the next step; keeping them costs memory we have and saved
# about a third of a CPU training step (benchmarks/RESULTS.md, "Distillation cost").
export MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-4294967296}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-4294967296}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-268435456}
