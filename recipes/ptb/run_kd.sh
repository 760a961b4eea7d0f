#!/usr/bin/env bash
# PTB distillation experiment: teacher (Zaremba small, conf/small.yaml), a
# same-size-as-student baseline on hard labels, and one student per trust mode.
# Usage: recipes/ptb/run_kd.sh [--ptb DIR] [--exp DIR] [--jobs N] [--stage N]
#                              [--stop-stage N] [--device auto|cpu|cuda] [--student-conf YAML]
#                              [--seed N]   (seed of baseline and students, default 2)
#   stage 0: teacher; stage 1: baseline + 4 students (--jobs at a time; on one
#   GPU --jobs 5 runs them all at once); stage 2: perplexity table -> EXP/ppl.md
# Each training runs with --resume, so an interrupted run continues where it
# stopped; a model whose folder already holds model.safetensors and no
# train_state.pt newer than it is finished (train-lm/distill then only reload it).
set -euo pipefail
cd "$(dirname "$0")/../.."
ptb=../shared/data/ptb; exp=exp/ptb; jobs=2; stage=0; stop_stage=2; device=auto; sconf=recipes/ptb/conf/student.yaml; seed=2
while [[ $# -gt 0 ]]; do
  case $1 in
    --ptb) ptb=$2; shift 2 ;; --exp) exp=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;; --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;; --device) device=$2; shift 2 ;;
    --student-conf) sconf=$2; shift 2 ;; --seed) seed=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
tr=$ptb/ptb.train.txt; va=$ptb/ptb.valid.txt; te=$ptb/ptb.test.txt
mkdir -p "$exp/log"
students="student_none student_prob student_rank student_margin"

# run up to $jobs commands at once; each command is one string in "$@"
run_parallel() {
  local running=0 fail=0 c
  for c in "$@"; do
    bash -c "$c" &
    running=$((running + 1))
    if [ $running -ge $jobs ]; then wait -n || fail=1; running=$((running - 1)); fi
  done
  while [ $running -gt 0 ]; do wait -n || fail=1; running=$((running - 1)); done
  return $fail
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  echo "$(date) stage 0: teacher (2x200, Zaremba small)"
  asr-kd train-lm --config recipes/ptb/conf/small.yaml --train $tr --valid $va \
    --out $exp/small --seed 1 --resume --quiet --device $device > $exp/log/small.log 2>&1
fi
if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  echo "$(date) stage 1: baseline and students ($jobs at a time)"
  common="--config $sconf --train $tr --valid $va --seed $seed --resume --quiet --device $device"
  cmds=("asr-kd train-lm $common --vocab $exp/small --out $exp/baseline > $exp/log/baseline.log 2>&1")
  for name in $students; do
    cmds+=("asr-kd distill $common --teacher $exp/small --alpha 0.5 --tau 2 --trust ${name#student_} \
--trust-k 10 --trust-beta 1 --out $exp/$name > $exp/log/$name.log 2>&1")
  done
  run_parallel "${cmds[@]}" || { echo "$0: a training failed; see $exp/log/" >&2; exit 1; }
fi
if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  echo "$(date) stage 2: perplexities"
  models=""; cmds=()
  for m in small baseline $students; do
    [ -f $exp/$m/model.safetensors ] || continue
    models="$models $m"
    for spec in valid:$va:stream test:$te:stream test_sentence:$te:sentence; do
      IFS=: read -r tag text mode <<< "$spec"
      cmds+=("asr-kd ppl --model $exp/$m --text $text --mode $mode --json --quiet --device $device > $exp/$m/ppl_$tag.json")
    done
  done
  run_parallel "${cmds[@]}"
  {
    printf '| model | params | valid ppl (stream) | test ppl (stream) | test ppl (sentence) |\n|---|---|---|---|---|\n'
    for m in $models; do
      python3 - "$exp/$m" "$m" <<'PY'
import json, sys
d, name = sys.argv[1], sys.argv[2]
p = json.load(open(f"{d}/config.json"))["num_params"]
v = [round(json.load(open(f"{d}/ppl_{t}.json"))["ppl"], 2) for t in ("valid", "test", "test_sentence")]
print(f"| {name} | {p} | {v[0]} | {v[1]} | {v[2]} |")
PY
    done
  } | tee $exp/ppl.md
fi
