#!/usr/bin/env bash
# KD ablation on a finished recipe run: one student per variant, distilled from the run's
# teachers (live, or its top-K cache), then rescoring, tuning on dev and scoring as stage 7-8.
#
#   local/kd_ablation.sh --exp EXP --lm-exp LMEXP --lm-data LMDATA --student-conf CONF \
#       --first-pass-scores am [--text-filter RULES] [--jobs 2] [--seed 0] \
#       "a0.5_t2_none:--alpha 0.5 --tau 2 --trust none --teacher-cache LMEXP/teacher_cache" ...
#
# Each variant is NAME:DISTILL-OPTIONS.  Students go to LMEXP/ablation/NAME, rescored lists
# and scores to EXP/ablation/NAME; the table (valid ppl, dev and eval WER) is printed at the end
# and written to EXP/ablation/table.md.  --jobs N variants train at once, one thread each.
# A student that is done is not trained again (sentinel LMEXP/ablation/.done/NAME, with its
# options and inputs: other options retrain it).
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
. ./cmd.sh
. ../utils/options.sh  # opts, opt_help, parse_options: the parser of every recipe
. ../utils/steps.sh    # log, done_or_run DIR NAME cmd...: the sentinel scheme
. ../utils/outputs.sh  # to FILE cmd... (atomic outputs), lock_dirs DIR...
. ../utils/jobs.sh     # spawn cmd..., wait_jobs WHAT: jobs side by side
opts exp= lm_exp= lm_data= student_conf= first_pass_scores=am text_filter= jobs=2 seed=0
opt_help exp "the finished run's experiment folder (its rescore/*.all.jsonl.gz)"
opt_help lm_exp "its LM folder (the students go to LMEXP/ablation)"
opt_help lm_data "its LM data folder (lm/train.txt, lm/valid.txt)"
opt_help student_conf "student config YAML"
opt_help first_pass_scores "the recogniser's score keys, tuned with each student"
opt_help text_filter "rules file or rules rewriting hypotheses before LM scoring"
opt_help jobs "variants trained at once"
opt_help seed "seed of every student"
opts_usage="[options] NAME:DISTILL-OPTIONS..."
# The words that are not our options are the variants; an option of no one is a typo.
parse_options --pass-unknown "$@"
for w in "${passed[@]}"; do
  case $w in --*) echo "$0: unknown option ${w%%=*} (see $0 --help)" >&2; exit 1 ;; esac
done
set -- "${passed[@]}"
[ -n "$exp" ] && [ -n "$lm_exp" ] && [ -n "$lm_data" ] && [ -n "$student_conf" ] && [ $# -gt 0 ] \
  || { sed -n 2,13p "$0" >&2; exit 1; }
mkdir -p "$exp/ablation" "$lm_exp/ablation"
lock_dirs "$exp/ablation" "$lm_exp/ablation"
step_outputs_under=("$lm_exp/ablation")
max_jobs=$jobs
tf=(); [ -n "$text_filter" ] && tf=(--text-filter "$text_filter")

one() {  # NAME OPTIONS...: distil, rescore, tune, score
  local name=$1; shift
  local m=$lm_exp/ablation/$name d=$exp/ablation/$name
  mkdir -p "$d"
  done_or_run "$lm_exp/ablation" "$name" $train_cmd "$d/distill.log" \
    asr-kd distill --threads 1 --config "$student_conf" --train "$lm_data/lm/train.txt" \
      --valid "$lm_data/lm/valid.txt" --out "$m" --seed "$seed" --resume --quiet "$@"
  for set in dev eval; do
    $cpu_cmd "$d/rescore.$set.log" asr-kd rescore --threads 1 --nbest "$exp/rescore/$set.all.jsonl.gz" \
      --model "$m" --name "$name" --out "$d/$set.jsonl.gz" "${tf[@]}" --quiet
  done
  to "$d/tune.log" asr-kd tune --nbest "$d/dev.jsonl.gz" --scores "$first_pass_scores,lm:$name,oov:$name" \
    --signed "oov:$name" --wip --out "$d/weights.json"
  for set in dev eval; do
    to "$d/$set.json" asr-kd score --nbest "$d/$set.jsonl.gz" --weights "$d/weights.json" --json
  done
  to "$d/ppl.json" asr-kd ppl --threads 1 --model "$m" --text "$lm_data/lm/valid.txt" --mode sentence \
    --json --quiet
}

for spec in "$@"; do
  name=${spec%%:*}; dopts=${spec#*:}
  # shellcheck disable=SC2086  # the options are words
  spawn one "$name" $dopts
done
wait_jobs "a variant (logs under $exp/ablation/)" || exit 1

rows="| variant | distill options | valid ppl (sentence) | dev WER | eval WER | mean trust w |
|---|---|---|---|---|---|"
for spec in "$@"; do
  name=${spec%%:*}; dopts=${spec#*:}; d=$exp/ablation/$name
  rows+=$'\n'$(python - "$d" "$lm_exp/ablation/$name" "$dopts" "$name" <<'PY'
import csv, json, os, sys
d, m, opts, name = sys.argv[1:]
ppl = json.load(open(os.path.join(d, "ppl.json")))["ppl"]
dev = json.load(open(os.path.join(d, "dev.json")))["wer"]
ev = json.load(open(os.path.join(d, "eval.json")))["wer"]
rows = list(csv.DictReader(open(os.path.join(m, "metrics.csv"))))
w = rows[-1].get("trust", "-")
print(f"| {name} | `{opts}` | {ppl:.2f} | {dev:.2f} | {ev:.2f} | {w} |")
PY
)
done
to "$exp/ablation/table.md" echo "$rows"
cat "$exp/ablation/table.md"
