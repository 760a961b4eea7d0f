"""Batched LM scoring of N-best hypotheses with prefix sharing.

Score of a hypothesis = log P(w1..wn </s> | <s>) in natural log (:func:`rescore_nbest`).

Two methods, same numbers (up to float rounding):

* ``padded``: every hypothesis as its own padded row (the naive baseline);
* ``trie`` (shipped): identical token sequences are scored once, and the
  sequences of a group of utterances are merged into a prefix trie walked
  level by level: one LSTM step for all trie nodes of a depth, one output
  layer evaluation per node that has children.  On 30-best lists most
  hypotheses share long prefixes, so this evaluates far fewer tokens (about
  half on LibriSpeech 30-best lists).  The trie drives any model through the
  :class:`asr_kd.lm.LanguageModel` base only (``init_state``, a ``hidden`` step
  of a level's nodes, ``logprobs`` on row chunks), so an ensemble combines its
  members inside ``logprobs`` and an exported model runs as it is.

Memory is bounded by ``batch_tokens``: consecutive utterances are grouped so
that the new unique token sequences a group brings (a sequence belongs to the
utterance that first uses it), each counted as its length + 1, sum to at most
``batch_tokens``; a single utterance may exceed it.  Output-layer rows are
evaluated in chunks of 4096.

Parallel jobs (``job=(i, n)``): job ``i`` scores the ``i``-th of
``n`` contiguous, near-equal blocks of utterances.  Every job plans the whole
set (tokenising is cheap) and scores exactly the groups the unsharded run
scores for its utterances, with the same members, so each score is bit for bit
the unsharded one whatever the BLAS does with batch shapes.  The block split,
the shard files, their ``.done`` sidecars and the merge (byte-identical to the
unsharded output) are :mod:`asr_kd.sharding`'s.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .lm import map_tensors
from .models import score_sentences
from .sharding import shard_bounds


@dataclass
class ScoreStats:
    """What a scoring run evaluated: sequences and LM token (output-layer) evaluations."""

    sequences: int = 0
    unique_sequences: int = 0
    token_evals: int = 0


@torch.no_grad()
def score_trie(model, seqs: list[list[int]], bos: int, eos: int, device="cpu",
               row_chunk: int = 4096) -> tuple[list[float], int]:
    """Scores of ``seqs`` (ids without <s>/</s>) through one prefix trie.

    ``model``: any :class:`~asr_kd.lm.LanguageModel`; each trie level is one
    ``hidden`` step of its nodes (states cut by rows with ``map_tensors``) and
    ``logprobs`` on row chunks of at most ``row_chunk`` nodes.
    Returns (log-probs per sequence, number of output-layer evaluations).
    """
    device = torch.device(device)
    # Trie: node 0 is <s>; children[node] maps token -> child node.
    children: list[dict[int, int]] = [{}]
    tokens = [bos]
    depth = [0]
    ends = []
    for s in seqs:
        node = 0
        for t in s + [eos]:
            nxt = children[node].get(t)
            if nxt is None:
                nxt = len(tokens)
                children[node][t] = nxt
                children.append({})
                tokens.append(t)
                depth.append(depth[node] + 1)
            node = nxt
        ends.append(node)
    parent = [0] * len(tokens)
    for p, ch in enumerate(children):
        for c in ch.values():
            parent[c] = p
    edge_lp = torch.zeros(len(tokens), dtype=torch.float64)
    levels: dict[int, list[int]] = {}
    for n in range(len(tokens)):
        if children[n]:
            levels.setdefault(depth[n], []).append(n)
    evals = 0
    row_of: dict[int, int] = {}   # node -> row in the previous level's state
    prev_states = None
    for d in sorted(levels):
        nodes = levels[d]
        tok = torch.tensor([tokens[n] for n in nodes], device=device)
        if d == 0:
            states = model.init_state(len(nodes), device)
        else:
            idx = torch.tensor([row_of[parent[n]] for n in nodes], device=device)
            states = map_tensors(lambda t: t[:, idx], prev_states)   # batch is dim 1 of a state
        H, new_states = model.hidden(tok.unsqueeze(1), states)
        H = map_tensors(lambda t: t[:, 0], H)                          # (n, 1, ...) -> (n, ...)
        for a in range(0, len(nodes), row_chunk):
            lp = model.logprobs(map_tensors(lambda t: t[a: a + row_chunk], H))
            rows, cols, kids = [], [], []
            for r, n in enumerate(nodes[a: a + row_chunk]):
                for t, c in children[n].items():
                    rows.append(r)
                    cols.append(t)
                    kids.append(c)
            vals = lp[torch.tensor(rows, device=device), torch.tensor(cols, device=device)]
            edge_lp[torch.tensor(kids)] = vals.double().cpu()
            evals += lp.shape[0]
        row_of = {n: r for r, n in enumerate(nodes)}
        prev_states = new_states
    # Path sums from the root down; node ids are created after their parent's,
    # so increasing id order visits parents first.
    edge_list = edge_lp.tolist()
    path = [0.0] * len(tokens)
    for n in range(1, len(tokens)):
        path[n] = path[parent[n]] + edge_list[n]
    return [path[e] for e in ends], evals


@torch.no_grad()
def score_padded(model, seqs: list[list[int]], bos: int, eos: int, device="cpu",
                 batch_tokens: int = 20000) -> tuple[list[float], int]:
    """Naive baseline: padded batches of whole sequences. Returns (scores, padded token evals)."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = [0.0] * len(seqs)
    evals = 0
    i = 0
    while i < len(order):
        j = i
        while j < len(order) and (j - i + 1) * (len(seqs[order[j]]) + 1) <= max(batch_tokens, len(seqs[order[j]]) + 1):
            j += 1
        j = max(j, i + 1)
        batch = [seqs[k] for k in order[i:j]]
        sc = score_sentences(model, batch, bos, eos, device)
        evals += len(batch) * (max(len(s) for s in batch) + 1)
        for k, s in zip(order[i:j], sc):
            out[k] = s
        i = j
    return out, evals


