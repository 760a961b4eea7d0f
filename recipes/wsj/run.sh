#!/usr/bin/env bash
# asr_kd recipe: teacher(s) -> same-size baseline -> distilled student ->
# N-best rescoring of dev and eval (weights tuned on dev only) -> report.
#
# With no arguments it runs on an embedded mini task generated here
# (WSJ-like text and simulated 20-best lists as Kaldi nbest-to-linear archives).
# Real data:
#   ./run.sh --wsj1-lm-root /data/LDC94S13A/wsj1 \
#     --nbest-dev exp_kaldi/dev93_nbest --nbest-eval exp_kaldi/eval92_nbest --nbest-format kaldi \
#     --ref-dev data/test_dev93/text --ref-eval data/test_eval92/text
# (make the archives with local/import_kaldi_nbest.sh), or --lm-text FILE for any LM text.
#
# Stages:  0 data   1 vocabulary   2 teacher(s)   3 baseline   4 teacher cache (optional)
#          5 student   6 perplexities   7 rescoring   8 tuning + scoring   9 report
# --nj N splits stage 7 into N parallel shard jobs per system (run by $cpu_cmd, see cmd.sh)
# followed by `asr-kd merge`, which checks every shard; the output is identical to --nj 1.
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh

# ---- options (each can be given as --name value) ---------------------------
stage=0
stop_stage=9
data=data
exp=exp
lm_text=
wsj1_lm_root=
nbest_dev=
nbest_eval=
nbest_format=
ref_dev=
ref_eval=
first_pass_scores=am,lm0
text_filter=
mini_words=150000
mini_utts=300
mini_nbest=20
valid_every=50
vocab_size=20000
teacher_conf=conf/teacher.yaml
student_conf=conf/student.yaml
num_teachers=1
ensemble=prob
use_cache=false
topk=32
alpha=0.5
tau=2.0
trust=none
trust_k=10
trust_beta=1.0
device=auto
seed=0
batch_tokens=20000
nj=1
quiet=true
_opts="stage stop_stage data exp lm_text wsj1_lm_root nbest_dev nbest_eval nbest_format ref_dev
ref_eval first_pass_scores text_filter mini_words mini_utts mini_nbest valid_every vocab_size teacher_conf
student_conf num_teachers ensemble use_cache topk alpha tau trust trust_k trust_beta device seed
batch_tokens nj quiet"
. local/parse_options.sh

log() { echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }
# A step's sentinel: `done_or_run NAME cmd...` skips work already finished.
done_or_run() {
  local name=$1; shift
  if [ -f "$exp/.done/$name" ]; then log "  $name: done before, skipping"; return 0; fi
  "$@"
  mkdir -p "$exp/.done"; touch "$exp/.done/$name"
}
# `rescore_sharded OUT STATS LOG_PREFIX ARGS...`: $nj jobs of `asr-kd rescore ARGS --shard i/$nj`
# at once through $cpu_cmd, then a merge that refuses missing or stale shards.
rescore_sharded() {
  local out=$1 stats=$2 logp=$3; shift 3
  local i p rc=0 pids=() st
  for i in $(seq 0 $((nj - 1))); do
    st=(); [ "$i" -eq 0 ] && st=(--stats-out "$stats")  # one job's speed, for the report
    $cpu_cmd "$logp.$i.log" asr-kd rescore "$@" --out "$out" --shard "$i/$nj" "${st[@]}" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc -eq 0 ] || { echo "$0: a rescoring shard job failed (logs: $logp.*.log)" >&2; return 1; }
  asr-kd merge --kind rescore --num-shards "$nj" "$out"
}
q=; [ "$quiet" = true ] && q=--quiet
common=(--device "$device" $q)
mkdir -p "$data" "$exp"

