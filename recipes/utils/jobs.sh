# How every recipe runs jobs side by side. Sourced by a recipe:
#
#   spawn CMD [ARGS...]   runs CMD (a command or a shell function) in the background as one
#                         of this shell's jobs; when $max_jobs (default: no limit) are already
#                         running, it first waits for the oldest of them
#   wait_jobs WHAT        waits for every spawned job; if any failed: "$0: WHAT failed" on
#                         stderr and status 1 (WHAT names the logs to look at)
#
# A job that should keep its output in a log runs through $train_cmd or $cpu_cmd
# (utils/run_local.sh LOG CMD..., or utils/slurm.sh on a cluster; see the recipe's cmd.sh).
_jobs=()
_jobs_failed=0
spawn() {
  if [ "${max_jobs:-0}" -gt 0 ] && [ ${#_jobs[@]} -ge "$max_jobs" ]; then
    wait "${_jobs[0]}" || _jobs_failed=1
    _jobs=("${_jobs[@]:1}")
  fi
  "$@" &
  _jobs+=($!)
}
wait_jobs() {
  local p failed=$_jobs_failed
  for p in "${_jobs[@]}"; do wait "$p" || failed=1; done
  _jobs=(); _jobs_failed=0
  [ $failed -eq 0 ] || { echo "$0: $1 failed" >&2; return 1; }
}
