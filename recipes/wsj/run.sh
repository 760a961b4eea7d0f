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
# One run, one seed. run_seeds.sh runs it for several seeds (every LM trained K times) and
# reports means, ranges and significance pooled over the runs (`make demo`: 3 seeds).
#
# Real Whisper 5-best lists (HyPoradise JSON) with PTB as LM text, one command each:
#   ./run.sh --task chime4        # CHiME-4 real noisy speech, no scores (rank only)
#   ./run.sh --task wsj-whisper   # clean WSJ read speech, Whisper's average token log-prob
# Both use ../../../shared/data (--shared DIR) and share the PTB models in exp/ptb.
# Held-out lists of the same kind: --nbest-eval FILE --nbest-format json (references from
# the file); the dev list is then used whole for tuning. Without --nbest-eval, the dev list
# is split by a hash of the utterance id into a tuning half (dev) and a report half (eval).
#
# Stages (plain blocks, in this order; --stage N --stop-stage M runs N..M):
#   0 data and the leakage guard   1 vocabulary   2 teacher(s)   3 teacher cache (--use-cache true)
#   4 baseline and student, side by side   5 int8 ONNX student (--int8-student)
#   6 perplexities   7 rescoring   8 tuning, scoring, significance   9 report
#  10 size frontier (only with --frontier SIZES: local/frontier.sh; the report again)
# --nj N splits stage 7 into N parallel shard jobs per system (run by $cpu_cmd, see cmd.sh)
# followed by `asr-kd merge`, which checks every shard; the output is identical to --nj 1.
# A step that is done is skipped (utils/steps.sh: a sentinel with its options and inputs).
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. ../utils/options.sh  # opts, opt_help, parse_options: the parser of every recipe
. ../utils/steps.sh    # log, done_or_run DIR NAME cmd...: the sentinel scheme
. ../utils/outputs.sh  # to FILE cmd... (atomic outputs), lock_dirs DIR...
. ../utils/jobs.sh     # spawn cmd..., wait_jobs WHAT: jobs side by side
for _a in "$@"; do  # (the option of run_seeds.sh, which loops this script over seeds)
  case $_a in --seeds|--seeds=*)
    echo "$0: run.sh is one run (one seed); for several: ./run_seeds.sh --seeds K [run.sh options]" >&2
    exit 1 ;;
  esac
done
. local/options.sh     # this recipe's options, the --task presets, the command line
. local/settings.sh    # threads, systems, rescore_key, rescore_sharded, ...
. local/frontier.sh    # stage 10: frontier_plan, frontier_stage
seeds=1  # one run (local/frontier.sh's layout; run_seeds.sh runs several)
# A malformed --frontier option stops before any work.
if [ -n "$frontier" ]; then frontier_plan > /dev/null || exit 1; fi
mkdir -p "$data" "$exp" "$lm_data" "$lm_exp"
# One run at a time per experiment folder: a second run.sh on the same --exp (or the
# LM folder two tasks share) stops at once instead of mixing its outputs with ours.
lock_dirs "$exp" "$lm_exp"
# The embedded mini task, made again from scratch when its sizes change.
make_mini_task() {  # OPTIONS... --out DIR
  local out=${@: -1}; rm -rf "$out"; python local/make_mini_task.py --quiet "${@:1:$#-2}" "$out"; }

