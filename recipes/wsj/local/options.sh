# Declaring a recipe's options, sourced before its defaults:
#   opts name=default [name=default ...]
# sets each $name to its default and appends the name to $_opts, the list that
# local/parse_options.sh accepts (anything else is refused) and --help prints, in
# the order declared.  So every option is named once, beside its default.
# `opt_help name "what it does"` gives --help's one line for an option.
_opts=
opt_help() { printf -v "_help_$1" '%s' "$2"; }
opts() {
  local kv
  for kv in "$@"; do
    printf -v "${kv%%=*}" '%s' "${kv#*=}"
    _opts+="${_opts:+ }${kv%%=*}"
  done
}
