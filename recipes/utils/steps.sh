# The one sentinel scheme of every recipe: a step that is done is not done again.
# Sourced by a recipe (needs `python` or `python3`):
#
#   log MESSAGE...                 a line with the time and the recipe's line number
#   done_or_run DIR NAME CMD...    runs CMD unless DIR/.done/NAME says it finished with the
#                                  same options and inputs
#
# The sentinel holds the step's signature (utils/step_signature.py: its options, and the
# checksums or mtimes of the files and models it reads). A changed option or input reruns
# the step from scratch: its --out folder is removed first (so --resume cannot continue the
# old run), but only inside the folders of the array step_outputs_under (set by the
# recipe), and a retrained model changes the inputs of every later step. While CMD runs the
# signature is DIR/.done/NAME.running: an interrupted step run again with the same options
# goes on (CMD's --resume), with other options it starts again. A folder a step reads is
# signed by its files, so a recipe writes nothing into a model folder after the step that
# made it (a perplexity file there would make every step that reads the model run again).
_utils=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_utils_py=$(command -v python || command -v python3)
step_outputs_under=()

log() { echo -e "$(date '+%Y-%m-%d %H:%M:%S') (${BASH_SOURCE[1]##*/}:${BASH_LINENO[0]}) $*"; }

done_or_run() {
  local dir=$1 name=$2; shift 2
  local sentinel=$dir/.done/$name sig
  mkdir -p "$dir/.done"
  sig=$(mktemp "$dir/.done/.sig.XXXXXX")
  "$_utils_py" "$_utils/step_signature.py" sign "$@" > "$sig"
  if [ -f "$sentinel" ]; then
    if [ ! -s "$sentinel" ]; then
      log "  $name: done before (recorded without its options by an older recipe), skipping"
      rm -f "$sig"; return 0
    elif cmp -s "$sentinel" "$sig"; then
      log "  $name: done before, skipping"; rm -f "$sig"; return 0
    fi
    log "  $name: made with other options or inputs ($("$_utils_py" "$_utils/step_signature.py" diff "$sentinel" "$sig")): running it again"
    rm -f "$sentinel"; _remove_output "$@"
  elif [ -f "$sentinel.running" ] && ! cmp -s "$sentinel.running" "$sig"; then
    log "  $name: an unfinished run with other options ($("$_utils_py" "$_utils/step_signature.py" diff "$sentinel.running" "$sig")): starting again"
    _remove_output "$@"
  fi
  mv "$sig" "$sentinel.running"
  "$@" || return  # (set -e is off where the caller tests the result)
  mv "$sentinel.running" "$sentinel"
}

# The --out folder of a step's command, removed before a rerun with other options (only
# inside step_outputs_under; elsewhere the user is asked to remove it).
_remove_output() {
  local prev= w root ok
  for w in "$@"; do
    if [ "$prev" = --out ] && [ -d "$w" ]; then
      ok=false
      for root in "${step_outputs_under[@]}"; do
        case $(realpath -m "$w") in "$(realpath -m "$root")"/*) ok=true ;; esac
      done
      $ok || { echo "$0: $w was made with other options; remove it to rerun" >&2; exit 1; }
      rm -rf "$w"
    fi
    prev=$w
  done
}
