#!/usr/bin/env bash
# PTB distillation experiment: teacher (Zaremba small, conf/small.yaml), a
# same-size-as-student baseline on hard labels, and one student per trust mode.
# Usage: recipes/ptb/run_kd.sh [--ptb DIR] [--exp DIR] [--jobs N] [--stage N]
# Each model is skipped when its folder already holds model.safetensors; every
# training runs with --resume, so an interrupted run continues where it stopped.
set -euo pipefail
cd "$(dirname "$0")/../.."
ptb=../shared/data/ptb; exp=exp/ptb; jobs=2; stage=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --ptb) ptb=$2; shift 2 ;; --exp) exp=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;; --stage) stage=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
tr=$ptb/ptb.train.txt; va=$ptb/ptb.valid.txt; te=$ptb/ptb.test.txt
mkdir -p "$exp/log"


if [ $stage -le 0 ]; then
  echo "$(date) teacher (2x200, Zaremba small)"
  asr-kd train-lm --config recipes/ptb/conf/small.yaml --train $tr --valid $va \
    --out $exp/small --seed 1 --resume --quiet > $exp/log/small.log 2>&1
fi
if [ $stage -le 1 ]; then
  echo "$(date) baseline and students ($jobs at a time)"
  common=(--config recipes/ptb/conf/student.yaml --train $tr --valid $va --seed 2 --resume --quiet)
  running=0
  for name in baseline student_none student_prob student_rank student_margin; do
    if [ $name = baseline ]; then
      cmd=(asr-kd train-lm "${common[@]}" --vocab $exp/small --out $exp/$name)
    else
      cmd=(asr-kd distill "${common[@]}" --teacher $exp/small --alpha 0.5 --tau 2 \
           --trust ${name#student_} --trust-k 10 --trust-beta 1 --out $exp/$name)
    fi
    "${cmd[@]}" > $exp/log/$name.log 2>&1 &
    running=$((running + 1))
    if [ $running -ge $jobs ]; then wait -n; running=$((running - 1)); fi
  done
  wait
fi
echo "$(date) perplexities"
printf '| model | params | valid ppl (stream) | test ppl (stream) | test ppl (sentence) |\n|---|---|---|---|---|\n'
for m in small baseline student_none student_prob student_rank student_margin; do
  [ -f $exp/$m/config.json ] || continue
  p=$(python3 -c "import json;print(json.load(open('$exp/$m/config.json'))['num_params'])")
  v=$(asr-kd ppl --model $exp/$m --text $va --mode stream --json --quiet | python3 -c "import json,sys;print(round(json.load(sys.stdin)['ppl'],2))")
  s=$(asr-kd ppl --model $exp/$m --text $te --mode stream --json --quiet | python3 -c "import json,sys;print(round(json.load(sys.stdin)['ppl'],2))")
  t=$(asr-kd ppl --model $exp/$m --text $te --mode sentence --json --quiet | python3 -c "import json,sys;print(round(json.load(sys.stdin)['ppl'],2))")
  echo "| $m | $p | $v | $s | $t |"
done
