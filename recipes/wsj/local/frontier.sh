# The size frontier (--frontier SIZES, stage 10), sourced by run.sh and run_seeds.sh: it
# uses their options and helpers (utils/: done_or_run, to, spawn, log; local/settings.sh:
# share, rescore_key, rescore_sharded) and $seeds, the number of seed runs.
#
# For every size (syntax: asr_kd/frontier_sizes.py) and every seed run R of run_seeds.sh, the
# same-size baseline on hard labels and the distilled student(s) (one per trust mode of
# --frontier-trust) train side by side from the recipe's own teacher(s) of run R (its top-K
# cache with --use-cache true); the int8 student is exported where --frontier-int8 asks;
# then perplexities, rescoring of dev and eval, tuning on dev and scoring as stages 6-8,
# and per size the student-vs-baseline tests pooled over the runs. Layout:
#   $lm_exp/frontier/SIZE/seedR/{baseline,student,student_MODE,student_int8}  models
#   $exp/frontier/SIZE/seedR/{models.json,ppl,rescore,score}                   results
#   $exp/frontier/SIZE/compare/SET.baseline_vs_STUDENT.json                    pooled tests
#   $exp/frontier/sizes.json                                                   the plan
# The report (asr-kd report) reads them into its frontier section.

# The plan, one line per size: NAME LAYERS HIDDEN EMBED PROJ INT8 MODES (local/frontier_sizes.py);
# with --json, as JSON. A malformed --frontier* option stops here with one line.
frontier_plan() {
  local i8=$frontier_int8
  [ "$i8" = auto ] && i8=$int8_student  # (true or false: local/settings.sh resolved its auto)
  python local/frontier_sizes.py --sizes "$frontier" --trust "${frontier_trust:-$trust}" \
    --trust-at "$frontier_trust_at" --int8 "$i8" "$@"
}

# `frontier_runs SIZE PATH`: the seed runs' copies of one file, comma-separated.
frontier_runs() {
  local r out=
  for r in $(seq 1 "$seeds"); do out+="${out:+,}$exp/frontier/$1/seed$r/$2"; done
  echo "$out"
}