# The report of stage 9 (and 10): every system, its models, dev and eval.
report() {
  int8_row=(); [[ " $(systems | tr '\n' ' ') " == *" student_int8 "* ]] && int8_row=(--system "student_int8=$lm_exp/student_int8")
  asr-kd report --exp "$exp" --out "$exp/report" --system first_pass \
    --system "teacher=$(models_of teacher | tr ' ' ',')" --system "baseline=$lm_exp/baseline" \
    --system "student=$lm_exp/student" "${int8_row[@]}" --sets dev,eval
  log "report: $exp/report/report.md"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: data preparation"
  mkdir -p "$lm_data/lm"
  if [ -z "$lm_text$wsj1_lm_root" ]; then
    done_or_run "$data" mini make_mini_task --n-train-words "$mini_words" \
      --n-dev "$mini_utts" --n-eval "$mini_utts" --nbest "$mini_nbest" --out "$data/mini"
    to "$lm_data/lm_all.txt" cat "$data/mini/lm_text.txt"
    nbest_dev=$data/mini/dev/nbest; nbest_eval=$data/mini/eval/nbest; nbest_format=kaldi
    ref_dev=$data/mini/dev/text; ref_eval=$data/mini/eval/text
  elif [ -n "$lm_valid" ]; then
    # The LM text comes with its own validation file (PTB): both used as they are.
    for f in "$lm_text" "$lm_valid"; do
      [ -f "$f" ] || { echo "$0: no such file: $f (see --shared / --lm-text / --lm-valid)" >&2; exit 1; }
    done
    to "$lm_data/lm/train.txt" cat "$lm_text"; to "$lm_data/lm/valid.txt" cat "$lm_valid"
  else
    opt=(); [ -n "$lm_text" ] && opt=(--lm-text "$lm_text") || opt=(--wsj1-lm-root "$wsj1_lm_root")
    local/prepare_lm_text.sh "${opt[@]}" "$lm_data/lm_prep"
    to "$lm_data/lm_all.txt" cat "$lm_data/lm_prep/all.txt"
  fi
  if [ -z "$lm_valid" ]; then
    # Every valid_every-th LM sentence is held out for validation.
    to "$lm_data/lm/valid.txt" awk -v n="$valid_every" 'NR % n == 0' "$lm_data/lm_all.txt"
    to "$lm_data/lm/train.txt" awk -v n="$valid_every" 'NR % n != 0' "$lm_data/lm_all.txt"
  fi
  [ -n "$nbest_dev" ] || { echo "$0: real data needs --nbest-dev" >&2; exit 1; }
  fmt=(); [ -n "$nbest_format" ] && fmt=(--from "$nbest_format")
  dd=(); [ "$dedup" = true ] && dd=(--dedup)
  if [ -z "$ref_dev" ]; then
    # References inside the N-best files (HyPoradise JSON). Without --nbest-eval the dev
    # list is split by a hash of the utterance id: half to tune on, half to report on.
    if [ -z "$nbest_eval" ]; then
      python local/split_nbest.py ${nbest_format:+--format $nbest_format} --buckets 2 \
        --part dev=0 --part eval=1 "$nbest_dev" "$data/nbest_split"
    else
      python local/split_nbest.py ${nbest_format:+--format $nbest_format} --buckets 1 \
        --part dev=0 "$nbest_dev" "$data/nbest_split"
      python local/split_nbest.py ${nbest_format:+--format $nbest_format} --buckets 1 \
        --part eval=0 "$nbest_eval" "$data/nbest_split"
    fi
    for set in dev eval; do
      [ -f "$data/nbest_split/$set.ref" ] || { echo "$0: $set N-best has no references; give --ref-$set" >&2; exit 1; }
      asr-kd convert-nbest --from jsonl --to jsonl "${dd[@]}" "$data/nbest_split/$set.jsonl.gz" \
        "$data/$set.nbest.jsonl.gz"
      to "$data/$set.ref" cat "$data/nbest_split/$set.ref"
    done
  else
    for v in nbest_eval ref_eval; do
      [ -n "${!v}" ] || { echo "$0: real data needs --${v//_/-}" >&2; exit 1; }
    done
    for set in dev eval; do
      src=nbest_$set; ref=ref_$set
      asr-kd convert-nbest "${fmt[@]}" --to jsonl "${dd[@]}" --ref "${!ref}" "${!src}" \
        "$data/$set.nbest.jsonl.gz"
      to "$data/$set.ref" cat "${!ref}"
    done
  fi
  log "  LM text: $(wc -l < "$lm_data/lm/train.txt") train / $(wc -l < "$lm_data/lm/valid.txt") valid sentences"

  # The leakage guard, before any training: dev and eval references (after the LM-input
  # filter) found in the LM text, whole sentences and 8-grams; in the report.
  log "  overlap of the LM text with the dev and eval references"
  lim=(); [ "$allow_overlap" = true ] || lim=(--max-sentences "$max_overlap_sentences" --max-ngrams "$max_overlap_ngrams")
  tf=(); [ -n "$text_filter" ] && tf=(--text-filter "$text_filter")
  asr-kd overlap --lm-text "$lm_data/lm/train.txt" "$lm_data/lm/valid.txt" \
    --ref "$data/dev.ref" --ref "$data/eval.ref" "${tf[@]}" "${lim[@]}" --out "$exp/overlap.json" \
    || { echo "$0: the LM text holds too much of the test references (above); --allow-overlap true to go on" >&2; exit 1; }
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: vocabulary"
  done_or_run "$lm_exp" vocab asr-kd vocab --text "$lm_data/lm/train.txt" --out "$lm_data/lang" --max-size "$vocab_size"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: teacher training ($num_teachers model(s), side by side)"
  # K teachers train at once, one job each, with the cores shared out (see --threads).
  for k in $(seq 1 "$num_teachers"); do
    spawn done_or_run "$lm_exp" teacher$k $train_cmd "$lm_exp/log/train_teacher$k.log" \
      asr-kd train-lm --config "$teacher_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
        --vocab "$lm_data/lang" --out "$lm_exp/teacher$k" --seed $((seed + k)) --resume --threads "$teacher_threads" "${common[@]}"
  done
  wait_jobs "teacher training (logs: $lm_exp/log/train_teacher*.log)" || exit 1
fi

if [ $stage -le 3 ] && [ $stop_stage -ge 3 ] && [ "$use_cache" = true ]; then
  log "Stage 3: teacher cache (top-$topk)"
  done_or_run "$lm_exp" cache $train_cmd "$lm_exp/log/cache_teacher.log" \
    asr-kd cache-teacher --teacher "${teachers[@]}" --ensemble "$ensemble" --text "$lm_data/lm/train.txt" \
      --config "$student_conf" --topk "$topk" --out "$lm_exp/teacher_cache" --threads "$threads" "${common[@]}"
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ]; then
  # The same-size baseline (hard labels only) and the student train side by side, the
  # cores shared between them.
  log "Stage 4: same-size baseline (hard labels only) and student distillation (alpha $alpha, tau $tau, trust $trust)"
  spawn done_or_run "$lm_exp" baseline $train_cmd "$lm_exp/log/train_baseline.log" \
    asr-kd train-lm --config "$student_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
      --vocab "$lm_data/lang" --out "$lm_exp/baseline" --seed "$seed" --resume --threads "$(share 2)" "${common[@]}"
  if [ "$use_cache" = true ]; then src=(--teacher-cache "$lm_exp/teacher_cache")
  else src=(--teacher "${teachers[@]}" --ensemble "$ensemble"); fi
  spawn done_or_run "$lm_exp" student $train_cmd "$lm_exp/log/distill_student.log" \
    asr-kd distill --config "$student_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
      --out "$lm_exp/student" "${src[@]}" --alpha "$alpha" --tau "$tau" --trust "$trust" \
      --trust-k "$trust_k" --trust-beta "$trust_beta" --seed "$seed" --resume --threads "$(share 2)" "${common[@]}"
  wait_jobs "baseline or student training (logs: $lm_exp/log/)" || exit 1
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 5 ] && [ "$int8_student" = true ]; then
  # The student exported to int8 ONNX (asr-kd export --format int8, self-checked against
  # the fp32 student) is scored as one more system, student_int8: its size, speed and WER
  # in the report. A refused export leaves no folder and no student_int8 row.
  log "Stage 5: int8 ONNX export of the student"
  done_or_run "$lm_exp" student_int8 asr-kd export --model "$lm_exp/student" --format int8 \
    --out "$lm_exp/student_int8" $q || log "  int8 export refused (above); no student_int8 row"
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: perplexities (sentence mode, validation text${lm_test:+; stream and sentence mode, $lm_test})"
  mkdir -p "$exp/ppl"
  for s in $(systems); do
    # The teacher row is the ensemble when there are several teachers.
    to "$exp/ppl/$s.json" asr-kd ppl --model $(models_of $s) --ensemble "$ensemble" \
      --text "$lm_data/lm/valid.txt" --mode sentence --json --threads "$threads" "${common[@]}"
    if [ -n "$lm_test" ]; then
      for mode in stream sentence; do
        to "$exp/ppl/$s.test.$mode.json" asr-kd ppl --model $(models_of $s) --ensemble "$ensemble" \
          --text "$lm_test" --mode $mode --json --threads "$threads" "${common[@]}"
      done
    fi
    log "  $s: $(cat "$exp/ppl/$s.json")"
  done