teachers=()
for k in $(seq 1 "$num_teachers"); do teachers+=("$exp/teacher$k"); done
fp_keys=$first_pass_scores

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: data preparation"
  if [ -z "$lm_text$wsj1_lm_root" ]; then
    if [ ! -f "$data/.done.mini" ]; then
      python local/make_mini_task.py --quiet --n-train-words "$mini_words" \
        --n-dev "$mini_utts" --n-eval "$mini_utts" --nbest "$mini_nbest" "$data/mini"
      touch "$data/.done.mini"
    fi
    cp "$data/mini/lm_text.txt" "$data/lm_all.txt"
    nbest_dev=$data/mini/dev/nbest; nbest_eval=$data/mini/eval/nbest; nbest_format=kaldi
    ref_dev=$data/mini/dev/text; ref_eval=$data/mini/eval/text
  else
    opt=(); [ -n "$lm_text" ] && opt=(--lm-text "$lm_text") || opt=(--wsj1-lm-root "$wsj1_lm_root")
    local/prepare_lm_text.sh "${opt[@]}" "$data/lm_prep"
    cp "$data/lm_prep/all.txt" "$data/lm_all.txt"
    for v in nbest_dev nbest_eval ref_dev ref_eval; do
      [ -n "${!v}" ] || { echo "$0: real data needs --${v//_/-}" >&2; exit 1; }
    done
  fi
  # Every valid_every-th LM sentence is held out for validation.
  mkdir -p "$data/lm"
  awk -v n="$valid_every" 'NR % n == 0' "$data/lm_all.txt" > "$data/lm/valid.txt"
  awk -v n="$valid_every" 'NR % n != 0' "$data/lm_all.txt" > "$data/lm/train.txt"
  fmt=(); [ -n "$nbest_format" ] && fmt=(--from "$nbest_format")
  for set in dev eval; do
    src=nbest_$set; ref=ref_$set
    asr-kd convert-nbest "${fmt[@]}" --to jsonl --ref "${!ref}" "${!src}" "$data/$set.nbest.jsonl.gz"
    cp "${!ref}" "$data/$set.ref"
  done
  log "  LM text: $(wc -l < "$data/lm/train.txt") train / $(wc -l < "$data/lm/valid.txt") valid sentences"
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: vocabulary"
  done_or_run vocab asr-kd vocab --text "$data/lm/train.txt" --out "$data/lang" --max-size "$vocab_size"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: teacher training ($num_teachers model(s))"
  for k in $(seq 1 "$num_teachers"); do
    done_or_run teacher$k $train_cmd "$exp/log/train_teacher$k.log" \
      asr-kd train-lm --config "$teacher_conf" --train "$data/lm/train.txt" --valid "$data/lm/valid.txt" \
        --vocab "$data/lang" --out "$exp/teacher$k" --seed $((seed + k)) --resume "${common[@]}"
  done
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  log "Stage 3: same-size baseline (hard labels only)"
  done_or_run baseline $train_cmd "$exp/log/train_baseline.log" \
    asr-kd train-lm --config "$student_conf" --train "$data/lm/train.txt" --valid "$data/lm/valid.txt" \
      --vocab "$data/lang" --out "$exp/baseline" --seed "$seed" --resume "${common[@]}"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ "$use_cache" = true ]; then
  log "Stage 4: teacher cache (top-$topk)"
  done_or_run cache $train_cmd "$exp/log/cache_teacher.log" \
    asr-kd cache-teacher --teacher "${teachers[@]}" --ensemble "$ensemble" --text "$data/lm/train.txt" \
      --config "$student_conf" --topk "$topk" --out "$exp/teacher_cache" "${common[@]}"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: student distillation (alpha $alpha, tau $tau, trust $trust)"
  if [ "$use_cache" = true ]; then src=(--teacher-cache "$exp/teacher_cache")
  else src=(--teacher "${teachers[@]}" --ensemble "$ensemble"); fi
  done_or_run student $train_cmd "$exp/log/distill_student.log" \
    asr-kd distill --config "$student_conf" --train "$data/lm/train.txt" --valid "$data/lm/valid.txt" \
      --out "$exp/student" "${src[@]}" --alpha "$alpha" --tau "$tau" --trust "$trust" \
      --trust-k "$trust_k" --trust-beta "$trust_beta" --seed "$seed" --resume "${common[@]}"
