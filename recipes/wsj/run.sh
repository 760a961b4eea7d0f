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
# Real Whisper 5-best lists (HyPoradise JSON) with PTB as LM text, one command each:
#   ./run.sh --task chime4        # CHiME-4 real noisy speech, no scores (rank only)
#   ./run.sh --task wsj-whisper   # clean WSJ read speech, Whisper's average token log-prob
# Both use ../../../shared/data (--shared DIR) and share the PTB models in exp/ptb.
# Held-out lists of the same kind: --nbest-eval FILE --nbest-format json (references from
# the file); the dev list is then used whole for tuning. Without --nbest-eval, the dev list
# is split by a hash of the utterance id into a tuning half (dev) and a report half (eval).
#
# Stages:  0 data   1 vocabulary   2 teacher(s)   3 baseline   4 teacher cache (optional)
#          5 student   6 perplexities   7 rescoring   8 tuning + scoring   9 report
#         10 size frontier (only with --frontier SIZES: local/frontier.sh; the report again)
# --nj N splits stage 7 into N parallel shard jobs per system (run by $cpu_cmd, see cmd.sh)
# followed by `asr-kd merge`, which checks every shard; the output is identical to --nj 1.
set -euo pipefail
_self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0"); _argv=("$@")  # for --seeds runs
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. local/outputs.sh  # `to FILE cmd...` (atomic outputs), `lock_dirs DIR...`
. local/frontier.sh  # stage 10: frontier_plan, frontier_stage

# ---- options (each can be given as --name value) ---------------------------
. local/options.sh  # opts name=default ...: each option named once; --help lists them in this order
opts task=mini shared=../../../shared/data stage=0 stop_stage=10 data=data exp=exp
opts lm_data= lm_exp=  # LM data and models, when not --data / --exp (a --task shares them)
opts lm_text= lm_valid= lm_test= wsj1_lm_root=
opts nbest_dev= nbest_eval= nbest_format= ref_dev= ref_eval=
opts first_pass_scores=am,lm0 tune_first_pass=true extra_scores= oov_feature=false fallback=false
opts decode=1best dedup=false text_filter=
opts mini_words=150000 mini_utts=300 mini_nbest=20
opts valid_every=50 vocab_size=20000
opts teacher_conf=conf/teacher.yaml student_conf=conf/student.yaml num_teachers=1 ensemble=prob
opts use_cache=false topk=32
opts alpha=0.5 tau=2.0 trust=none trust_k=10 trust_beta=1.0
opts device=auto seed=0
opts seeds=  # default: 3 on the embedded mini task (minutes per run), else 1
opts batch_tokens=20000 nj=1 threads= quiet=true
# Scoring filter (asr-kd score/tune/compare --noise, --noise-vocab): words removed from
# hypotheses and references before WER, e.g. --noise '[*],<unk>' (-pau- always is).
opts noise= noise_vocab=
opts int8_student=auto  # true|false|auto (auto: when onnxruntime is installed)
# Leakage guard before training (asr-kd overlap): stop when more than these percentages of
# the dev or eval reference sentences / 8-grams occur in the LM text; --allow-overlap true
# only prints them.  --speaker-chars N: speaker = first N characters of an id (details).
opts max_overlap_sentences=5 max_overlap_ngrams=30 allow_overlap=false speaker_chars=
# Size frontier (stage 10): baseline and student at every size of --frontier, per seed run.
opts frontier= frontier_trust= frontier_trust_at= frontier_int8=auto

