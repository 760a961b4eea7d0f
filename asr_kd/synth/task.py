"""The recipe's embedded mini task: LM text, dev/eval references and N-best lists.

Layout written by :func:`make_mini_task`::

    out_dir/lm_text.txt          LM training text, one sentence per line
    out_dir/{dev,eval}/text      Kaldi text: "mini_dev_0001 W1 W2 ..."
    out_dir/{dev,eval}/nbest/    Kaldi nbest-to-linear folder: words_text,
                                 acwt (= -am), lmwt.withlm (= -lm0), keys uttid-N
    out_dir/stats.json           sizes and WERs (acoustic-only, first pass, oracle)
    out_dir/README               what all this is

Everything is a function of the arguments: the same seed gives the same bytes.
"""
from __future__ import annotations

import json
import random
import sys
from pathlib import Path

from rapidfuzz.distance import Levenshtein  # the synth extra (jiwer depends on it too)

from ..errors import InputError
from ..fileio import atomic_write
from ..nbest.kaldi import write_kaldi_nbest
from ..nbest.model import NBest
from . import grammar
from .channel import BigramLM, Channel, ChannelConfig, build_confusions

# independent random streams derived from the user's seed
_TRAIN, _DEV, _EVAL, _CHANNEL = 0, 1, 2, 3


def _stream(seed: int, k: int) -> int:
    return seed * 1_000_003 + k


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance."""
    return Levenshtein.distance(ref, hyp)


def nbest_stats(nbest: NBest) -> dict:
    """Acoustic-only, first-pass (am + lm0) and oracle WER in percent (jiwer)."""
    import jiwer

    refs = [u.ref for u in nbest]
    am_only = [max(u.hyps, key=lambda h: h.scores["am"]).text for u in nbest]
    first = [max(u.hyps, key=lambda h: h.scores["am"] + h.scores["lm0"]).text for u in nbest]
    oracle = [min(u.hyps, key=lambda h: word_errors(u.ref.split(), h.words)).text for u in nbest]
    return {
        "utterances": len(nbest),
        "ref_words": sum(len(r.split()) for r in refs),
        "hyps_per_utt": round(nbest.num_hyps() / max(1, len(nbest)), 2),
        "ref_in_nbest": round(sum(u.ref in {h.text for h in u.hyps} for u in nbest) / max(1, len(nbest)), 4),
        "wer_acoustic_only": round(100 * jiwer.wer(refs, am_only), 2),
        "wer_first_pass": round(100 * jiwer.wer(refs, first), 2),
        "wer_oracle": round(100 * jiwer.wer(refs, oracle), 2),
    }


README = """\
Synthetic WSJ-like mini task (asr_kd.synth), seed {seed}
=========================================================

Made by `recipes/wsj/local/make_mini_task.py` / asr_kd.synth.task.make_mini_task;
no downloads and no third-party text.  Same seed, same bytes.

lm_text.txt
  {n_sent} sentences, {n_words} words, {vocab} word types: upper-case newswire-like
  text from a probabilistic grammar (asr_kd/synth/grammar.py).  One sector topic
  per sentence picks companies, nouns and verbs; subjects carry prepositional
  phrases and relative clauses whose nouns have the other number, so verb
  agreement ("THE ANALYSTS WHO THE BANK HIRED EXPECT ...") and pronoun /
  possessive agreement ("MISSUS CLARK SAID SHE ... HER ...") span several words.
  An LSTM LM can learn these; a bigram cannot.

dev/text, eval/text
  {n_dev} and {n_eval} Kaldi `uttid words` references from the same grammar with
  other seeds; none of them occurs in lm_text.txt.

dev/nbest/, eval/nbest/
  Kaldi nbest-to-linear folders: words_text, acwt (acoustic cost), lmwt.withlm
  (first-pass graph+LM cost), keys uttid-N (N from 1, best first by am + lm0).
  Costs are negated natural-log scores: am = -acwt, lm0 = -lmwt.withlm.
  From a simulated recogniser (asr_kd/synth/channel.py): near-homophone
  substitutions by phone edit distance over CMUdict (EXPECT/EXPECTS,
  THERE/THEIR, IS/ARE, HE/SHE ...), short-word insertions and deletions, noisy
  acoustic scores under which the truth is often not the acoustic best; lm0 is
  an add-k smoothed bigram trained on lm_text.txt.  Up to {nbest} hypotheses;
  the reference is among them except where the simulated search lost it
  (about 3 % of utterances), so the oracle WER is small but not zero.

stats.json
  WER (%) choosing by am only, by am + lm0 (the first pass), and the oracle.
"""


def make_mini_task(out_dir, seed: int = 0, n_train_words: int = 200_000,
                   n_dev: int = 300, n_eval: int = 300, nbest: int = 20,
                   quiet: bool = True) -> dict:
    """Write the mini task under ``out_dir`` and return the stats (also in stats.json)."""
    if n_train_words < 100 or n_dev < 1 or n_eval < 1 or nbest < 1:
        raise InputError("expected n_train_words >= 100 and n_dev, n_eval, nbest >= 1")
    out = Path(out_dir)
    def log(msg: str) -> None:
        if not quiet:
            print(f"make_mini_task: {msg}", file=sys.stderr)

    train = grammar.generate(n_train_words, _stream(seed, _TRAIN))
    train_set = frozenset(train)
    dev_refs = grammar.generate_n(n_dev, _stream(seed, _DEV), exclude=train_set)
    eval_refs = grammar.generate_n(n_eval, _stream(seed, _EVAL),
                                   exclude=train_set | frozenset(dev_refs))
    log(f"{len(train)} training sentences, {n_dev} dev, {n_eval} eval references")

    lm = BigramLM(train)
    vocab = sorted({w for s in train for w in s.split()}
                   | {w for s in dev_refs + eval_refs for w in s.split()})
    channel = Channel(build_confusions(vocab), lm, ChannelConfig(nbest=nbest))

    with atomic_write(out / "lm_text.txt") as f:
        f.writelines(s + "\n" for s in train)

    stats = {
        "seed": seed,
        "train_sentences": len(train),
        "train_words": sum(len(s.split()) for s in train),
        "train_vocab": len({w for s in train for w in s.split()}),
    }
    rng = random.Random(_stream(seed, _CHANNEL))
    width = max(4, len(str(max(n_dev, n_eval))))
    for split, refs in (("dev", dev_refs), ("eval", eval_refs)):
        ids = [f"mini_{split}_{i:0{width}d}" for i in range(1, len(refs) + 1)]
        nb = NBest([channel.recognise(u, r, rng) for u, r in zip(ids, refs)])
        with atomic_write(out / split / "text") as f:
            f.writelines(f"{u} {r}\n" for u, r in zip(ids, refs))
        write_kaldi_nbest(nb, out / split / "nbest")
        stats[split] = nbest_stats(nb)
        log(f"{split}: {stats[split]}")

    with atomic_write(out / "stats.json") as f:
        json.dump(stats, f, indent=2, sort_keys=True)
        f.write("\n")
    with atomic_write(out / "README") as f:
        f.write(README.format(seed=seed, n_sent=len(train), n_words=stats["train_words"],
                              vocab=stats["train_vocab"], n_dev=n_dev, n_eval=n_eval,
                              nbest=nbest))
    return stats


__all__ = ["make_mini_task", "nbest_stats", "word_errors"]
