# Kaldi-style option parsing, sourced by run.sh after its defaults:
#   --some-option VALUE  sets $some_option (which must already exist),
#   --some-option=VALUE  likewise; --help prints the defaults.
# Unknown options are refused, so a typo never runs the wrong experiment.
while true; do
  [ -z "${1:-}" ] && break
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options]"; echo "Options (default):"
      for v in $_opts; do h=_help_$v; printf '  --%-20s %-16s %s\n' "${v//_/-}" "${!v:-''}" "${!h:-}"; done
      exit 0 ;;
    --*=*)
      name=${1%%=*}; name=${name#--}; name=${name//-/_}; value=${1#*=} ;;
    --*)
      name=${1#--}; name=${name//-/_}
      [ $# -lt 2 ] && { echo "$0: option $1 needs a value" >&2; exit 1; }
      value=$2; shift ;;
    *) break ;;
  esac
  if ! printf '%s\n' $_opts | grep -qx "$name"; then
    echo "$0: unknown option --${name//_/-} (see $0 --help)" >&2; exit 1
  fi
  printf -v "$name" '%s' "$value"
  shift
done
