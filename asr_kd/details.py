"""Where the errors are: word alignments of one system's output against the references.

The same alignments that :mod:`asr_kd.scoring` counts (jiwer's, on whitespace
tokens compared exactly), written out as the files an sclite or Kaldi user reads:

* ``alignments.pra``: per utterance, sclite's ``pra`` layout: ``id:``,
  ``Scores: (#C #S #D #I)``, then ``REF:``/``HYP:`` lines in aligned columns
  (``***`` where a side has no word) and an ``Eval:`` line marking ``S``, ``D``, ``I``;
* ``per_utt.txt``: Kaldi's ``wer_per_utt_details`` (``utt ref``, ``utt hyp``,
  ``utt op``, ``utt #csid C S I D``);
* ``ops.txt``: Kaldi's ``wer_ops_details``: ``correct W W N``,
  ``substitution REF HYP N``, ``deletion REF *** N``, ``insertion *** HYP N``,
  most frequent first within each kind;
* ``summary.txt``: the ``%WER`` line, the top confusion pairs, inserted and deleted
  words, and WER per speaker (id prefix) where the ids give speakers;
* ``details.json``: the same as data (``"utterances"``: per utterance ``utt``,
  ``ref``, ``hyp``, ``ops`` as a string of ``C``/``S``/``D``/``I``, one letter per
  alignment column, and the counts), read by the HTML report.

The counts of every file add up to the corpus ``%WER`` line exactly: both come
from one alignment per utterance (:func:`align_texts`), and
:func:`write_details` refuses to write totals that differ from the WER it is given.

Speakers.  Kaldi ids start with the speaker id followed by ``-`` or ``_``
(``spk1-utt-001``): the part before the first separator is the group.  Ids
without a separator (WSJ ``4k0c0301``, ATIS ``460011ss``: speaker = first 3
characters) need ``speaker_chars``.  Groups are reported only when there are
at least two and one of them holds more than one utterance.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import jiwer

from .fileio import FileSet

CORRECT, SUB, DEL, INS = "C", "S", "D", "I"
GAP = "***"  # the empty side of an insertion or deletion, as sclite and Kaldi write it
FILES = ("alignments.pra", "per_utt.txt", "ops.txt", "summary.txt", "details.json")

_SPLIT = jiwer.Compose([jiwer.ReduceToListOfListOfWords()])
_OP = {"equal": CORRECT, "substitute": SUB, "delete": DEL, "insert": INS}


@dataclass(frozen=True)
class UttAlignment:
    """One utterance aligned: ``ref`` and ``hyp`` word lists and ``ops``, one letter
    per alignment column (``C``/``S`` consume a word of each side, ``D`` a reference
    word, ``I`` a hypothesis word)."""

    utt: str
    ref: tuple[str, ...]
    hyp: tuple[str, ...]
    ops: str

    def count(self, op: str) -> int:
        return self.ops.count(op)

    @property
    def errors(self) -> int:
        return len(self.ops) - self.ops.count(CORRECT)

    def columns(self) -> list[tuple[str, str | None, str | None]]:
        """``(op, ref word or None, hyp word or None)`` per alignment column."""
        out, i, j = [], 0, 0
        for op in self.ops:
            r = self.ref[i] if op != INS else None
            h = self.hyp[j] if op != DEL else None
            i += op != INS
            j += op != DEL
            out.append((op, r, h))
        return out


def _ops_from_chunks(chunks) -> str:
    return "".join(_OP[c.type] * max(c.ref_end_idx - c.ref_start_idx,
                                     c.hyp_end_idx - c.hyp_start_idx) for c in chunks)


def align_texts(utts: Sequence[str], refs: Sequence[str], hyps: Sequence[str]
                ) -> list[UttAlignment]:
    """Align ``hyps[i]`` to ``refs[i]`` (whitespace tokens, exact match) with one jiwer
    call, the alignment :func:`asr_kd.scoring.batch_errors` counts.  Either side may be
    empty (all insertions or all deletions)."""
    if not len(utts) == len(refs) == len(hyps):
        raise ValueError(f"{len(utts)} ids, {len(refs)} references, {len(hyps)} hypotheses")
    ops: list[str | None] = []
    pairs, rs, hs = [], [], []
    for i, (r, h) in enumerate(zip(refs, hyps)):
        r, h = r.split(), h.split()
        if r and h:
            pairs.append(i)
            rs.append(" ".join(r))
            hs.append(" ".join(h))
            ops.append(None)
        else:
            ops.append(DEL * len(r) + INS * len(h))
    if pairs:
        res = jiwer.process_words(rs, hs, _SPLIT, _SPLIT)
        for i, chunks in zip(pairs, res.alignments):
            ops[i] = _ops_from_chunks(chunks)
    return [UttAlignment(u, tuple(r.split()), tuple(h.split()), o)
            for u, r, h, o in zip(utts, refs, hyps, ops)]


def speaker_of(utt: str, speaker_chars: int | None = None) -> str | None:
    """The speaker (group) of an utterance id (see the module docstring); None if unknown."""
    if speaker_chars:
        return utt[:speaker_chars]
    cut = [k for k in (utt.find("-"), utt.find("_")) if k > 0]
    return utt[:min(cut)] if cut else None


@dataclass
class Summary:
    """Totals and rankings of a list of alignments."""

    utts: int
    words: int
    sub: int
    del_: int
    ins: int
    sent_errors: int
    confusions: Counter      # (ref word, hyp word) -> count
    insertions: Counter      # hyp word -> count
    deletions: Counter       # ref word -> count
    correct: Counter         # word -> count
    groups: list[dict]       # per speaker: name, utts, words, sub, del, ins, errors, wer

    @property
    def errors(self) -> int:
        return self.sub + self.del_ + self.ins

    @property
    def wer(self) -> float:
        return 100.0 * self.errors / self.words if self.words else (
            0.0 if not self.errors else float("inf"))


def summarize(aligns: Sequence[UttAlignment], speaker_chars: int | None = None) -> Summary:
    """Counts, confusion pairs, inserted/deleted words and per-speaker WER."""
    conf, ins, dels, cor = Counter(), Counter(), Counter(), Counter()
    groups: dict[str, list[int]] = {}
    tot = Counter()
    for a in aligns:
        for op, r, h in a.columns():
            if op == SUB:
                conf[(r, h)] += 1
            elif op == INS:
                ins[h] += 1
            elif op == DEL:
                dels[r] += 1
            else:
                cor[r] += 1
        c = [len(a.ref), a.count(SUB), a.count(DEL), a.count(INS), 1]
        tot.update(dict(zip(("words", "sub", "del", "ins", "utts"), c)))
        tot["sent"] += a.errors > 0
        spk = speaker_of(a.utt, speaker_chars)
        if spk is not None:
            g = groups.setdefault(spk, [0, 0, 0, 0, 0])
            for k, v in enumerate(c):
                g[k] += v
    rows = []
    if len(groups) >= 2 and any(g[4] > 1 for g in groups.values()):
        for name, (w, s, d, i, n) in groups.items():
            e = s + d + i
            rows.append({"speaker": name, "utts": n, "words": w, "sub": s, "del": d, "ins": i,
                         "errors": e, "wer": 100.0 * e / w if w else None})
        rows.sort(key=lambda g: (-(g["wer"] if g["wer"] is not None else float("inf")),
                                 g["speaker"]))
    return Summary(utts=tot["utts"], words=tot["words"], sub=tot["sub"], del_=tot["del"],
                   ins=tot["ins"], sent_errors=tot["sent"], confusions=conf, insertions=ins,
                   deletions=dels, correct=cor, groups=rows)


def pra_block(a: UttAlignment, labels: tuple[str, str] = ("REF", "HYP")) -> list[str]:
    """sclite-style lines of one utterance: id, scores, REF/HYP columns, Eval marks."""
    cols = a.columns()
    width = [max(len(r or GAP), len(h or GAP)) for _, r, h in cols]
    ref = " ".join((r or GAP).ljust(w) for (_, r, _), w in zip(cols, width))
    hyp = " ".join((h or GAP).ljust(w) for (_, _, h), w in zip(cols, width))
    ev = " ".join(("" if op == CORRECT else op).ljust(w) for (op, _, _), w in zip(cols, width))
    n = max(len(x) for x in (*labels, "Eval")) + 1
    return [f"id: ({a.utt})",
            f"Scores: (#C #S #D #I) {a.count(CORRECT)} {a.count(SUB)} {a.count(DEL)} "
            f"{a.count(INS)}",
            f"{labels[0] + ':':<{n}} {ref}".rstrip(), f"{labels[1] + ':':<{n}} {hyp}".rstrip(),
            f"{'Eval:':<{n}} {ev}".rstrip()]


def _kaldi_per_utt(a: UttAlignment) -> list[str]:
    cols = a.columns()
    width = [max(len(r or GAP), len(h or GAP)) for _, r, h in cols]
    line = lambda xs: " ".join(x.ljust(w) for x, w in zip(xs, width)).rstrip()  # noqa: E731
    return [f"{a.utt} ref  {line([r or GAP for _, r, _ in cols])}".rstrip(),
            f"{a.utt} hyp  {line([h or GAP for _, _, h in cols])}".rstrip(),
            f"{a.utt} op   {line([op for op, _, _ in cols])}".rstrip(),
            f"{a.utt} #csid {a.count(CORRECT)} {a.count(SUB)} {a.count(INS)} {a.count(DEL)}"]


def _ranked(c: Counter) -> list:
    return sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))


def wer_line(s: Summary) -> str:
    """``%WER 4.27 [ 241 / 5643, 30 ins, 21 del, 190 sub ]`` of a summary."""
    return (f"%WER {s.wer:.2f} [ {s.errors} / {s.words}, {s.ins} ins, {s.del_} del, "
            f"{s.sub} sub ]")


def summary_text(s: Summary, top: int = 20, title: str = "") -> str:
    """The human-readable summary: WER line, confusions, insertions, deletions, speakers."""
    out = ([title, ""] if title else []) + [
        wer_line(s), f"%SER {100.0 * s.sent_errors / s.utts if s.utts else 0.0:.2f} "
        f"[ {s.sent_errors} / {s.utts} ]", "",
        f"Top confusion pairs (reference -> hypothesis; {sum(s.confusions.values())} "
        f"substitutions, {len(s.confusions)} distinct):"]
    out += [f"  {n:6d}  {r} -> {h}" for (r, h), n in _ranked(s.confusions)[:top]]
    out += ["", f"Top inserted words ({s.ins} insertions):"]
    out += [f"  {n:6d}  {w}" for w, n in _ranked(s.insertions)[:top]]
    out += ["", f"Top deleted words ({s.del_} deletions):"]
    out += [f"  {n:6d}  {w}" for w, n in _ranked(s.deletions)[:top]]
    if s.groups:
        out += ["", "WER per speaker (id prefix), worst first:",
                f"  {'speaker':<12} {'utts':>5} {'words':>6} {'WER':>7} {'sub':>5} {'del':>5} "
                f"{'ins':>5}"]
        out += [f"  {g['speaker']:<12} {g['utts']:5d} {g['words']:6d} "
                f"{g['wer'] if g['wer'] is not None else float('nan'):7.2f} {g['sub']:5d} "
                f"{g['del']:5d} {g['ins']:5d}" for g in s.groups]
    return "\n".join(out) + "\n"


def details_json(aligns: Sequence[UttAlignment], s: Summary, top: int = 50,
                 extra: dict | None = None) -> dict:
    """The JSON form of :func:`write_details`' files (``details.json``)."""
    return {
        **(extra or {}),
        "wer": s.wer, "words": s.words, "errors": s.errors, "sub": s.sub, "del": s.del_,
        "ins": s.ins, "utts": s.utts, "sent_errors": s.sent_errors,
        "confusions": [[r, h, n] for (r, h), n in _ranked(s.confusions)[:top]],
        "insertions": [[w, n] for w, n in _ranked(s.insertions)[:top]],
        "deletions": [[w, n] for w, n in _ranked(s.deletions)[:top]],
        "speakers": s.groups,
        "utterances": [{"utt": a.utt, "ref": " ".join(a.ref), "hyp": " ".join(a.hyp),
                        "ops": a.ops, "sub": a.count(SUB), "del": a.count(DEL),
                        "ins": a.count(INS), "errors": a.errors} for a in aligns]}


