#!/usr/bin/env bash
# What each block of an LM-input rules file is worth in WER: for no filter, all rules, and all
# rules but one block at a time, rescore a finished run's dev and eval lists with one system's
# model(s), tune on dev (first-pass keys, the LM, its OOV count, wip) and score both sets.
#
#   local/filter_ablation.sh --exp exp/chime4 --rules conf/whisper_to_ptb.rules \
#       --first-pass-scores rank --model "exp/ptb/teacher1 exp/ptb/teacher2" [--blocks "numbers money"]
#
# Writes EXP/filter_ablation/table.md (dev and eval WER, hypothesis OOV rate) and prints it.
set -euo pipefail
cd "$(dirname "$0")/.."
. ./path.sh
. ./cmd.sh
. ../utils/options.sh  # opts, opt_help, parse_options: the parser of every recipe
. ../utils/outputs.sh  # to FILE cmd... (atomic outputs), lock_dirs DIR...
opts exp= rules= first_pass_scores= model= blocks=
opt_help exp "the finished run's experiment folder (its rescore/*.all.jsonl.gz)"
opt_help rules "the LM-input rules file"
opt_help first_pass_scores "the recogniser's score keys, tuned with the LM"
opt_help model "the system's model folder(s), space-separated"
opt_help blocks "the blocks to leave out one at a time (default: every block of --rules)"
parse_options "$@"
[ -n "$exp" ] && [ -n "$rules" ] && [ -n "$first_pass_scores" ] && [ -n "$model" ] \
  || { sed -n 2,9p "$0" >&2; exit 1; }
[ -n "$blocks" ] || blocks=$(python -m asr_kd.textfilter --list "$rules" | cut -f1)
d=$exp/filter_ablation; mkdir -p "$d"
lock_dirs "$d"
variants=("none::" "all::$rules")
for b in $blocks; do variants+=("-$b::$rules -$b"); done
# One row per variant (rescored, tuned on dev, scored), shown as it comes; the rescoring's
# lines go to $d/rescore.SET.log.
header="| LM input filter | dev WER | eval WER | OOV words per 100 hypothesis words (dev) |
|---|---|---|---|"
echo "$header"; rows=
for v in "${variants[@]}"; do
  name=${v%%::*}; spec=${v#*::}
  tf=(); [ -n "$spec" ] && tf=(--text-filter "$spec")
  for set in dev eval; do
    $cpu_cmd "$d/rescore.$set.log" asr-kd rescore --nbest "$exp/rescore/$set.all.jsonl.gz" \
      --model $model --name f --out "$d/$set.jsonl.gz" --stats-out "$d/$set.stats.json" "${tf[@]}" --quiet
  done
  asr-kd tune --nbest "$d/dev.jsonl.gz" --scores "$first_pass_scores,lm:f,oov:f" --signed oov:f \
    --wip --out "$d/weights.json" > /dev/null
  for set in dev eval; do
    to "$d/$set.json" asr-kd score --nbest "$d/$set.jsonl.gz" --weights "$d/weights.json" --json
  done
  row=$(python - "$d" "$name" <<'PY'
import gzip, json, os, sys
d, name = sys.argv[1:]
wer = {s: json.load(open(os.path.join(d, f"{s}.json")))["wer"] for s in ("dev", "eval")}
oov = words = 0
with gzip.open(os.path.join(d, "dev.jsonl.gz"), "rt") as f:
    for line in f:
        for h in json.loads(line)["hyps"]:
            oov += h["scores"]["oov:f"]; words += h["scores"].get("nwords", len(h["text"].split()))
print(f"| {name} | {wer['dev']:.2f} | {wer['eval']:.2f} | {100 * oov / max(words, 1):.2f} |")
PY
)
  echo "$row"; rows+=$row$'\n'
done
to "$d/table.md" printf '%s\n%s' "$header" "$rows"
