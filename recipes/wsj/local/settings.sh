# What run.sh and run_seeds.sh derive from the options (local/options.sh), and the helpers
# their stages share. Sourced by both after the options.

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
# A step that changes its options reruns from scratch; the output folders it may remove.
step_outputs_under=("$exp" "$lm_exp" "$lm_data" "$data")

teachers=()
for k in $(seq 1 "$num_teachers"); do teachers+=("$lm_exp/teacher$k"); done
fp_keys=$first_pass_scores
# Significance tests of stage 8, A:B (is B better than A?).
pairs="teacher:student baseline:student first_pass:student baseline:teacher first_pass:teacher"
# `significance PATHS_OF`: stage 8's tests of every pair on dev and eval, into $exp/compare;
# `PATHS_OF REL` names the hypothesis file(s) of REL: this run's (this_run), or every seed
# run's, comma-separated (run_seeds.sh's runs), which pools them.
this_run() { echo "$exp/$1"; }
significance() {
  local paths_of=$1 set pair a b
  mkdir -p "$exp/compare"
  for set in dev eval; do
    for pair in $pairs; do
      a=${pair%%:*}; b=${pair##*:}
      to "$exp/compare/$set.${a}_vs_$b.json" asr-kd compare --ref "$data/$set.ref" \
        "$($paths_of "score/$a/$set.hyp")" "$($paths_of "score/$b/$set.hyp")" "${nz[@]}" \
        --seed "$seed" --json --details "$exp/compare/$set.${a}_vs_$b"
    done
  done
}
# The scoring filter of stage 8 (tune, score, compare).
nz=(); [ -n "$noise" ] && nz+=(--noise "$noise"); [ -n "$noise_vocab" ] && nz+=(--noise-vocab "$noise_vocab")
# --int8-student auto: when onnxruntime is installed.
if [ "$int8_student" = auto ]; then
  if python -c 'import onnxruntime' 2>/dev/null; then int8_student=true; else int8_student=false; fi
fi

# The LM systems of stages 6-9: the student_int8 row when its export was made (stage 5).
systems() {
  echo teacher baseline student
  if [ "$int8_student" = true ] && [ -f "$lm_exp/student_int8/config.json" ]; then echo student_int8; fi
}
models_of() { case $1 in teacher) echo "${teachers[@]}" ;; *) echo "$lm_exp/$1" ;; esac; }

# `rescore_sharded OUT STATS LOG_PREFIX ARGS...`: $nj jobs of `asr-kd rescore ARGS --shard i/$nj`
# at once through $cpu_cmd, then a merge that refuses missing or stale shards.
rescore_sharded() {
  local out=$1 stats=$2 logp=$3; shift 3
  local i st
  for i in $(seq 0 $((nj - 1))); do
    st=(); [ "$i" -eq 0 ] && st=(--stats-out "$stats")  # one job's speed, for the report
    spawn $cpu_cmd "$logp.$i.log" asr-kd rescore "$@" --out "$out" --shard "$i/$nj" "${st[@]}"
  done
  wait_jobs "a rescoring shard job (logs: $logp.*.log)" || return 1
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
