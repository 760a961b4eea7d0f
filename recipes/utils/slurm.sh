#!/usr/bin/env bash
# Usage: utils/slurm.sh [SRUN OPTIONS...] LOG COMMAND [ARGS...]
# Runs COMMAND through `srun` (waits for it), output to LOG.
opts=()
while [[ $# -gt 0 && $1 == --* ]]; do opts+=("$1"); shift; done
log=$1; shift
mkdir -p "$(dirname "$log")"
command -v srun >/dev/null || { echo "$0: srun not found (not a Slurm cluster?)" >&2; exit 1; }
srun "${opts[@]}" --output="$log" --error="$log" "$@"
