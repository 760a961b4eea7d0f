#!/usr/bin/env bash
# PTB distillation experiment: teacher (Zaremba small, conf/small.yaml), a
# same-size-as-student baseline on hard labels, and one student per trust mode.
# Usage: recipes/ptb/run_kd.sh [--ptb DIR] [--exp DIR] [--jobs N] [--stage N]
#                              [--stop-stage N] [--device auto|cpu|cuda] [--student-conf YAML]
#                              [--seed N]   (seed of baseline and students, default 2)
#   stage 0: teacher; stage 1: baseline + 4 students (--jobs at a time; on one
#   GPU --jobs 5 runs them all at once); stage 2: perplexity table -> EXP/ppl.md
#   (from EXP/ppl/MODEL.{valid,test,test_sentence}.json: not in the model folders, whose
#   files are the inputs of the trainings that read them)
# Paths are relative to the repository root (it cd's there). A training that is done is
# skipped (recipes/utils/steps.sh: a sentinel under EXP/.done with its options and inputs);
# each runs with --resume, so an interrupted run continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/utils/options.sh  # opts, opt_help, parse_options: the parser of every recipe
. recipes/utils/steps.sh    # log, done_or_run DIR NAME cmd...: the sentinel scheme
. recipes/utils/outputs.sh  # to FILE cmd... (atomic outputs), lock_dirs DIR...
. recipes/utils/jobs.sh     # spawn cmd..., wait_jobs WHAT: jobs side by side
opts ptb=../shared/data/ptb exp=exp/ptb jobs=2 stage=0 stop_stage=2 device=auto
opts student_conf=recipes/ptb/conf/student.yaml seed=2
opt_help ptb "folder of ptb.{train,valid,test}.txt"
opt_help exp "experiment folder (models, logs, ppl.md)"
opt_help jobs "trainings of stage 1 run at once"
opt_help stage "first stage to run (0 teacher, 1 baseline and students, 2 perplexities)"
opt_help stop_stage "last stage to run"
opt_help device "auto | cpu | cuda"
opt_help student_conf "config YAML of the baseline and the students"
opt_help seed "seed of the baseline and the students (the teacher's is 1)"
parse_options "$@"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
train_cmd=${train_cmd:-recipes/utils/run_local.sh}  # LOG COMMAND...: the output in LOG
max_jobs=$jobs
step_outputs_under=("$exp")
tr=$ptb/ptb.train.txt; va=$ptb/ptb.valid.txt; te=$ptb/ptb.test.txt
mkdir -p "$exp/log"
lock_dirs "$exp"
students="student_none student_prob student_rank student_margin"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "stage 0: teacher (2x200, Zaremba small)"
  done_or_run "$exp" small $train_cmd "$exp/log/small.log" \
    asr-kd train-lm --config recipes/ptb/conf/small.yaml --train "$tr" --valid "$va" \
      --out "$exp/small" --seed 1 --resume --quiet --device "$device"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "stage 1: baseline and students ($jobs at a time)"
  common=(--config "$student_conf" --train "$tr" --valid "$va" --seed "$seed" --resume --quiet --device "$device")
  spawn done_or_run "$exp" baseline $train_cmd "$exp/log/baseline.log" \
    asr-kd train-lm "${common[@]}" --vocab "$exp/small" --out "$exp/baseline"
  for name in $students; do
    spawn done_or_run "$exp" "$name" $train_cmd "$exp/log/$name.log" \
      asr-kd distill "${common[@]}" --teacher "$exp/small" --alpha 0.5 --tau 2 --trust "${name#student_}" \
        --trust-k 10 --trust-beta 1 --out "$exp/$name"
  done
  wait_jobs "a training (see $exp/log/)" || exit 1
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "stage 2: perplexities"
  models=()
  for m in small baseline $students; do
    [ -f "$exp/$m/model.safetensors" ] || continue
    models+=("$m")
    for spec in valid:$va:stream test:$te:stream test_sentence:$te:sentence; do
      IFS=: read -r tag text mode <<< "$spec"
      spawn to "$exp/ppl/$m.$tag.json" asr-kd ppl --model "$exp/$m" --text "$text" --mode "$mode" \
        --json --quiet --device "$device"
    done
  done
  wait_jobs "a perplexity" || exit 1
  table="| model | params | valid ppl (stream) | test ppl (stream) | test ppl (sentence) |
|---|---|---|---|---|"
  for m in "${models[@]}"; do
    table+=$'\n'$(python3 - "$exp/$m" "$exp/ppl/$m" "$m" <<'PY'
import json, sys
d, ppl, name = sys.argv[1:]
p = json.load(open(f"{d}/config.json"))["num_params"]
v = [round(json.load(open(f"{ppl}.{t}.json"))["ppl"], 2) for t in ("valid", "test", "test_sentence")]
print(f"| {name} | {p} | {v[0]} | {v[1]} | {v[2]} |")
PY
)
  done
  to "$exp/ppl.md" echo "$table"
  cat "$exp/ppl.md"
fi
