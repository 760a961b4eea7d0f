#!/usr/bin/env bash
# Rescore ESPnet LibriSpeech 30-best lists (dev_clean, dev_other) with a small
# word LSTM LM trained on LibriTTS train-clean-100 text; tune weights on
# dev_clean, apply them to dev_other, compare with the first pass.
#
#   recipes/librispeech/run_espnet_nbest.sh [--stage N] [--stop-stage N] [--data DIR]
#                                           [--exp DIR] [--min-count N] [--threads N]
#
# Runs from the repository root (it cd's there).  Inputs come from
# ../shared/data (never copied); outputs go to exp/libri/ (--exp).  CPU only;
# with the defaults stage 2 (training) takes ~16 min and stages 3-5 ~8 min on
# one core.  Results: recipes/librispeech/RESULTS.md.  The vocabulary, the LM and the
# rescoring are skipped when done (recipes/utils/steps.sh: a sentinel under EXP/.done
# with their options and inputs).
set -euo pipefail
cd "$(dirname "$0")/../.."
. recipes/utils/options.sh  # opts, opt_help, parse_options: the parser of every recipe
. recipes/utils/steps.sh    # log, done_or_run DIR NAME cmd...: the sentinel scheme
. recipes/utils/outputs.sh  # to FILE cmd... (atomic outputs), lock_dirs DIR...
opts stage=0 stop_stage=100 data=../shared/data exp=exp/libri threads=1 min_count=2
opt_help stage "first stage to run (0 LM text, 1 vocabulary, 2 LM, 3 rescoring, 4 tuning and scoring, 5 significance)"
opt_help stop_stage "last stage to run"
opt_help data "the shared data folder (relative to the repository root)"
opt_help exp "experiment folder"
opt_help threads "OMP/MKL threads (shared 2-core machine)"
opt_help min_count "vocabulary: words seen this often (rest -> <unk>)"
parse_options "$@"
name=libri                   # score key lm:$name
export OMP_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
step_outputs_under=("$exp")
mkdir -p "$exp"
lock_dirs "$exp"

lm_text=$data/libritts-text/train_clean_100.text
nbest=$data/librispeech-espnet-nbest
lm=$exp/lm
sets="dev_clean dev_other"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: hold out every 33rd line (3 %) of the LM text as validation"
  mkdir -p $exp/data
  to $exp/data/train.text awk 'NR % 33 != 0' $lm_text
  to $exp/data/valid.text awk 'NR % 33 == 0' $lm_text
  wc -l $exp/data/train.text $exp/data/valid.text >&2
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: vocabulary (words seen >= $min_count times; with 2, singletons train <unk>)"
  done_or_run $exp vocab asr-kd vocab --text $exp/data/train.text --out $exp/data/vocab --min-count $min_count
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: train the word LSTM LM"
  done_or_run $exp lm asr-kd train-lm --train $exp/data/train.text --valid $exp/data/valid.text \
    --vocab $exp/data/vocab --out $lm --device cpu --seed 1 --resume \
    --batching sentence --batch-size 32 --embed-dim 256 --hidden-dim 256 --num-layers 1 \
    --dropout 0.3 --optimizer adamw --lr 0.002 --weight-decay 0.01 --epochs 4 \
    --lr-schedule epoch_decay --decay-start 2 --decay-factor 0.5
  to $lm/valid_ppl.txt asr-kd ppl --model $lm --text $exp/data/valid.text --mode sentence --device cpu --quiet
  cat $lm/valid_ppl.txt
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ]; then
  for s in $sets; do
    log "Stage 3: convert $s to JSONL with references, rescore with lm:$name"
    asr-kd convert-nbest $nbest/$s $exp/$s/nbest.jsonl.gz --ref $nbest/$s/ref/text
    done_or_run $exp rescore_$s to $exp/$s/rescore.log asr-kd rescore --nbest $exp/$s/nbest.jsonl.gz \
      --model $lm --name $name --out $exp/$s/rescored.jsonl.gz --device cpu --quiet
    cat $exp/$s/rescore.log
  done
fi

# system name -> score keys (first fixed at 1.0); every system also tunes wip
systems="acoustic:decoder,ctc first_pass:decoder,ctc,lm ours:decoder,ctc,lm:$name first_pass+ours:decoder,ctc,lm,lm:$name"

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  log "Stage 4: tune weights on dev_clean, apply them to dev_other"
  for sys in $systems; do
    id=${sys%%:*}; keys=${sys#*:}
    d=$exp/systems/$id
    mkdir -p $d
    to $d/tune_dev_clean.log asr-kd tune --nbest $exp/dev_clean/rescored.jsonl.gz --scores $keys --wip \
      --lm-key ${keys##*,} --out $d/weights.json
    for s in $sets; do
      to $d/$s.json asr-kd score --nbest $exp/$s/rescored.jsonl.gz --weights $d/weights.json --json \
        --out-hyp $d/$s.hyp
    done
    log "$id: $(tr -d '\n ' < $d/weights.json)  dev_clean $(cat $d/dev_clean.json)"
    log "$id: dev_other $(cat $d/dev_other.json)"
  done
  # the first pass as decoded (ESPnet's own 0.6 dec + 0.4 ctc + 0.6 lm)
  d=$exp/systems/espnet_1best
  mkdir -p $d
  for s in $sets; do
    to $d/$s.json asr-kd score --nbest $exp/$s/rescored.jsonl.gz --weight score=1 --json \
      --out-hyp $d/$s.hyp
  done
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ]; then
  log "Stage 5: significance (A vs B): acoustic vs ours, first pass vs first_pass+ours"
  for s in $sets; do
    for pair in acoustic:ours espnet_1best:first_pass+ours first_pass:first_pass+ours; do
      a=${pair%%:*}; b=${pair#*:}
      to $exp/systems/compare_${s}_${a}_vs_${b}.txt asr-kd compare --ref $nbest/$s/ref/text \
        $exp/systems/$a/$s.hyp $exp/systems/$b/$s.hyp
      cat $exp/systems/compare_${s}_${a}_vs_${b}.txt
    done
  done
fi
log "done; results under $exp/systems"
