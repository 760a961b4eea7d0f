#!/usr/bin/env bash
# Usage: local/import_kaldi_nbest.sh [--n 100] [--acwt 0.0833] <decode-dir> <lang-dir> <out-dir>
# Turns a Kaldi decode directory's lattices into the nbest-to-linear archives
# asr-kd reads (words_text, acwt, lmwt.withlm), as steps/rnnlmrescore.sh does.
set -euo pipefail
n=100; acwt=0.0833
while [[ $# -gt 3 ]]; do
  case $1 in
    --n) n=$2; shift 2 ;;
    --acwt) acwt=$2; shift 2 ;;
    *) echo "$0: unknown option $1" >&2; exit 1 ;;
  esac
done
[ $# -eq 3 ] || { sed -n 2,4p "$0"; exit 1; }
dir=$1; lang=$2; out=$3
if ! command -v lattice-to-nbest >/dev/null || ! command -v nbest-to-linear >/dev/null; then
  cat >&2 <<MSG
$0: Kaldi binaries not on PATH (set KALDI_ROOT in path.sh). On the Kaldi machine run:
  mkdir -p $out
  lattice-to-nbest --acoustic-scale=$acwt --n=$n "ark:gunzip -c $dir/lat.*.gz |" ark:- | \\
    nbest-to-linear ark:- ark,t:$out/ali ark,t:$out/words ark,t:$out/lmwt.withlm ark,t:$out/acwt
  utils/int2sym.pl -f 2- $lang/words.txt < $out/words > $out/words_text
then copy $out (words_text, acwt, lmwt.withlm) here and pass it as --nbest-dev/--nbest-eval
with --nbest-format kaldi.
MSG
  exit 1
fi
mkdir -p "$out"
lattice-to-nbest --acoustic-scale=$acwt --n=$n "ark:gunzip -c $dir/lat.*.gz |" ark:- | \
  nbest-to-linear ark:- "ark,t:$out/ali" "ark,t:$out/words" "ark,t:$out/lmwt.withlm" "ark,t:$out/acwt"
awk -v wt="$lang/words.txt" 'BEGIN{while((getline l < wt) > 0){split(l,a," "); s[a[2]]=a[1]}}
  {printf "%s", $1; for(i=2;i<=NF;i++) printf " %s", s[$i]; printf "\n"}' "$out/words" > "$out/words_text"
echo "$0: wrote $out ($(wc -l < "$out/acwt") hypotheses)"
