#!/usr/bin/env python3
"""Write a small Switchboard-like SRILM N-best set with noise and pause tokens.

    make_noisy_lists.py OUT [--utts 300] [--n 10] [--seed 0]

OUT/nbest/<utt>.nbest   headerless SRILM lists: ``ascore lscore nwords w1 w2 ...`` (log10);
                        hypotheses hold -pau-, [noise], [laughter] tokens; ``nwords`` counts
                        the real words only, as SRILM's ``ngram -rescore`` writes it
OUT/refs                references (``uttid words``) that hold [noise] / [laughter] too
OUT/noise.vocab         the noise vocabulary ([noise], [laughter]; -pau- is SRILM's own)

The acoustic score prefers hypotheses with fewer word errors (plus Gaussian noise) and
penalises noise tokens a little; the LM score is per real word.  Deterministic for a seed.
"""
import argparse
import os
import random

VOCAB = ("i you we they the a and but so yeah uh um know think like really just "
         "going to have was it that what do don't mean right okay well good pretty much "
         "people time year kind thing lot work home car school money house").split()
NOISE = ("[noise]", "[laughter]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--utts", type=int, default=300)
    ap.add_argument("--n", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, "nbest"), exist_ok=True)
    refs = []
    for i in range(a.utts):
        utt = f"sw_{4000 + i // 20}-{'AB'[i % 2]}_{i:04d}"
        words = [rng.choice(VOCAB) for _ in range(rng.randint(2, 12))]
        ref = []
        for w in words:      # transcribers mark noise and laughter between words
            if rng.random() < 0.08:
                ref.append(rng.choice(NOISE))
            ref.append(w)
        refs.append(f"{utt} {' '.join(ref)}")
        lines = []
        for _ in range(a.n):
            hyp, errs = [], 0
            for w in words:
                r = rng.random()
                if r < 0.06:
                    errs += 1                                  # deletion
                    continue
                if r < 0.16:
                    errs += 1
                    hyp.append(rng.choice(VOCAB))              # substitution (maybe right)
                else:
                    hyp.append(w)
                if rng.random() < 0.03:
                    errs += 1
                    hyp.append(rng.choice(VOCAB))              # insertion
            toks = []
            for w in hyp:    # the recogniser's pause and noise models fire between words
                if rng.random() < 0.25:
                    toks.append("-pau-")
                if rng.random() < 0.06:
                    toks.append(rng.choice(NOISE))
                toks.append(w)
            if rng.random() < 0.3:
                toks.append("-pau-")
            noise = len(toks) - len(hyp)
            ascore = -30.0 - 3.0 * len(hyp) - 4.0 * errs - 0.3 * noise + rng.gauss(0, 4.0)
            lscore = -1.6 * len(hyp) + rng.gauss(0, 1.0)
            lines.append(f"{ascore:.4f} {lscore:.4f} {len(hyp)} {' '.join(toks)}".rstrip())
        with open(os.path.join(a.out, "nbest", f"{utt}.nbest"), "w") as f:
            f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.out, "refs"), "w") as f:
        f.write("\n".join(refs) + "\n")
    with open(os.path.join(a.out, "noise.vocab"), "w") as f:
        f.write("\n".join(NOISE) + "\n")


if __name__ == "__main__":
    main()