# One size, one seed run: train, export, perplexities, rescore, tune, score.
frontier_one() {
  local name=$1 layers=$2 hidden=$3 embed=$4 proj=$5 int8=$6 modes=$7 r=$8
  local sd=$((seed + 1000 * (r - 1))) tl=$lm_exp te=$exp
  if [ "$seeds" -gt 1 ]; then tl=$lm_exp/seed$r; te=$exp/seed$r; fi  # the recipe's run R
  local m=$lm_exp/frontier/$name/seed$r e=$exp/frontier/$name/seed$r
  local arch=(--num-layers "$layers" --hidden-dim "$hidden" --embed-dim "$embed" --proj-dim "$proj")
  local ms k mode s src=() sys=(baseline) th set in out key keys signed lmkey fb d
  IFS=, read -ra ms <<< "$modes"
  if [ "$use_cache" = true ]; then src=(--teacher-cache "$tl/teacher_cache")
  else
    src=(--teacher); for k in $(seq 1 "$num_teachers"); do src+=("$tl/teacher$k"); done
    src+=(--ensemble "$ensemble")
  fi
  # The baseline and every student at once, the cores shared out among them.
  th=$(share $((1 + ${#ms[@]})))
  log "  $name, run $r (seed $sd): baseline and student(s) (trust ${modes//,/, }), $th thread(s) each"
  spawn done_or_run "$lm_exp" "frontier_lm_${name}_s${r}_baseline" $train_cmd "$m/log/train_baseline.log" \
    asr-kd train-lm --config "$student_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
      --vocab "$lm_data/lang" --out "$m/baseline" --seed "$sd" --resume --threads "$th" "${common[@]}" \
      "${arch[@]}"
  for mode in "${ms[@]}"; do
    s=student; [ "$mode" = "${ms[0]}" ] || s=student_$mode  # the first mode is the main student
    sys+=("$s")
    spawn done_or_run "$lm_exp" "frontier_lm_${name}_s${r}_$s" $train_cmd "$m/log/distill_$s.log" \
      asr-kd distill --config "$student_conf" --train "$lm_data/lm/train.txt" --valid "$lm_data/lm/valid.txt" \
        --out "$m/$s" "${src[@]}" --alpha "$alpha" --tau "$tau" --trust "$mode" --trust-k "$trust_k" \
        --trust-beta "$trust_beta" --seed "$sd" --resume --threads "$th" "${common[@]}" "${arch[@]}"
  done
  wait_jobs "frontier size $name, run $r: training (logs: $m/log/)" || exit 1
  if [ "$int8" = 1 ]; then
    if done_or_run "$lm_exp" "frontier_lm_${name}_s${r}_student_int8" asr-kd export --model "$m/student" \
         --format int8 --out "$m/student_int8" $q; then sys+=(student_int8)
    else log "  $name: int8 export refused (above); no student_int8 point"; fi
  fi
  # Which model folder each system is (the report reads their sizes and settings).
  local made=()
  for s in "${sys[@]}"; do made+=("$s=$(realpath -m "$m/$s")"); done
  to "$e/models.json" python -c 'import json, sys
print(json.dumps(dict(a.split("=", 1) for a in sys.argv[1:]), indent=1))' "${made[@]}"
  mkdir -p "$e/ppl"
  for s in "${sys[@]}"; do
    to "$e/ppl/$s.json" asr-kd ppl --model "$m/$s" --text "$lm_data/lm/valid.txt" --mode sentence \
      --json --threads "$threads" "${common[@]}"
    if [ -n "$lm_test" ]; then
      for k in stream sentence; do
        to "$e/ppl/$s.test.$k.json" asr-kd ppl --model "$m/$s" --text "$lm_test" --mode $k \
          --json --threads "$threads" "${common[@]}"
      done
    fi
  done
  local tf=(); [ -n "$text_filter" ] && tf=(--text-filter "$text_filter")
  for set in dev eval; do
    in=$data/$set.nbest.jsonl.gz
    for s in "${sys[@]}"; do
      out=$e/rescore/$set.$s.jsonl.gz
      key=$(rescore_key "$in" "$m/$s")
      if [ "$nj" -le 1 ]; then
        done_or_run "$exp" "frontier_${name}_s${r}_rescore_${set}_$s.$key" asr-kd rescore --nbest "$in" \
          --model "$m/$s" --name "$s" --out "$out" --batch-tokens "$batch_tokens" \
          --stats-out "$e/rescore/$set.$s.stats.json" --threads "$threads" "${tf[@]}" "${common[@]}"
      else  # --nj: shard jobs and a checked merge, as stage 7
        done_or_run "$exp" "frontier_${name}_s${r}_rescore_${set}_$s.$key" rescore_sharded "$out" \
          "$e/rescore/$set.$s.stats.json" "$e/log/rescore_${set}_$s" --nbest "$in" --model "$m/$s" \
          --name "$s" --batch-tokens "$batch_tokens" --threads "$rescore_threads" "${tf[@]}" "${common[@]}"
      fi
      in=$out
    done
    to "$e/rescore/$set.all.jsonl.gz" cat "$in"
  done
  for s in "${sys[@]}"; do
    d=$e/score/$s; mkdir -p "$d"
    keys=$fp_keys${extra_scores:+,$extra_scores},lm:$s; signed=
    [ "$oov_feature" = true ] && { keys=$keys,oov:$s; signed=oov:$s; }
    # as stage 8: the first pass's weights of run R are the fallback
    fb=(); [ "$fallback" = true ] && [ "$decode" != consensus ] && fb=(--fallback "$te/score/first_pass/weights.json")
    to "$d/tune.log" asr-kd tune --nbest "$e/rescore/dev.all.jsonl.gz" --scores "$keys" --wip \
      --lm-key "lm:$s" ${signed:+--signed $signed} "${fb[@]}" "${nz[@]}" --decode "$decode" \
      --out "$d/weights.json"
    for set in dev eval; do
      to "$d/$set.json" asr-kd score --nbest "$e/rescore/$set.all.jsonl.gz" --weights "$d/weights.json" \
        --json "${nz[@]}" --out-hyp "$d/$set.hyp"
    done
    log "  $name, run $r, $s: dev $(cat "$d/dev.json")"
  done
}

# Stage 10: every size, every seed run, then the pooled student-vs-baseline tests.
frontier_stage() {
  local plan line name layers hidden embed proj int8 modes r s set mode
  plan=$(frontier_plan) || exit 1
  log "Stage 10: size frontier ($frontier; $seeds run(s) each)"
  to "$exp/frontier/sizes.json" frontier_plan --json
  while read -r name layers hidden embed proj int8 modes; do
    for r in $(seq 1 "$seeds"); do
      frontier_one "$name" "$layers" "$hidden" "$embed" "$proj" "$int8" "$modes" "$r" < /dev/null
    done
    local students=()
    for mode in ${modes//,/ }; do
      [ ${#students[@]} -eq 0 ] && students+=(student) || students+=("student_$mode")
    done
    [ "$int8" = 1 ] && [ -f "$exp/frontier/$name/seed1/score/student_int8/dev.json" ] && students+=(student_int8)
    for set in dev eval; do
      for s in "${students[@]}"; do
        to "$exp/frontier/$name/compare/$set.baseline_vs_$s.json" asr-kd compare --ref "$data/$set.ref" \
          "$(frontier_runs "$name" "score/baseline/$set.hyp")" "$(frontier_runs "$name" "score/$s/$set.hyp")" \
          "${nz[@]}" --seed "$seed" --json
      done
    done
  done <<< "$plan"
}
