# Kaldi-style option parsing, sourced by run.sh after its defaults:
#   --some-option VALUE  sets $some_option (which must already exist),
#   --some-option=VALUE  likewise; --help prints the defaults.
# Unknown options are refused, so a typo never runs the wrong experiment; so is any
# argument that is not an option (each option takes exactly one value: `--stage 8 9`
# would otherwise drop everything after the 9).
while true; do
  [ $# -eq 0 ] && break
  case "$1" in
    --help|-h)
      echo "Usage: $0 [options]"; echo "Options (default):"
      for v in $_opts; do h=_help_$v; printf '  --%-20s %-16s %s\n' "${v//_/-}" "${!v:-''}" "${!h:-}"; done
      exit 0 ;;
    --*=*)
      name=${1%%=*}; name=${name#--}; name=${name//-/_}; value=${1#*=} ;;
    --*)
      name=${1#--}; name=${name//-/_}
      if ! printf '%s\n' $_opts | grep -qx "$name"; then
        echo "$0: unknown option $1 (see $0 --help)" >&2; exit 1
      fi
      [ $# -lt 2 ] && { echo "$0: option $1 needs a value" >&2; exit 1; }
      value=$2; shift ;;
    *)
      echo "$0: unexpected argument '$1': options are --name VALUE pairs, each with one" \
        "value (e.g. --stage 8 --stop-stage 9; see $0 --help)" >&2; exit 1 ;;
  esac
  if ! printf '%s\n' $_opts | grep -qx "$name"; then
    echo "$0: unknown option --${name//_/-} (see $0 --help)" >&2; exit 1
  fi
  printf -v "$name" '%s' "$value"
  shift
done
