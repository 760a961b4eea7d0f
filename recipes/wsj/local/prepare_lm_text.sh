#!/usr/bin/env bash
# Usage: local/prepare_lm_text.sh (--lm-text FILE | --wsj1-lm-root DIR) OUT_DIR
# Writes OUT_DIR/all.txt (one sentence per line, upper case, no SGML).
# --wsj1-lm-root: LDC WSJ1 lng_modl/lm_train/np_data/{87,88,89}/*.z, compressed
# with `compress`; SGML lines (<art>, <p>, <s> ...) are dropped and text upper-cased,
# as Kaldi's local/wsj_extend_dict.sh does.
set -euo pipefail
lm_text= ; wsj1_lm_root=
while [[ $# -gt 1 ]]; do
  case $1 in
    --lm-text) lm_text=$2; shift 2 ;;
    --wsj1-lm-root) wsj1_lm_root=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
out=$1
mkdir -p "$out"
if [ -n "$lm_text" ]; then
  [ -f "$lm_text" ] || { echo "$0: no such file: $lm_text" >&2; exit 1; }
  case $lm_text in *.gz) cat_cmd="gzip -dc" ;; *) cat_cmd=cat ;; esac
  $cat_cmd "$lm_text" | awk 'NF > 0' > "$out/all.txt.tmp"
elif [ -n "$wsj1_lm_root" ]; then
  src=$wsj1_lm_root/lng_modl/lm_train/np_data
  [ -d "$src" ] || src=$wsj1_lm_root   # also accept the np_data folder itself
  files=$(find "$src" -name '*.z' | sort)
  [ -n "$files" ] || { echo "$0: no *.z files under $src" >&2; exit 1; }
  for f in $files; do gzip -dc "$f"; done \
    | grep -v '^<' | tr '[:lower:]' '[:upper:]' | awk 'NF > 0' > "$out/all.txt.tmp"
else
  echo "$0: give --lm-text or --wsj1-lm-root" >&2; exit 1
fi
[ -s "$out/all.txt.tmp" ] || { echo "$0: LM text is empty" >&2; exit 1; }
mv "$out/all.txt.tmp" "$out/all.txt"
echo "$0: $(wc -l < "$out/all.txt") sentences in $out/all.txt"
