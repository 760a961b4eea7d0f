#!/usr/bin/env bash
# 1-best versus consensus decoding with tuned weights (asr-kd tune/score --decode), on
#  (a) the ESPnet 30-best lists: tuned on dev_clean and on dev_other, each applied to both sets;
#  (b) SRILM NBestList2.0 lists written from every 4th utterance of the same sets
#      (local/to_srilm_nbest2.py: am = 0.6 decoder + 0.4 ctc, lm0 = lm, as bytelogs),
#      tuned on the dev_clean part, applied to both parts;
#  (c) the HyPoradise Whisper 5-best lists (CHiME-4: rank only; WSJ: score, rank), repeats
#      dropped, split by utterance-id hash into a tuning half and a test half.
# Usage: recipes/librispeech/run_consensus.sh [--shared DIR] [--exp DIR] [--part abc]
# Results: $exp/results.txt (one %WER line per tuned-on / scored set / decode mode).
set -euo pipefail
shared=../shared/data
exp=exp/consensus
part=abc
while [ $# -gt 0 ]; do
  case $1 in
    --shared) shared=$2; shift 2 ;;
    --exp) exp=$2; shift 2 ;;
    --part) part=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
D=$shared/librispeech-espnet-nbest
[ -d "$shared" ] || { echo "$0: $shared not found (give --shared)" >&2; exit 1; }
mkdir -p "$exp"
here=$(dirname "$0")

# run NAME TUNESET SETS FORMAT KEYS NBEST_OF REF_OF: tune 1best and consensus, score SETS
run() {
  local name=$1 tune=$2 sets=$3 fmt=$4 keys=$5 nb_of=$6 ref_of=$7 m s
  local o=$exp/$name
  mkdir -p "$o"
  for m in 1best consensus; do
    refs=(); [ -n "$ref_of" ] && refs=(--ref "$(eval echo "$ref_of" | sed "s/SET/$tune/")")
    asr-kd tune --nbest "$(eval echo "$nb_of" | sed "s/SET/$tune/")" --format "$fmt" \
      "${refs[@]}" --scores "$keys" --wip --decode $m \
      --out "$o/w.$m.$tune.json" > "$o/tune.$m.$tune.log"
    for s in $sets; do
      refs=(); [ -n "$ref_of" ] && refs=(--ref "$(eval echo "$ref_of" | sed "s/SET/$s/")")
      asr-kd score --nbest "$(eval echo "$nb_of" | sed "s/SET/$s/")" --format "$fmt" \
        "${refs[@]}" --weights "$o/w.$m.$tune.json" \
        --out-hyp "$o/hyp.$m.$tune.$s" > "$o/score.$m.$tune.$s.log"
      echo "$name tuned on $tune, $s, $m: $(head -1 "$o/score.$m.$tune.$s.log")" | tee -a "$exp/results.txt"
    done
  done
}

if [[ $part == *a* ]]; then
  for t in dev_clean dev_other; do
    run espnet $t "dev_clean dev_other" espnet decoder,ctc,lm '$D/SET' '$D/SET/ref/text'
  done
fi
if [[ $part == *b* ]]; then
  for s in dev_clean dev_other; do
    [ -f "$exp/srilm/$s/ref.txt" ] || python "$here/local/to_srilm_nbest2.py" "$D/$s" \
      "$exp/srilm/$s" --format espnet --ref "$D/$s/ref/text" --every 4
  done
  run srilm dev_clean "dev_clean dev_other" srilm am,lm0 '$exp/srilm/SET/nbest' '$exp/srilm/SET/ref.txt'
fi
if [[ $part == *c* ]]; then
  for t in chime4 wsj; do
    mkdir -p "$exp/hyporadise"
    [ -f "$exp/hyporadise/$t/test.jsonl.gz" ] || {
      asr-kd convert-nbest --from json --to jsonl --dedup "$shared/hyporadise/${t}_dev.json" \
        "$exp/hyporadise/$t.jsonl"
      python "$here/../wsj/local/split_nbest.py" "$exp/hyporadise/$t.jsonl" "$exp/hyporadise/$t" \
        --buckets 2 --part tune=0 --part test=1; }
    keys=rank; [ $t = wsj ] && keys=score,rank
    run hyporadise_$t tune "tune test" jsonl $keys '$exp/hyporadise/'$t'/SET.jsonl.gz' ''
  done
fi
