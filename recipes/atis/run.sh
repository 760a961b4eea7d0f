#!/usr/bin/env bash
# ATIS: rescoring Whisper 5-best lists of spoken airline queries (HyPoradise train_atis.json,
# with per-hypothesis am_score) with an in-domain LSTM LM, its distilled student and a
# same-size baseline.  The LM text is the references of the list itself, so the list is split
# by a hash of the utterance id (10 buckets): bucket 0 = dev (weights are tuned on it),
# bucket 1 = eval (reported), buckets 2-9 = LM text (every 20th of its sentences held out
# for validation).  No dev or eval utterance is ever LM training text.
#
#   ./run.sh                                   # everything, from ../../../shared/data
#   ./run.sh --nbest-eval test_atis.json       # report on a held-out ATIS list instead of bucket 1
#   ./run.sh --stage 7                         # rescore/tune/report again with the same models
#
# Every stage after data preparation is recipes/wsj/run.sh (options after ours go to it, e.g.
# --alpha 0.5 --tau 2 --trust none --num-teachers 2); see its --help.
set -euo pipefail
cd "$(dirname "$0")"
here=$PWD

. ../utils/options.sh  # the option parser of every recipe
. ../utils/steps.sh    # log
. ../utils/outputs.sh  # to FILE cmd... (atomic outputs)
opts atis_json=../../../shared/data/hyporadise/train_atis.json nbest_eval= nbest_format=json
opts stage=0 stop_stage=10 valid_every=20 data=data exp=exp seeds=1
opts_usage="[options] [recipes/wsj/run.sh options]"
opt_help atis_json "the HyPoradise ATIS list: dev, eval and the LM text are split from it by id"
opt_help nbest_eval "a held-out list to report on instead of bucket 1 (its references inside)"
opt_help nbest_format "reader of --nbest-eval (json, jsonl, kaldi, espnet, srilm, nemo)"
opt_help stage "first stage (0 the split here; 1-10 those of recipes/wsj/run.sh)"
opt_help stop_stage "last stage"
opt_help valid_every "every N-th LM text line held out for validation"
opt_help data "data folder"
opt_help exp "experiment folder"
opt_help seeds "K > 1: every LM trained K times (recipes/wsj/run_seeds.sh)"
# Our options; all others are passed on to recipes/wsj/run.sh, which refuses typos.
parse_options --pass-unknown "$@"
abspath() { case $1 in /*) echo "$1" ;; *) echo "$here/$1" ;; esac; }
[ -n "$nbest_eval" ] && nbest_eval=$(abspath "$nbest_eval")
data=$(abspath "$data"); exp=$(abspath "$exp")
export PATH="$here/../../.venv/bin:$PATH"

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0 (ATIS): split $atis_json by utterance id"
  [ -f "$atis_json" ] || { echo "$0: no such file: $atis_json (see --atis-json)" >&2; exit 1; }
  python ../wsj/local/split_nbest.py --format json --buckets 10 --part dev=0 --part eval=1 \
    --part lm=2-9 --text-part lm "$atis_json" "$data/split"
  to "$data/lm_text/valid.txt" awk -v n="$valid_every" 'NR % n == 0' "$data/split/lm.txt"
  to "$data/lm_text/train.txt" awk -v n="$valid_every" 'NR % n != 0' "$data/split/lm.txt"
  if [ -n "$nbest_eval" ]; then
    # One reader for both sets: the held-out list converted to JSONL (heldout.jsonl.gz).
    python ../wsj/local/split_nbest.py ${nbest_format:+--format $nbest_format} --buckets 1 \
      --part heldout=0 "$nbest_eval" "$data/split"
  fi
fi
# Stages 1-10: recipes/wsj/run.sh on the split (eval: bucket 1, or the held-out list).
eval_src=$data/split/eval.jsonl.gz
[ -n "$nbest_eval" ] && eval_src=$data/split/heldout.jsonl.gz
# --seeds K: every LM trained K times (recipes/wsj/run_seeds.sh), else one run.
wsj=(../wsj/run.sh); [ "$seeds" -gt 1 ] && wsj=(../wsj/run_seeds.sh --seeds "$seeds")
exec "${wsj[@]}" --stage "$stage" --stop-stage "$stop_stage" \
  --data "$data" --exp "$exp" \
  --lm-text "$data/lm_text/train.txt" --lm-valid "$data/lm_text/valid.txt" --lm-test "$data/eval.ref" \
  --nbest-dev "$data/split/dev.jsonl.gz" --nbest-eval "$eval_src" --nbest-format jsonl \
  --dedup true --first-pass-scores am --tune-first-pass false --oov-feature true --fallback true \
  --teacher-conf "$here/conf/teacher.yaml" --student-conf "$here/conf/student.yaml" \
  --num-teachers 2 --vocab-size 20000 --speaker-chars 3 "${passed[@]}"
