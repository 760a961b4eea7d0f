#!/usr/bin/env python3
"""Write every K-th utterance of an N-best set as SRILM NBestList2.0 files, one per utterance.

    to_srilm_nbest2.py NBEST OUT_DIR [--format espnet] [--ref TEXT] [--every 4]
        [--am decoder=0.6,ctc=0.4] [--lm lm]

Per hypothesis: the acoustic score is the weighted sum ``--am`` of its scores and the
LM score the ``--lm`` score (natural logs), both written as bytelogs
(ln p / (1024 / 10000.5), SRILM's BytelogToLogP) with three decimals (SRILM reads
them with atof; whole bytelogs, 0.1 nat, would erase most of ESPnet's acoustic
differences), spread evenly over the words' ``a:`` and ``g:`` fields with made-up times
(0.3 s per word); the line's ``(score)`` is their sum, as nbest-format(5) requires.
An empty hypothesis has no word to carry scores, so it is left out.  The
references go to ``OUT_DIR/ref.txt`` (Kaldi text), the lists to ``OUT_DIR/nbest/``.
"""
from __future__ import annotations

import argparse
import os

from asr_kd.nbest import attach_refs, read_nbest, read_refs
from asr_kd.nbest.srilm import BYTELOG_TO_LN


def bytelog_split(total_ln: float, n: int) -> list[float]:
    """A bytelog total spread over ``n`` words, each rounded to 3 decimals."""
    total = total_ln / BYTELOG_TO_LN
    return [round(total / n, 3)] * n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("nbest")
    ap.add_argument("out")
    ap.add_argument("--format", default=None)
    ap.add_argument("--ref")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--am", default="decoder=0.6,ctc=0.4")
    ap.add_argument("--lm", default="lm")
    a = ap.parse_args()
    am = {k: float(v) for k, v in (kv.split("=") for kv in a.am.split(","))}
    nb = read_nbest(a.nbest, a.format)
    if a.ref:
        attach_refs(nb, read_refs(a.ref), a.ref)
    os.makedirs(os.path.join(a.out, "nbest"), exist_ok=True)
    with open(os.path.join(a.out, "ref.txt"), "w", encoding="utf-8") as refs:
        for i, u in enumerate(nb):
            if i % a.every:
                continue
            refs.write(f"{u.utt} {u.ref}\n")
            lines = ["NBestList2.0"]
            for h in u.hyps:
                words = h.words
                if not words:
                    continue
                ac = bytelog_split(sum(w * h.scores[k] for k, w in am.items()), len(words))
                lm = bytelog_split(h.scores[a.lm], len(words))
                fields = [f"{w} ( st: {0.3 * j:.2f} et: {0.3 * j + 0.29:.2f} g: {g} a: {c} )"
                          for j, (w, g, c) in enumerate(zip(words, lm, ac))]
                lines.append(f"({sum(ac) + sum(lm):.3f}) " + " ".join(fields))
            with open(os.path.join(a.out, "nbest", f"{u.utt}.nbest"), "w",
                      encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
