#!/usr/bin/env bash
# run.sh once per seed: every LM trained K times (seeds seed, seed+1000, ...), each run in
# its own $exp/seedR and $lm_exp/seedR with its own report; then the significance tests
# pooled over the runs and one report of means and ranges. CPUs round differently, so a
# difference smaller than the seed-to-seed spread is not a finding.
#
#   ./run_seeds.sh                        # the embedded mini task, 3 seeds (`make demo`)
#   ./run_seeds.sh --seeds 3 --task chime4 [any run.sh option]
#
# It takes every option of run.sh (see --help) and --seeds K (default: 3 on the embedded mini
# task, where a run takes minutes, else 1; with 1 it is run.sh itself).
# Stages: 0 data (once, by run.sh)   1-9 run.sh for each seed   8 significance pooled over
# the runs   9 the report of the runs   10 size frontier over the runs' teachers (--frontier)
set -euo pipefail
cd "$(dirname "$0")"
. ./path.sh
. ./cmd.sh
. ../utils/options.sh
. ../utils/steps.sh
. ../utils/outputs.sh
. ../utils/jobs.sh
opts seeds=
opt_help seeds "train every LM K times and report means and ranges (default: 3 on the mini task, else 1)"
. local/options.sh
if [ -z "$seeds" ]; then
  seeds=1; [ -z "$lm_text$wsj1_lm_root" ] && seeds=3  # the embedded mini task: cheap, show the spread
fi
# run.sh's options: ours without --seeds.
args=(); _skip=false
for a in "$@"; do
  if $_skip; then _skip=false; continue; fi
  case $a in --seeds) _skip=true ;; --seeds=*) ;; *) args+=("$a") ;; esac
done
[ "$seeds" -gt 1 ] || exec ./run.sh "${args[@]}"
. local/settings.sh
. local/frontier.sh
if [ -n "$frontier" ]; then frontier_plan > /dev/null || exit 1; fi
mkdir -p "$data" "$exp" "$lm_data" "$lm_exp"
lock_dirs "$exp" "$lm_exp"  # (the run.sh jobs below find them locked by us)
# `runs PATH`: $exp/seed1/PATH,$exp/seed2/PATH,... (the runs' copies of one file)
runs() { local r out=; for r in $(seq 1 "$seeds"); do out+="${out:+,}$exp/seed$r/$1"; done; echo "$out"; }
report_runs() {
  log "Report of the $seeds runs"
  asr-kd report --exp "$exp" --out "$exp/report" --runs $(runs report | tr , ' ') --sets dev,eval
  log "report: $exp/report/report.md"
}

if [ $stage -le 0 ] && [ $stop_stage -ge 0 ]; then
  ./run.sh "${args[@]}" --stop-stage 0
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 1 ]; then
  for r in $(seq 1 "$seeds"); do
    log "Run $r of $seeds: seed $((seed + 1000 * (r - 1)))"
    # (the frontier is stage 10 here, over the runs' teachers, not inside each run)
    ./run.sh "${args[@]}" --seed $((seed + 1000 * (r - 1))) \
      --stage $((stage > 1 ? stage : 1)) --data "$data" --lm-data "$lm_data" \
      --exp "$exp/seed$r" --lm-exp "$lm_exp/seed$r" --frontier ''
  done
fi

if [ $stage -le 8 ] && [ $stop_stage -ge 8 ]; then
  log "Significance over the $seeds runs pooled"
  significance runs
fi

if [ $stage -le 9 ] && [ $stop_stage -ge 9 ]; then
  report_runs
fi

if [ $stage -le 10 ] && [ $stop_stage -ge 10 ] && [ -n "$frontier" ]; then
  frontier_stage
  report_runs
fi