def write_details(out_dir: str, aligns: Sequence[UttAlignment], *, expect: dict | None = None,
                  speaker_chars: int | None = None, top: int = 20, title: str = "",
                  extra: dict | None = None) -> Summary:
    """Write the files of the module docstring into ``out_dir``, all or none.

    ``expect``: the corpus counts the caller reports (``words``, ``sub``, ``del``,
    ``ins``, as in ``WerResult.to_dict()``); a total that differs is a bug, raised
    as RuntimeError before anything is written.  ``extra`` goes into details.json.
    """
    s = summarize(aligns, speaker_chars)
    if expect is not None:
        got = {"words": s.words, "sub": s.sub, "del": s.del_, "ins": s.ins}
        want = {k: expect[k] for k in got}
        if got != want:
            raise RuntimeError(f"alignment counts {got} differ from the WER's {want}")
    os.makedirs(out_dir, exist_ok=True)
    with FileSet() as fs:
        with fs.open(os.path.join(out_dir, "alignments.pra")) as f:
            for a in aligns:
                f.write("\n".join(pra_block(a)) + "\n\n")
        with fs.open(os.path.join(out_dir, "per_utt.txt")) as f:
            for a in aligns:
                f.write("\n".join(_kaldi_per_utt(a)) + "\n")
        with fs.open(os.path.join(out_dir, "ops.txt")) as f:
            for kind, items in (("correct", [((w, w), n) for w, n in _ranked(s.correct)]),
                                ("substitution", _ranked(s.confusions)),
                                ("deletion", [((w, GAP), n) for w, n in _ranked(s.deletions)]),
                                ("insertion", [((GAP, w), n) for w, n in _ranked(s.insertions)])):
                f.writelines(f"{kind} {r} {h} {n}\n" for (r, h), n in items)
        with fs.open(os.path.join(out_dir, "summary.txt")) as f:
            f.write(summary_text(s, top, title))
        with fs.open(os.path.join(out_dir, "details.json")) as f:
            json.dump(details_json(aligns, s, extra=extra), f)
    return s
