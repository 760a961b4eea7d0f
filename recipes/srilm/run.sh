#!/usr/bin/env bash
# SRILM-format N-best lists with noise and pause tokens: 1-best WER without and with the
# scoring filter, tuned weights in SRILM's form, and the wip word count against SRILM's
# nwords column. Optional (--libri true): the LibriSpeech ESPnet 30-best lists converted to
# SRILM and back score the same. Results: RESULTS.md.
# Usage: recipes/srilm/run.sh [--libri true|false]
set -euo pipefail
cd "$(dirname "$0")"
. ../utils/options.sh  # opts, opt_help, parse_options: the parser of every recipe
opts libri=false
opt_help libri "true: also the LibriSpeech ESPnet lists to SRILM and back (../shared/data)"
parse_options "$@"
case $libri in true|false) ;; *) echo "$0: --libri is true or false, not '$libri'" >&2; exit 1 ;; esac
root=$(cd ../.. && pwd)
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}
py=${PYTHON:-$root/.venv/bin/python}
asr=($py -m asr_kd.cli)
exp=exp; mkdir -p $exp
$py make_noisy_lists.py $exp/noisy
d=$exp/noisy
for f in "--no-default-noise" "" "--noise-vocab $d/noise.vocab"; do
  echo "== score am=1 lm0=1 ${f:-(default: -pau-)}"
  "${asr[@]}" score --nbest $d/nbest --ref $d/refs --weight am=1 --weight lm0=1 $f
done
for f in "--no-default-noise" "--noise-vocab $d/noise.vocab"; do
  echo "== tune am,lm0 --wip $f"
  "${asr[@]}" tune --nbest $d/nbest --ref $d/refs --scores am,lm0 --wip $f --print-srilm \
    --out $exp/weights.json | sed '/^WER along/,$d'
done
# Under the filter, wip (words in the filtered text) equals SRILM's nwords column (real words):
# the same weight on either picks the same hypotheses; without the filter it does not.
w=$($py -c "import json; print(json.load(open('$exp/weights.json'))['wip'])")
lm=$($py -c "import json; print(json.load(open('$exp/weights.json'))['lm0'])")
for f in "--no-default-noise" "--noise-vocab $d/noise.vocab"; do
  for k in wip nwords; do
    echo "== score am=1 lm0=$lm $k=$w $f"
    "${asr[@]}" score --nbest $d/nbest --ref $d/refs --weight am=1 --weight lm0=$lm \
      --weight $k=$w $f --out-hyp $exp/hyp.$k | sed -n 1p
  done
  cmp -s $exp/hyp.wip $exp/hyp.nwords && echo "   same hypotheses" || echo "   different hypotheses"
done
if [ "$libri" = true ]; then
  L=$root/../shared/data/librispeech-espnet-nbest
  for set in dev_clean dev_other; do
    o=$exp/libri/$set; rm -rf $o; mkdir -p $exp/libri
    "${asr[@]}" convert-nbest --from espnet --to srilm $L/$set $o --srilm-am decoder \
      --srilm-lm lm --ref $L/$set/ref/text --out-ref $o.refs
    for v in "score=1" "decoder=0.6 ctc=0.4 lm=0.6"; do
      w=(); for x in $v; do w+=(--weight $x); done
      echo "== $set espnet $v"
      "${asr[@]}" score --nbest $L/$set --format espnet --ref $L/$set/ref/text "${w[@]}" \
        --out-hyp $o.a.hyp
      v2=${v/decoder/am}; v2=${v2/lm=/lm0=}; w=(); for x in $v2; do w+=(--weight $x); done
      echo "== $set SRILM (headerless log10) and back: $v2"
      "${asr[@]}" score --nbest $o --ref $o.refs --srilm-scores ctc=$o/ctc \
        --srilm-scores score=$o/score "${w[@]}" --out-hyp $o.b.hyp
      cmp -s <(sort $o.a.hyp) <(sort $o.b.hyp) && echo "   same 1-best text"
    done
  done
fi
