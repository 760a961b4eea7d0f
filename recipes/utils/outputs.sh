# Recipe outputs written whole or not at all, and one run at a time per experiment folder.
# Sourced by every recipe (needs `python` or `python3`, for the lock).
#
# `to FILE CMD [ARGS...]`: CMD's standard output into FILE, written to a temporary
#   name beside it (.tmp-NAME.HOST-PID.XXXXXX, the library's pattern), synced and
#   renamed only when CMD succeeds: a killed or failed CMD leaves FILE as it was (or
#   absent), never empty or partial. Temporaries of dead writers are removed first.
#   `to FILE cat SRC` is the atomic copy.
# `lock_dirs DIR...`: an exclusive lock on DIR/.lock for as long as this shell (and any
#   job it started) lives; a second run on the same DIR stops with one line naming it and
#   the holder's pid. The kernel drops the lock when the holders die (no stale locks).
#   Folders locked by the run that started this one (run_seeds.sh) are not locked again.
_host=$(hostname 2>/dev/null | cut -d. -f1); _host=${_host:-host}

to() {
  local out=$1; shift
  local dir name f pid tmp rc=0
  dir=$(dirname "$out"); name=$(basename "$out")
  mkdir -p "$dir"
  for f in "$dir/.tmp-$name.$_host-"*; do
    [ -e "$f" ] || continue
    pid=${f#"$dir/.tmp-$name.$_host-"}; pid=${pid%%.*}
    case $pid in ''|*[!0-9]*) continue ;; esac
    kill -0 "$pid" 2>/dev/null || rm -rf "$f"
  done
  tmp=$(mktemp "$dir/.tmp-$name.$_host-$BASHPID.XXXXXX")
  "$@" > "$tmp" || rc=$?
  if [ $rc -ne 0 ]; then rm -f "$tmp"; return $rc; fi
  chmod 644 "$tmp"
  sync "$tmp" 2>/dev/null || true
  mv -f "$tmp" "$out"
}

lock_dirs() {
  local d real fd
  for d in "$@"; do
    mkdir -p "$d"
    real=$(realpath -m "$d")
    case " ${ASR_KD_RECIPE_LOCKS:-} " in *" $real "*) continue ;; esac
    exec {fd}>>"$d/.lock"
    "$(command -v python || command -v python3)" "$(dirname "${BASH_SOURCE[0]}")/lock_dir.py" \
      "$fd" "$d" "$$" "${0##*/}" || exit 1
    ASR_KD_RECIPE_LOCKS="${ASR_KD_RECIPE_LOCKS:-} $real"
  done
  export ASR_KD_RECIPE_LOCKS
}
