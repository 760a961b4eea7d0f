#!/usr/bin/env bash
# Usage: utils/run_local.sh LOG COMMAND [ARGS...]
# Runs COMMAND locally, output to LOG (stderr progress bars too); on failure
# prints the last lines of LOG and exits with COMMAND's status.
log=$1; shift
mkdir -p "$(dirname "$log")"
echo "# $*" > "$log"
echo "# started $(date)" >> "$log"
"$@" >> "$log" 2>&1
rc=$?
echo "# ended $(date) with status $rc" >> "$log"
if [ $rc -ne 0 ]; then
  echo "$0: command failed (status $rc), see $log:" >&2
  tail -n 5 "$log" >&2
fi
exit $rc
