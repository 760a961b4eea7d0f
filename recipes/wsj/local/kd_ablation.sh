#!/usr/bin/env bash
# KD ablation on a finished recipe run: one student per variant, distilled from the run's
# teachers (live, or its top-K cache), then rescoring, tuning on dev and scoring as stage 7-8.
#
#   local/kd_ablation.sh --exp EXP --lm-exp LMEXP --lm-data LMDATA --student-conf CONF \
#       --first-pass-scores am [--text-filter RULES] [--jobs 2] \
#       "a0.5_t2_none:--alpha 0.5 --tau 2 --trust none --teacher-cache LMEXP/teacher_cache" ...
#
# Each variant is NAME:DISTILL-OPTIONS.  Students go to LMEXP/ablation/NAME, rescored lists
# and scores to EXP/ablation/NAME; the table (valid ppl, dev and eval WER) is printed at the end
# and written to EXP/ablation/table.md.  --jobs N variants train at once, one thread each.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
exp=; lm_exp=; lm_data=; student_conf=; first_pass_scores=am; text_filter=; jobs=2; seed=0
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --exp|--lm-exp|--lm-data|--student-conf|--first-pass-scores|--text-filter|--jobs|--seed)
      v=${1#--}; printf -v "${v//-/_}" '%s' "$2"; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
[ -n "$exp" ] && [ -n "$lm_exp" ] && [ -n "$lm_data" ] && [ -n "$student_conf" ] && [ $# -gt 0 ] \
  || { sed -n 2,12p "$0" >&2; exit 1; }
mkdir -p "$exp/ablation" "$lm_exp/ablation"
tf=(); [ -n "$text_filter" ] && tf=(--text-filter "$text_filter")

one() {  # NAME OPTIONS...: distil, rescore, tune, score
  local name=$1; shift
  local m=$lm_exp/ablation/$name d=$exp/ablation/$name
  mkdir -p "$d"
  if [ ! -f "$m/.done" ]; then
    asr-kd distill --threads 1 --config "$student_conf" --train "$lm_data/lm/train.txt" \
      --valid "$lm_data/lm/valid.txt" --out "$m" --seed "$seed" --resume --quiet "$@" \
      > "$d/distill.log" 2>&1
    touch "$m/.done"
  fi
  for set in dev eval; do
    asr-kd rescore --threads 1 --nbest "$exp/rescore/$set.all.jsonl.gz" --model "$m" \
      --name "$name" --out "$d/$set.jsonl.gz" "${tf[@]}" --quiet > "$d/rescore.$set.log" 2>&1
  done
  asr-kd tune --nbest "$d/dev.jsonl.gz" --scores "$first_pass_scores,lm:$name,oov:$name" \
    --signed "oov:$name" --wip --out "$d/weights.json" > "$d/tune.log"
  for set in dev eval; do
    asr-kd score --nbest "$d/$set.jsonl.gz" --weights "$d/weights.json" --json > "$d/$set.json"
  done
  asr-kd ppl --threads 1 --model "$m" --text "$lm_data/lm/valid.txt" --mode sentence \
    --json --quiet > "$d/ppl.json"
}

pids=(); names=(); rc=0
for spec in "$@"; do
  name=${spec%%:*}; opts=${spec#*:}
  names+=("$name")
  # shellcheck disable=SC2086  # the options are words
  one "$name" $opts &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then wait "${pids[0]}" || rc=1; pids=("${pids[@]:1}"); fi
done
for p in "${pids[@]}"; do wait "$p" || rc=1; done
[ $rc -eq 0 ] || { echo "$0: a variant failed (logs under $exp/ablation/)" >&2; exit 1; }

{
  echo "| variant | distill options | valid ppl (sentence) | dev WER | eval WER | mean trust w |"
  echo "|---|---|---|---|---|---|"
  for spec in "$@"; do
    name=${spec%%:*}; opts=${spec#*:}; d=$exp/ablation/$name
    python - "$d" "$lm_exp/ablation/$name" "$opts" "$name" <<'PY'
import csv, json, os, sys
d, m, opts, name = sys.argv[1:]
ppl = json.load(open(os.path.join(d, "ppl.json")))["ppl"]
dev = json.load(open(os.path.join(d, "dev.json")))["wer"]
ev = json.load(open(os.path.join(d, "eval.json")))["wer"]
rows = list(csv.DictReader(open(os.path.join(m, "metrics.csv"))))
w = rows[-1].get("trust", "-")
print(f"| {name} | `{opts}` | {ppl:.2f} | {dev:.2f} | {ev:.2f} | {w} |")
PY
  done
} > "$exp/ablation/table.md"
cat "$exp/ablation/table.md"
