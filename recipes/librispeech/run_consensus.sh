#!/usr/bin/env bash
# 1-best versus consensus decoding with tuned weights (asr-kd tune/score --decode), on
#  (a) the ESPnet 30-best lists: tuned on dev_clean and on dev_other, each applied to both sets;
#  (b) SRILM NBestList2.0 lists written from every 4th utterance of the same sets
#      (local/to_srilm_nbest2.py: am = 0.6 decoder + 0.4 ctc, lm0 = lm, as bytelogs),
#      tuned on the dev_clean part, applied to both parts;
#  (c) the HyPoradise Whisper 5-best lists (CHiME-4: rank only; WSJ: score, rank), repeats
#      dropped, split by utterance-id hash into a tuning half and a test half.
# Usage: recipes/librispeech/run_consensus.sh [--shared DIR] [--exp DIR] [--part abc]
# Results: $exp/results.txt (one %WER line per tuned-on / scored set / decode mode), made
# whole from the parts' $exp/NAME/results.TUNESET.txt (a part run alone keeps the others').
# The list conversions are skipped when done (recipes/utils/steps.sh: sentinels in $exp/.done).
set -euo pipefail
here=$(dirname "$0")
. "$here/../utils/options.sh"  # opts, opt_help, parse_options: the parser of every recipe
. "$here/../utils/steps.sh"    # log, done_or_run DIR NAME cmd...: the sentinel scheme
. "$here/../utils/outputs.sh"  # to FILE cmd... (atomic outputs), lock_dirs DIR...
opts shared=../shared/data exp=exp/consensus part=abc
opt_help shared "the shared data folder"
opt_help exp "experiment folder"
opt_help part "which lists: a ESPnet, b SRILM, c Whisper (HyPoradise), any of them"
parse_options "$@"
D=$shared/librispeech-espnet-nbest
[ -d "$shared" ] || { echo "$0: $shared not found (give --shared)" >&2; exit 1; }
mkdir -p "$exp"
lock_dirs "$exp"
step_outputs_under=("$exp")

# run NAME TUNESET SETS FORMAT KEYS NBEST_OF REF_OF: tune 1best and consensus, score SETS;
# the result lines in $exp/NAME/results.TUNESET.txt
run() {
  local name=$1 tune=$2 sets=$3 fmt=$4 keys=$5 nb_of=$6 ref_of=$7 m s line lines=
  local o=$exp/$name
  mkdir -p "$o"
  for m in 1best consensus; do
    refs=(); [ -n "$ref_of" ] && refs=(--ref "$(eval echo "$ref_of" | sed "s/SET/$tune/")")
    to "$o/tune.$m.$tune.log" asr-kd tune --nbest "$(eval echo "$nb_of" | sed "s/SET/$tune/")" \
      --format "$fmt" "${refs[@]}" --scores "$keys" --wip --decode $m --out "$o/w.$m.$tune.json"
    for s in $sets; do
      refs=(); [ -n "$ref_of" ] && refs=(--ref "$(eval echo "$ref_of" | sed "s/SET/$s/")")
      to "$o/score.$m.$tune.$s.log" asr-kd score --nbest "$(eval echo "$nb_of" | sed "s/SET/$s/")" \
        --format "$fmt" "${refs[@]}" --weights "$o/w.$m.$tune.json" --out-hyp "$o/hyp.$m.$tune.$s"
      line="$name tuned on $tune, $s, $m: $(head -1 "$o/score.$m.$tune.$s.log")"
      echo "$line"; lines+=$line$'\n'
    done
  done
  to "$o/results.$tune.txt" printf '%s' "$lines"
}

# srilm_lists NBEST OUT_DIR OPTIONS...: local/to_srilm_nbest2.py into a fresh OUT_DIR (no
# lists left from a conversion with other options)
srilm_lists() { rm -rf "$2"; python "$here/local/to_srilm_nbest2.py" "$@"; }

# hyporadise_split T LIST: the Whisper list of task T, repeats dropped, split by utterance-id
# hash into $exp/hyporadise/T/{tune,test}.jsonl.gz
hyporadise_split() {
  local t=$1 list=$2
  asr-kd convert-nbest --from json --to jsonl --dedup "$list" "$exp/hyporadise/$t.jsonl"
  python "$here/../wsj/local/split_nbest.py" "$exp/hyporadise/$t.jsonl" "$exp/hyporadise/$t" \
    --buckets 2 --part tune=0 --part test=1
}

if [[ $part == *a* ]]; then
  for t in dev_clean dev_other; do
    run espnet $t "dev_clean dev_other" espnet decoder,ctc,lm '$D/SET' '$D/SET/ref/text'
  done
fi
if [[ $part == *b* ]]; then
  for s in dev_clean dev_other; do
    done_or_run "$exp" srilm_$s srilm_lists "$D/$s" "$exp/srilm/$s" --format espnet \
      --ref "$D/$s/ref/text" --every 4
  done
  run srilm dev_clean "dev_clean dev_other" srilm am,lm0 '$exp/srilm/SET/nbest' '$exp/srilm/SET/ref.txt'
fi
if [[ $part == *c* ]]; then
  for t in chime4 wsj; do
    mkdir -p "$exp/hyporadise"
    done_or_run "$exp" hyporadise_$t hyporadise_split $t "$shared/hyporadise/${t}_dev.json"
    keys=rank; [ $t = wsj ] && keys=score,rank
    run hyporadise_$t tune "tune test" jsonl $keys '$exp/hyporadise/'$t'/SET.jsonl.gz' ''
  done
fi
# The results of every part run so far, in the order of a full run.
results=()
for f in "$exp"/espnet/results.dev_clean.txt "$exp"/espnet/results.dev_other.txt \
  "$exp"/srilm/results.dev_clean.txt "$exp"/hyporadise_{chime4,wsj}/results.tune.txt; do
  [ -f "$f" ] && results+=("$f")
done
to "$exp/results.txt" cat "${results[@]}"