fi

systems=(teacher baseline student)
models_of() { case $1 in teacher) echo "${teachers[@]}" ;; *) echo "$exp/$1" ;; esac; }

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: perplexities (sentence mode, validation text)"
  mkdir -p "$exp/ppl"
  for s in "${systems[@]}"; do
    for m in $(models_of $s); do
      asr-kd ppl --model "$m" --text "$data/lm/valid.txt" --mode sentence --json "${common[@]}" \
        > "$exp/ppl/$(basename $m).json"
    done
  done
  # The teacher row reports the (first) teacher; an ensemble's members each have a file.
  cp "$exp/ppl/teacher1.json" "$exp/ppl/teacher.json"
  for s in "${systems[@]}"; do log "  $s: $(cat "$exp/ppl/$s.json")"; done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: rescoring dev and eval ($nj job(s) per system)"
  mkdir -p "$exp/rescore"
  tf=(); [ -n "$text_filter" ] && tf=(--text-filter "$text_filter")
  for set in dev eval; do
    in=$data/$set.nbest.jsonl.gz
    for s in "${systems[@]}"; do
      out=$exp/rescore/$set.$s.jsonl.gz
      if [ "$nj" -le 1 ]; then
        done_or_run rescore_${set}_$s asr-kd rescore --nbest "$in" --model $(models_of $s) \
          --ensemble "$ensemble" --name "$s" --out "$out" --batch-tokens "$batch_tokens" \
          --stats-out "$exp/rescore/$set.$s.stats.json" "${tf[@]}" "${common[@]}"
      else
        done_or_run rescore_${set}_$s rescore_sharded "$out" "$exp/rescore/$set.$s.stats.json" \
          "$exp/log/rescore_${set}_$s" --nbest "$in" --model $(models_of $s) \
          --ensemble "$ensemble" --name "$s" --batch-tokens "$batch_tokens" "${tf[@]}" "${common[@]}"
      fi
      in=$out
    done
    cp "$in" "$exp/rescore/$set.all.jsonl.gz"
  done
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: tuning weights on dev, scoring dev and eval"
  for s in first_pass "${systems[@]}"; do
    keys=$fp_keys; [ $s != first_pass ] && keys=$fp_keys,lm:$s
    lmkey=${keys##*,}
    d=$exp/score/$s; mkdir -p "$d"
    asr-kd tune --nbest "$exp/rescore/dev.all.jsonl.gz" --scores "$keys" --wip --lm-key "$lmkey" \
      --out "$d/weights.json" --curve-out "$d/curve.json" > "$d/tune.log"
    for set in dev eval; do
      asr-kd score --nbest "$exp/rescore/$set.all.jsonl.gz" --weights "$d/weights.json" --json \
        --out-hyp "$d/$set.hyp" --out-trn "$d/$set.trn" > "$d/$set.json"
    done
    log "  $s: weights $(tr -d ' \n' < "$d/weights.json"); dev $(cat "$d/dev.json")"
  done
  mkdir -p "$exp/compare"
  for set in dev eval; do
    for pair in teacher:student baseline:student first_pass:student baseline:teacher; do
      a=${pair%%:*}; b=${pair##*:}
      asr-kd compare --ref "$data/$set.ref" "$exp/score/$a/$set.hyp" "$exp/score/$b/$set.hyp" \
        --seed "$seed" --json > "$exp/compare/$set.${a}_vs_$b.json"
    done
  done
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: report"
  asr-kd report --exp "$exp" --out "$exp/report" --system first_pass \
    --system "teacher=$(models_of teacher | tr ' ' ',')" --system "baseline=$exp/baseline" \
    --system "student=$exp/student" --sets dev,eval
  log "report: $exp/report/report.md"
fi