fi

if [ $stage -le 7 ] && [ $stop_stage -ge 7 ]; then
  log "Stage 7: rescoring dev and eval ($nj job(s) per system)"
  mkdir -p "$exp/rescore"
  tf=(); [ -n "$text_filter" ] && tf=(--text-filter "$text_filter")
  for set in dev eval; do
    in=$data/$set.nbest.jsonl.gz
    for s in $(systems); do
      out=$exp/rescore/$set.$s.jsonl.gz
      key=$(rescore_key "$in" $(models_of $s))
      if [ "$nj" -le 1 ]; then
        done_or_run "$exp" rescore_${set}_$s.$key asr-kd rescore --nbest "$in" --model $(models_of $s) \
          --ensemble "$ensemble" --name "$s" --out "$out" --batch-tokens "$batch_tokens" \
          --stats-out "$exp/rescore/$set.$s.stats.json" --threads "$threads" "${tf[@]}" "${common[@]}"
      else
        done_or_run "$exp" rescore_${set}_$s.$key rescore_sharded "$out" "$exp/rescore/$set.$s.stats.json" \
          "$exp/log/rescore_${set}_$s" --nbest "$in" --model $(models_of $s) \
          --ensemble "$ensemble" --name "$s" --batch-tokens "$batch_tokens" --threads "$rescore_threads" \
          "${tf[@]}" "${common[@]}"
      fi
      in=$out
    done
    to "$exp/rescore/$set.all.jsonl.gz" cat "$in"
  done
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Stage 8: tuning weights on dev, scoring dev and eval"
  for s in first_pass $(systems); do
    d=$exp/score/$s; mkdir -p "$d"
    keys=$fp_keys${extra_scores:+,$extra_scores}; signed=
    if [ $s != first_pass ]; then
      keys=$keys,lm:$s
      [ "$oov_feature" = true ] && { keys=$keys,oov:$s; signed=oov:$s; }
    fi
    if [ $s = first_pass ] && [ "$tune_first_pass" != true ]; then
      # The recogniser's own choice: its first score alone (weight 1), nothing tuned.
      to "$d/weights.json" echo "{\"${fp_keys%%,*}\": 1.0}"
    else
      lmkey=lm:$s; [ $s = first_pass ] && lmkey=${keys##*,}
      # --fallback true: an LM's weights are kept only if they beat the first pass out of
      # fold in 5-fold cross-validation on dev (asr-kd tune --fallback), else the first pass.
      fb=(); [ "$fallback" = true ] && [ $s != first_pass ] && fb=(--fallback "$exp/score/first_pass/weights.json")
      # --decode consensus: weights and posterior scale for consensus decoding (score reads
      # both from weights.json); the fallback check is a 1-best one and is not combined with it.
      [ "$decode" = consensus ] && fb=()
      to "$d/tune.log" asr-kd tune --nbest "$exp/rescore/dev.all.jsonl.gz" --scores "$keys" --wip \
        --lm-key "$lmkey" ${signed:+--signed $signed} "${fb[@]}" "${nz[@]}" --decode "$decode" \
        --out "$d/weights.json" --curve-out "$d/curve.json"
    fi
    for set in dev eval; do
      to "$d/$set.json" asr-kd score --nbest "$exp/rescore/$set.all.jsonl.gz" --weights "$d/weights.json" \
        --json "${nz[@]}" --out-hyp "$d/$set.hyp" --out-trn "$d/$set.trn" --details "$d/details/$set" \
        ${speaker_chars:+--speaker-chars $speaker_chars}
    done
    log "  $s: weights $(python -c 'import json, sys; w = json.load(open(sys.argv[1])); w.pop("_tuned_on", None); print(json.dumps(w))' "$d/weights.json"); dev $(cat "$d/dev.json")"
  done
  significance this_run
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: report"
  report
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ] && [ -n "$frontier" ]; then
  frontier_stage
  log "Report with the size frontier"
  report
fi
