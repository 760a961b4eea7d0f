"""NeMo beam-search N-best output: TSV lines ``text<TAB>score``.

The file holds a fixed number N of lines per utterance, utterances in manifest
order.  N is given, or inferred as (TSV lines) / (manifest lines).  With a NeMo
manifest (JSONL, one ``{"audio_filepath": ..., "text": ...}`` per utterance)
the utterance id is the audio file's base name without extension and ``text``
is the reference; without one, ids are "0", "1", ... (``positional_ids``).  The score (key
``"score"``) is taken as a natural-log score, as NeMo's decoders write it.
``text`` may be empty (``<TAB>-3.2``); a line without a TAB, a blank line or a
line count that is not a multiple of N (or not N x manifest lines) is an error.

Policies: the LAST TAB of a line separates text from score (earlier TABs are
word separators); CRLF and a leading BOM are accepted.  Every utterance has
exactly N >= 1 lines, so N = 0 cannot be expressed.  Two manifest lines giving
the same id (same audio base name) are an InputError naming both lines, as is
an ``audio_filepath`` with no base name (``"dir/"``).
"""
from __future__ import annotations

import os

from ..errors import InputError
from ..fileio import read_lines
from .io import iter_json_lines, parse_score
from .model import Hyp, NBest, Utterance


def read_manifest(path) -> list[tuple[str, str | None]]:
    """``[(uttid, reference or None)]`` from a NeMo manifest; ids must be unique."""
    out, seen = [], {}
    for n, obj in iter_json_lines(path):
        audio = obj.get("audio_filepath") if isinstance(obj, dict) else None
        if not isinstance(audio, str) or not audio:
            raise InputError('expected {"audio_filepath": "...", "text": "..."}', path, n)
        utt = os.path.splitext(os.path.basename(audio))[0]
        if not utt:
            raise InputError(f"expected an audio file name, got {audio[:200]!r}", path, n)
        if utt in seen:
            raise InputError(f"duplicate utterance id {utt!r} (from {audio[:200]!r}; first on "
                             f"line {seen[utt]})", path, n)
        seen[utt] = n
        ref = obj.get("text")
        if ref is not None and not isinstance(ref, str):
            raise InputError('expected "text" to be a string', path, n)
        out.append((utt, ref))
    return out


def read_nemo(path, n: int | None = None, manifest=None) -> NBest:
    """Read a NeMo N-best TSV with ``n`` lines per utterance (see module docstring)."""
    entries = read_manifest(manifest) if manifest is not None else None
    hyps = []
    for ln, line in read_lines(path):
        if not line.strip():    # N lines per utterance: skipping one would shift the rest
            raise InputError("expected 'text<TAB>score', got a blank line", path, ln)
        text, tab, score = line.rpartition("\t")
        if not tab:
            raise InputError("expected 'text<TAB>score'", path, ln)
        hyps.append(Hyp(" ".join(text.split()), {"score": parse_score(score, path, ln)}))
    if n is None:
        if entries is None:
            raise InputError("need the number of hypotheses per utterance (n) or a manifest",
                             path)
        if not entries or len(hyps) % len(entries):
            raise InputError(f"{len(hyps)} lines do not divide evenly among the "
                             f"{len(entries)} utterances of {manifest}", path)
        n = len(hyps) // len(entries)
    if n < 1:
        raise InputError(f"expected N >= 1 hypotheses per utterance, got {n}", path)
    if len(hyps) % n:
        raise InputError(f"expected a multiple of N={n} lines, got {len(hyps)}", path)
    count = len(hyps) // n
    if entries is not None and count != len(entries):
        raise InputError(f"expected {len(entries)} x {n} lines (manifest {manifest}), "
                         f"got {len(hyps)}", path)
    if entries is None:
        entries = [(str(i), None) for i in range(count)]
    return NBest([Utterance(utt, hyps[i * n:(i + 1) * n], ref)
                  for i, (utt, ref) in enumerate(entries)], positional_ids=manifest is None)
