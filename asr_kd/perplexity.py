"""Perplexity of a model on a text, in stream or sentence mode.

* ``sentence``: every sentence scored as ``<s> w1 .. wn </s>`` from a fresh
  state (what N-best rescoring sees);
* ``stream``: the concatenated text ``<s> s1 </s> s2 </s> ...`` scored with
  the state carried across sentences (what the PTB literature reports).  One
  stream, no tokens dropped.

Tokens counted are the predicted ones (words plus one ``</s>`` per sentence).
``word_ppl`` is the same log-likelihood per word (the text's words plus one
``</s>`` per sentence): equal to ``ppl`` for a word vocabulary, and the number
to compare across tokenizers for a SentencePiece model, whose ``ppl`` is per piece.
Words outside a word vocabulary are scored as ``<unk>`` (as PTB does, where
rare words are already ``<unk>``) and counted in ``oov``.
"""
from __future__ import annotations

import math

import torch

from .corpus import IGNORE_INDEX, SentenceBatches


@torch.no_grad()
def perplexity(model, tokenizer, sentences: list[str], mode: str = "stream",
               device="cpu", batch_size: int = 64, bptt: int = 256, quiet: bool = True) -> dict:
    """{'ppl', 'tokens', 'oov', 'sentences', 'nll', 'words', 'word_ppl'} for ``sentences``
    under ``model`` (``words`` counts one ``</s>`` per sentence, as ``tokens`` does)."""
    from .progress import progress

    if mode not in ("stream", "sentence"):
        raise ValueError(f"mode must be stream or sentence, got {mode!r}")
    device = torch.device(device)
    model.eval().to(device)
    ids = [tokenizer.encode(s) for s in sentences]
    oov = sum(tokenizer.count_oov(s) for s in sentences)
    nll, ntok = 0.0, 0
    if mode == "sentence":
        batches = SentenceBatches(ids, tokenizer.bos, tokenizer.eos, batch_size, shuffle=False,
                                  max_len=10**9)
        # Sort by length so padding is small; the sum does not depend on order.
        batches.seqs.sort(key=len)
        for b in progress(batches.epoch(0), total=len(batches), quiet=quiet, desc="ppl"):
            lp, _ = model.token_logprobs(b.inputs.to(device), b.targets.to(device))
            nll -= float(lp.double().sum())
            ntok += int((b.targets != IGNORE_INDEX).sum())
    else:
        stream = [tokenizer.bos]
        for s in ids:
            stream += s + [tokenizer.eos]
        data = torch.tensor(stream, dtype=torch.long, device=device).unsqueeze(0)
        state = model.init_state(1, device)
        for i in progress(range(0, data.shape[1] - 1, bptt), quiet=quiet, desc="ppl"):
            x = data[:, i: min(i + bptt, data.shape[1] - 1)]
            y = data[:, i + 1: i + 1 + x.shape[1]]
            lp, state = model.token_logprobs(x, y, state)
            nll -= float(lp.double().sum())
            ntok += y.numel()
    words = sum(len(s.split()) for s in sentences) + len(sentences)
    return {"ppl": math.exp(nll / max(ntok, 1)), "tokens": ntok, "oov": oov,
            "sentences": len(sentences), "nll": nll, "words": words,
            "word_ppl": math.exp(nll / max(words, 1))}