# ---- --help: one line per option (local/options.sh opt_help) ----------------
opt_help task "mini | chime4 | wsj-whisper: presets for a real-data task (options given win)"
opt_help shared "folder of the shared real data (PTB, HyPoradise lists) for --task"
opt_help stage "first stage to run (0 data .. 9 report, 10 size frontier)"
opt_help stop_stage "last stage to run"
opt_help data "data folder (texts, imported N-best lists)"
opt_help exp "experiment folder (models, scores, report)"
opt_help lm_data "LM data folder, when not --data (a --task shares it)"
opt_help lm_exp "LM model folder, when not --exp (a --task shares it)"
opt_help lm_text "LM training text (plain or Kaldi text) instead of the mini task's"
opt_help lm_valid "its own validation text (default: every --valid-every-th line held out)"
opt_help lm_test "test text: stage 6 also reports stream and sentence perplexity on it"
opt_help wsj1_lm_root "WSJ1 LDC folder: LM text from its 1987-89 WSJ text"
opt_help nbest_dev "dev N-best list (file or folder) to tune on"
opt_help nbest_eval "eval N-best list (default with --nbest-dev alone: half of dev, by id hash)"
opt_help nbest_format "reader of the lists: kaldi espnet srilm json nemo jsonl (default: detect)"
opt_help ref_dev "dev references (Kaldi text or trn; default: inside the list)"
opt_help ref_eval "eval references (Kaldi text or trn; default: inside the list)"
opt_help first_pass_scores "the recogniser's score keys, first one fixed at weight 1"
opt_help tune_first_pass "true: tune the first pass's own weights; false: its first score alone"
opt_help extra_scores "more score keys to tune with every system (comma-separated)"
opt_help oov_feature "true: also tune each LM's OOV count (oov:NAME, signed weight)"
opt_help fallback "true: keep an LM's weights only if they beat the first pass out of fold"
opt_help decode "1best | consensus (confusion network; posterior scale tuned too)"
opt_help dedup "true: drop repeated hypotheses when importing the lists"
opt_help text_filter "rules file or rules rewriting hypotheses before LM scoring (not WER)"
opt_help mini_words "mini task: LM training words"
opt_help mini_utts "mini task: utterances per dev and eval set"
opt_help mini_nbest "mini task: hypotheses per utterance"
opt_help valid_every "every N-th LM text line held out for validation"
opt_help vocab_size "words in words.txt (most frequent)"
opt_help teacher_conf "teacher config YAML"
opt_help student_conf "student and baseline config YAML (its kd: section for distillation)"
opt_help num_teachers "teachers trained side by side; more than 1: an ensemble"
opt_help ensemble "prob | logit: how an ensemble of teachers combines"
opt_help use_cache "true: distil from a top-K teacher cache (stage 4)"
opt_help topk "teacher predictions kept per token in the cache"
opt_help alpha "KD: weight of the soft term, 0..1"
opt_help tau "KD: temperature"
opt_help trust "KD: none | prob | rank | margin, per-token trust in the teacher"
opt_help trust_k "KD: rank trust's top-k"
opt_help trust_beta "KD: margin trust's slope"
opt_help device "auto | cpu | cuda"
opt_help seed "training seed (run R of --seeds uses seed + 1000 (R - 1))"
opt_help seeds "train every LM K times and report means and ranges (default: 3 on the mini task, else 1)"
opt_help batch_tokens "rescoring batch size in tokens"
opt_help nj "parallel rescoring shard jobs per system (stage 7)"
opt_help threads "CPU threads shared by the jobs run at once (default: the CPU set)"
opt_help quiet "true: no progress bars or lines in the logs"
opt_help noise "scoring filter: words/patterns removed before WER (-pau- always is)"
opt_help noise_vocab "scoring filter: a file of such words (SRILM's -noise-vocab)"
opt_help int8_student "true | false | auto: also export and report an int8 ONNX student"
opt_help max_overlap_sentences "leakage guard: stop above this % of reference sentences in the LM text"
opt_help max_overlap_ngrams "leakage guard: stop above this % of reference 8-grams in the LM text"
opt_help allow_overlap "true: print the leakage check and go on whatever it finds"
opt_help speaker_chars "details: speaker = the first N characters of an utterance id"
opt_help frontier "sizes for the size frontier (stage 10), e.g. 1x16,e64h64,1x512p64 (LxH, lN hN eN pN)"
opt_help frontier_trust "frontier: trust modes of the students, e.g. none,margin (default: --trust)"
opt_help frontier_trust_at "frontier: sizes that get every --frontier-trust mode (default: all)"
opt_help frontier_int8 "frontier: auto (as --int8-student) | true | false | sizes with an int8 student"
# --task presets the options of a real-data task; options given on the command line win.
for ((_i = 1; _i <= $#; _i++)); do
  case ${!_i} in
    --task) _j=$((_i + 1)); task=${!_j} ;;
    --task=*) task=${!_i#--task=} ;;
    --shared) _j=$((_i + 1)); shared=${!_j} ;;
    --shared=*) shared=${!_i#--shared=} ;;
  esac
done
case $task in
  mini) ;;
  chime4|wsj-whisper)
    # PTB (WSJ 1989 text) as LM text, its own valid/test files; Whisper 5-best lists.
    lm_text=$shared/ptb/ptb.train.txt; lm_valid=$shared/ptb/ptb.valid.txt
    lm_test=$shared/ptb/ptb.test.txt
    lm_data=data/ptb; lm_exp=exp/ptb; data=data/$task; exp=exp/$task
    nbest_format=json; dedup=true; oov_feature=true; tune_first_pass=false; fallback=true
    text_filter=conf/whisper_to_ptb.rules
    teacher_conf=conf/ptb_teacher.yaml; num_teachers=2; student_conf=conf/ptb_student.yaml
    use_cache=true; topk=64
    if [ $task = chime4 ]; then
      nbest_dev=$shared/hyporadise/chime4_dev.json; first_pass_scores=rank
    else
      nbest_dev=$shared/hyporadise/wsj_dev.json; first_pass_scores=score
    fi ;;
  *) echo "$0: unknown --task $task (mini, chime4, wsj-whisper)" >&2; exit 1 ;;