def group_by_budget(sizes: list[int], budget: int) -> list[tuple[int, int]]:
    """Split consecutive items into [start, end) groups whose size sum stays <= budget."""
    groups, start, acc = [], 0, 0
    for i, s in enumerate(sizes):
        if acc and acc + s > budget:
            groups.append((start, i))
            start, acc = i, 0
        acc += s
    if start < len(sizes):
        groups.append((start, len(sizes)))
    return groups


def rescore_nbest(nbest, model, tokenizer, name: str, text_filter=None, method: str = "trie",
                  batch_tokens: int = 20000, device="cpu", quiet: bool = True,
                  job: tuple[int, int] | None = None):
    """Add ``lm:<name>``, ``oov:<name>`` and ``nwords`` to every hypothesis of ``nbest``.

    ``lm:<name>`` = log P(filtered text + </s> | <s>) (natural log); ``oov:<name>``
    counts words the tokenizer maps to <unk>; ``nwords`` is the word count of the
    original (unfiltered) text, stored for SRILM-style weights files (``wip`` itself
    is counted by :func:`asr_kd.scoring.feature_value` after the scoring filter; a
    ``nwords`` the list already has, SRILM's word-count column, is kept).  Identical token
    sequences are scored once across the whole set.  Returns ``(nbest, ScoreStats)``;
    ``nbest`` is modified in place.  With ``job=(i, n)`` only the utterances of
    block ``i`` (see :func:`shard_bounds`) are scored and returned, as a new NBest,
    with the unsharded run's exact scores.
    """
    from .progress import progress

    if method not in ("trie", "padded"):
        raise ValueError(f"unknown scoring method {method!r}")
    key = f"lm:{name}"
    model.eval().to(device)
    stats = ScoreStats()
    uniq: dict[tuple, int] = {}
    seq_list: list[list[int]] = []
    per_utt: list[list[int]] = []      # unique sequence ids first used by each utterance
    hyp_seq: list[list[int]] = []
    for u in nbest:
        first_here, ids_here = [], []
        for h in u.hyps:
            text = text_filter(h.text) if text_filter else h.text
            ids = tokenizer.encode(text)
            h.scores[f"oov:{name}"] = float(tokenizer.count_oov(text))
            # an SRILM list's own word-count column (srilm reader) is kept as it is
            h.scores.setdefault("nwords", float(len(h.text.split())))
            k = tuple(ids)
            if k not in uniq:
                uniq[k] = len(seq_list)
                seq_list.append(ids)
                first_here.append(uniq[k])
            ids_here.append(uniq[k])
            stats.sequences += 1
        per_utt.append(first_here)
        hyp_seq.append(ids_here)
    stats.unique_sequences = len(seq_list)
    scores = [0.0] * len(seq_list)
    sizes = [sum(len(seq_list[i]) + 1 for i in g) for g in per_utt]
    groups = group_by_budget(sizes, batch_tokens)
    lo, hi = 0, len(per_utt)
    if job is not None:
        lo, hi = shard_bounds(len(per_utt), *job)
        # A sequence is scored in the group of the utterance that first used it, together
        # with that group's other members: score those groups, exactly as the full run does.
        first_group = [0] * len(seq_list)
        for g, (a, b) in enumerate(groups):
            for u in range(a, b):
                for i in per_utt[u]:
                    first_group[i] = g
        need = {first_group[i] for ids in hyp_seq[lo:hi] for i in ids}
        groups = [groups[g] for g in sorted(need)]
        stats.sequences = sum(len(ids) for ids in hyp_seq[lo:hi])
        stats.unique_sequences = len({i for ids in hyp_seq[lo:hi] for i in ids})
    for a, b in progress(groups, quiet=quiet, desc=f"rescore {name}", unit="group"):
        members = [i for g in per_utt[a:b] for i in g]
        if not members:
            continue
        seqs = [seq_list[i] for i in members]
        if method == "trie":
            sc, ev = score_trie(model, seqs, tokenizer.bos, tokenizer.eos, device)
        else:
            sc, ev = score_padded(model, seqs, tokenizer.bos, tokenizer.eos, device, batch_tokens)
        stats.token_evals += ev
        for i, s in zip(members, sc):
            scores[i] = s
    for u, ids_here in zip(nbest.utts[lo:hi], hyp_seq[lo:hi]):
        for h, i in zip(u.hyps, ids_here):
            h.scores[key] = scores[i]
    if job is not None:
        return type(nbest)(nbest.utts[lo:hi]), stats
    return nbest, stats


def lm_input(noise, text_filter):
    """The text the LM scores for a hypothesis: its noise words removed (``noise``, a
    :class:`asr_kd.noise.NoiseFilter`), then ``text_filter``; ``.noise`` is the filter."""
    def rewrite(text: str) -> str:
        return text_filter(noise.text(text)) if noise else text_filter(text)
    rewrite.noise = noise
    return rewrite


def scoring_threads(model) -> int:
    """The CPU threads ``model`` scores on: an exported model (or an ensemble of them
    only) runs on onnxruntime's one thread whatever ``--threads`` says; PyTorch models
    on torch's threads."""
    from .export import OnnxLM
    members = list(getattr(model, "members", None) or [model])
    if all(isinstance(m, OnnxLM) for m in members):
        return 1
    return torch.get_num_threads()
