# The option parser of every recipe (Kaldi's utils/parse_options.sh, with each option
# declared once, beside its default). Sourced by a recipe before its defaults:
#
#   opts name=default [name=default ...]   sets each $name and adds it to the options
#                                          accepted and listed by --help, in this order
#   opt_help name "what it does"           --help's one line for an option
#   parse_options "$@"                     --name VALUE or --name=VALUE sets $name
#   parse_options --pass-unknown "$@"      the same, but words that are not our options go,
#                                          in order, into the array $passed (a recipe that
#                                          hands them on to another)
#
# Without --pass-unknown an unknown option is refused, so a typo never runs the wrong
# experiment; so is any argument that is not an option (each option takes exactly one
# value: `--stage 8 9` would otherwise drop everything after the 9). --help prints
# "Usage: $0 $opts_usage" and the options with their defaults, and exits.
_opts=
opts_usage="[options]"
passed=()
opt_help() { printf -v "_help_$1" '%s' "$2"; }
opts() {
  local kv
  for kv in "$@"; do
    printf -v "${kv%%=*}" '%s' "${kv#*=}"
    _opts+="${_opts:+ }${kv%%=*}"
  done
}
_is_opt() { [[ " $_opts " == *" $1 "* ]]; }
parse_options() {
  local pass=false name value v h
  [ "${1:-}" = --pass-unknown ] && { pass=true; shift; }
  passed=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --help|-h)
        echo "Usage: $0 $opts_usage"; echo "Options (default):"
        for v in $_opts; do h=_help_$v; printf '  --%-20s %-16s %s\n' "${v//_/-}" "${!v:-''}" "${!h:-}"; done
        exit 0 ;;
      --*=*)
        name=${1%%=*}; name=${name#--}; name=${name//-/_}; value=${1#*=} ;;
      --*)
        name=${1#--}; name=${name//-/_}
        if _is_opt "$name"; then
          [ $# -lt 2 ] && { echo "$0: option $1 needs a value" >&2; exit 1; }
          value=$2; shift
        fi ;;
      *)
        if $pass; then passed+=("$1"); shift; continue; fi
        echo "$0: unexpected argument '$1': options are --name VALUE pairs, each with one" \
          "value (e.g. --stage 8 --stop-stage 9; see $0 --help)" >&2; exit 1 ;;
    esac
    if ! _is_opt "$name"; then
      if $pass; then passed+=("$1"); shift; continue; fi
      echo "$0: unknown option --${name//_/-} (see $0 --help)" >&2; exit 1
    fi
    printf -v "$name" '%s' "$value"
    shift
  done
}