esac
. local/parse_options.sh
lm_data=${lm_data:-$data}; lm_exp=${lm_exp:-$exp}
if [ -z "$seeds" ]; then
  seeds=1; [ -z "$lm_text$wsj1_lm_root" ] && seeds=3  # the embedded mini task: cheap, show the spread
fi
# A malformed --frontier option stops before any work.
if [ -n "$frontier" ]; then frontier_plan > /dev/null || exit 1; fi

log() { echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }
# A step's sentinel: `done_or_run NAME cmd...` skips work already finished with the same
# options and inputs (sentinels of LM steps live in $lm_exp, the others in $exp). The
# sentinel holds the step's signature (local/step_signature.py: its options, and the
# checksums or mtimes of the files and models it reads). A changed option or input
# reruns the step from scratch (its --out folder removed first, so --resume cannot
# continue the old run), and a retrained model changes the inputs of every later step.
done_or_run() {
  local name=$1; shift
  local dir=$exp; case $name in vocab|teacher*|baseline|cache|student|student_int8|frontier_lm_*) dir=$lm_exp ;; esac
  local sentinel=$dir/.done/$name sig
  mkdir -p "$dir/.done"
  sig=$(mktemp "$dir/.done/.sig.XXXXXX")
  python local/step_signature.py sign "$@" > "$sig"
  if [ -f "$sentinel" ]; then
    if [ ! -s "$sentinel" ]; then
      log "  $name: done before (recorded without its options by an older recipe), skipping"
      rm -f "$sig"; return 0
    elif cmp -s "$sentinel" "$sig"; then
      log "  $name: done before, skipping"; rm -f "$sig"; return 0
    fi
    log "  $name: made with other options or inputs ($(python local/step_signature.py diff "$sentinel" "$sig")): running it again"
    rm -f "$sentinel"; remove_output "$@"
  elif [ -f "$sentinel.running" ] && ! cmp -s "$sentinel.running" "$sig"; then
    # An interrupted run with other options: --resume must not continue it.
    log "  $name: an unfinished run with other options ($(python local/step_signature.py diff "$sentinel.running" "$sig")): starting again"
    remove_output "$@"
  fi
  mv "$sig" "$sentinel.running"
  "$@" || return  # (set -e is off where the caller tests the result)
  mv "$sentinel.running" "$sentinel"
}
# The --out folder of a step's command, removed before a rerun with other options
# (only inside this recipe's data and exp folders).
remove_output() {
  local prev= w
  for w in "$@"; do
    if [ "$prev" = --out ] && [ -d "$w" ]; then
      case $(realpath -m "$w") in
        "$(realpath -m "$exp")"/*|"$(realpath -m "$lm_exp")"/*|"$(realpath -m "$lm_data")"/*)
          rm -rf "$w" ;;
        *) echo "$0: $w was made with other options; remove it to rerun" >&2; exit 1 ;;
      esac
    fi
    prev=$w
  done
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
# `rescore_key IN MODEL_DIR...`: what a rescored list is made from (the input list's bytes,
# the model weights, the filter), part of its sentinel's name, so a new input list or a
# retrained model rescores again.
rescore_key() {
  local in=$1 m tf_file; shift
  { md5sum < "$in"; for m in "$@"; do stat -c %Y.%s "$m"/model.safetensors "$m"/model.onnx 2>/dev/null || true; done
    echo "$text_filter $batch_tokens"; tf_file=${text_filter%% *}  # "FILE -BLOCK ..."
    if [ -n "$tf_file" ] && [ -f "$tf_file" ]; then md5sum < "$tf_file"; fi
  } | md5sum | cut -c1-12
}
# Thread budget: the cores this process may use, shared out among the jobs that run at
# once (K teachers side by side; baseline beside student), one thread at least each.
# Two multi-threaded torch jobs on the same cores run far slower than one.
cores=$(python -c 'import os; print(len(os.sched_getaffinity(0)))' 2>/dev/null || nproc)
[ -n "$threads" ] || threads=$cores
share() { local n=$(( threads / $1 )); [ $n -ge 1 ] || n=1; echo $n; }  # threads of 1 of $1 jobs
teacher_threads=$(share "$num_teachers")
rescore_threads=$(share "$nj")
q=; [ "$quiet" = true ] && q=--quiet
common=(--device "$device" $q)
mkdir -p "$data" "$exp" "$lm_data" "$lm_exp"
# One run at a time per experiment folder: a second run.sh on the same --exp (or the
# LM folder two tasks share) stops at once instead of mixing its outputs with ours.
lock_dirs "$exp" "$lm_exp"

teachers=()
for k in $(seq 1 "$num_teachers"); do teachers+=("$lm_exp/teacher$k"); done
fp_keys=$first_pass_scores
# Significance tests of stage 8, A:B (is B better than A?).
pairs="teacher:student baseline:student first_pass:student baseline:teacher first_pass:teacher"
# The scoring filter of stage 8 (tune, score, compare).
nz=(); [ -n "$noise" ] && nz+=(--noise "$noise"); [ -n "$noise_vocab" ] && nz+=(--noise-vocab "$noise_vocab")

if [ "$seeds" -gt 1 ]; then
  # --seeds K: every LM trained K times (seeds seed, seed+1000, ...), each run in its own
  # $exp/seedR and $lm_exp/seedR with its own report; then the significance tests pooled
  # over the runs and one report of means and ranges. CPUs round differently, so a
  # difference smaller than the seed-to-seed spread is not a finding.
  if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
    "$_self" "${_argv[@]}" --seeds 1 --stop-stage 0
  fi
  if [ $stop_stage -ge 1 ] && [ $stage -le 9 ]; then
    for r in $(seq 1 "$seeds"); do
      log "Run $r of $seeds: seed $((seed + 1000 * (r - 1)))"
      # (the frontier is run here, over the runs' teachers, not inside each run)
      "$_self" "${_argv[@]}" --seeds 1 --seed $((seed + 1000 * (r - 1))) \
        --stage $((stage > 1 ? stage : 1)) --data "$data" --lm-data "$lm_data" \
        --exp "$exp/seed$r" --lm-exp "$lm_exp/seed$r" --frontier ''
    done
  fi
  # `runs PATH`: $exp/seed1/PATH,$exp/seed2/PATH,... (the runs' copies of one file)
  runs() { local r out=; for r in $(seq 1 "$seeds"); do out+="${out:+,}$exp/seed$r/$1"; done; echo "$out"; }
  if [ $stop_stage -ge 8 ]; then
    log "Significance over the $seeds runs pooled"
    mkdir -p "$exp/compare"
    for set in dev eval; do
      for pair in $pairs; do
        a=${pair%%:*}; b=${pair##*:}
        to "$exp/compare/$set.${a}_vs_$b.json" asr-kd compare --ref "$data/$set.ref" \
          "$(runs score/$a/$set.hyp)" "$(runs score/$b/$set.hyp)" "${nz[@]}" --seed "$seed" --json \
          --details "$exp/compare/$set.${a}_vs_$b"
      done
    done
  fi
  report_runs() {
    log "Report of the $seeds runs"
    asr-kd report --exp "$exp" --out "$exp/report" --runs $(runs report | tr , ' ') --sets dev,eval
    log "report: $exp/report/report.md"
  }
  if [ $stop_stage -ge 9 ] && [ $stage -le 9 ]; then report_runs; fi
  if [ -n "$frontier" ] && [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
    frontier_stage; report_runs
  fi
  exit 0
fi

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  log "Stage 0: data preparation"
  mkdir -p "$lm_data/lm"
  if [ -z "$lm_text$wsj1_lm_root" ]; then
    mini_sig="words $mini_words utts $mini_utts nbest $mini_nbest"
    if [ "$(cat "$data/.done.mini" 2>/dev/null)" != "$mini_sig" ]; then
      [ -f "$data/.done.mini" ] && log "  mini task made with other sizes: making it again"
      rm -rf "$data/mini"
      python local/make_mini_task.py --quiet --n-train-words "$mini_words" \
        --n-dev "$mini_utts" --n-eval "$mini_utts" --nbest "$mini_nbest" "$data/mini"
      to "$data/.done.mini" echo "$mini_sig"
    fi
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
fi

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  # The leakage guard, before any training: dev and eval references (after the LM-input
  # filter) found in the LM text, whole sentences and 8-grams; in the report.
  log "Stage 0: overlap of the LM text with the dev and eval references"
  lim=(); [ "$allow_overlap" = true ] || lim=(--max-sentences "$max_overlap_sentences" --max-ngrams "$max_overlap_ngrams")
  tf=(); [ -n "$text_filter" ] && tf=(--text-filter "$text_filter")
  asr-kd overlap --lm-text "$lm_data/lm/train.txt" "$lm_data/lm/valid.txt" \
    --ref "$data/dev.ref" --ref "$data/eval.ref" "${tf[@]}" "${lim[@]}" --out "$exp/overlap.json" \
    || { echo "$0: the LM text holds too much of the test references (above); --allow-overlap true to go on" >&2; exit 1; }
fi

if [ $stage -le 1 ] && [ $stop_stage -ge 1 ]; then
  log "Stage 1: vocabulary"
  done_or_run vocab asr-kd vocab --text "$lm_data/lm/train.txt" --out "$lm_data/lang" --max-size "$vocab_size"
fi

if [ $stage -le 2 ] && [ $stop_stage -ge 2 ]; then
  log "Stage 2: teacher training ($num_teachers model(s), side by side)"
  # K teachers train at once, one job each, with the cores shared out (see --threads).
  pids=(); rc=0
  for k in $(seq 1 "$num_teachers"); do
    done_or_run teacher$k $train_cmd "$lm_exp/log/train_teacher$k.log" \
      asr-kd train-lm --config "$teacher_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
        --vocab "$lm_data/lang" --out "$lm_exp/teacher$k" --seed $((seed + k)) --resume --threads "$teacher_threads" "${common[@]}" &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc -eq 0 ] || { echo "$0: teacher training failed (logs: $lm_exp/log/train_teacher*.log)" >&2; exit 1; }
fi

if [ $stage -le 4 ] && [ $stop_stage -ge 4 ] && [ "$use_cache" = true ]; then
  log "Stage 4: teacher cache (top-$topk)"
  done_or_run cache $train_cmd "$lm_exp/log/cache_teacher.log" \
    asr-kd cache-teacher --teacher "${teachers[@]}" --ensemble "$ensemble" --text "$lm_data/lm/train.txt" \
      --config "$student_conf" --topk "$topk" --out "$lm_exp/teacher_cache" --threads "$threads" "${common[@]}"
fi

if [ $stage -le 5 ] && [ $stop_stage -ge 3 ]; then
  # Stage 3 (same-size baseline on hard labels) and stage 5 (the student) run side by side.
  pids=(); rc=0
  student_threads=$threads  # halved when both train at once
  [ $stage -le 3 ] && [ $stop_stage -ge 5 ] && student_threads=$(share 2)
  if [ $stage -le 3 ]; then
    log "Stage 3: same-size baseline (hard labels only)"
    done_or_run baseline $train_cmd "$lm_exp/log/train_baseline.log" \
      asr-kd train-lm --config "$student_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
        --vocab "$lm_data/lang" --out "$lm_exp/baseline" --seed "$seed" --resume --threads "$student_threads" "${common[@]}" &
    pids+=($!)
  fi
  if [ $stop_stage -ge 5 ]; then
    log "Stage 5: student distillation (alpha $alpha, tau $tau, trust $trust)"
    if [ "$use_cache" = true ]; then src=(--teacher-cache "$lm_exp/teacher_cache")
    else src=(--teacher "${teachers[@]}" --ensemble "$ensemble"); fi
    done_or_run student $train_cmd "$lm_exp/log/distill_student.log" \
      asr-kd distill --config "$student_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
        --out "$lm_exp/student" "${src[@]}" --alpha "$alpha" --tau "$tau" --trust "$trust" \
        --trust-k "$trust_k" --trust-beta "$trust_beta" --seed "$seed" --resume --threads "$student_threads" "${common[@]}" &
    pids+=($!)
  fi
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  [ $rc -eq 0 ] || { echo "$0: baseline or student training failed (logs: $lm_exp/log/)" >&2; exit 1; }
fi

systems=(teacher baseline student)
models_of() { case $1 in teacher) echo "${teachers[@]}" ;; *) echo "$lm_exp/$1" ;; esac; }
# The student exported to int8 ONNX (asr-kd export --format int8, self-checked against the
# fp32 student) is scored as one more system, student_int8: its size, speed and WER in the report.
if [ "$int8_student" = auto ]; then
  if python -c 'import onnxruntime' 2>/dev/null; then int8_student=true; else int8_student=false; fi
fi
if [ "$int8_student" = true ]; then
  if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
    log "Stage 6: int8 ONNX export of the student"
    if done_or_run student_int8 asr-kd export --model "$lm_exp/student" --format int8 \
         --out "$lm_exp/student_int8" $q; then :
    else log "  int8 export refused (above); no student_int8 row"; int8_student=false; fi
  fi
  if [ "$int8_student" = true ] && [ -f "$lm_exp/student_int8/config.json" ]; then systems+=(student_int8); fi
fi

if [ $stage -le 6 ] && [ $stop_stage -ge 6 ]; then
  log "Stage 6: perplexities (sentence mode, validation text${lm_test:+; stream and sentence mode, $lm_test})"
  mkdir -p "$exp/ppl"
  for s in "${systems[@]}"; do
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
    for s in "${systems[@]}"; do
      out=$exp/rescore/$set.$s.jsonl.gz
      key=$(rescore_key "$in" $(models_of $s))
      if [ "$nj" -le 1 ]; then
        done_or_run rescore_${set}_$s.$key asr-kd rescore --nbest "$in" --model $(models_of $s) \
          --ensemble "$ensemble" --name "$s" --out "$out" --batch-tokens "$batch_tokens" \
          --stats-out "$exp/rescore/$set.$s.stats.json" --threads "$threads" "${tf[@]}" "${common[@]}"
      else
        done_or_run rescore_${set}_$s.$key rescore_sharded "$out" "$exp/rescore/$set.$s.stats.json" \
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
  for s in first_pass "${systems[@]}"; do
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
  mkdir -p "$exp/compare"
  for set in dev eval; do
    for pair in $pairs; do
      a=${pair%%:*}; b=${pair##*:}
      to "$exp/compare/$set.${a}_vs_$b.json" asr-kd compare --ref "$data/$set.ref" \
        "$exp/score/$a/$set.hyp" "$exp/score/$b/$set.hyp" "${nz[@]}" --seed "$seed" --json \
        --details "$exp/compare/$set.${a}_vs_$b"
    done
  done
fi

report_one() {
  int8_row=(); [[ " ${systems[*]} " == *" student_int8 "* ]] && int8_row=(--system "student_int8=$lm_exp/student_int8")
  asr-kd report --exp "$exp" --out "$exp/report" --system first_pass \
    --system "teacher=$(models_of teacher | tr ' ' ',')" --system "baseline=$lm_exp/baseline" \
    --system "student=$lm_exp/student" "${int8_row[@]}" --sets dev,eval
  log "report: $exp/report/report.md"
}
if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  log "Stage 9: report"
  report_one
fi

if [ -n "$frontier" ] && [ $stage -le 10 ] && [ $stop_stage -ge 10 ]; then
  frontier_stage
  log "Report with the size frontier"
  report_one
fi
