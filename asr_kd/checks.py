"""Checks that catch input which would give a plausible but wrong number.

Each function looks at data the commands already hold and returns either
nothing or a one-line message; the CLI turns a message into an error (exit 2)
or a warning (``asr-kd <cmd>: warning: ...`` on stderr).  What is checked:

- an empty set (no utterances): tuning on it, scoring it or converting it to
  nothing is an error unless the user asked for it (``--allow-empty``); so are
  references without a single word (WER 0/0);
- the LM vocabulary against the hypotheses: the share of words (after the
  text filter) the LM maps to ``<unk>``, and whether vocabulary and hypotheses
  are in opposite cases (an upper-case LM scoring lower-case lists sees almost
  nothing but ``<unk>``);
- references against hypotheses: one side nearly all upper case, the other
  nearly all lower case (WER compares words exactly, so every word is an error);
- references from a file replacing references stored in the N-best set, and
  references matched to ids that a reader made up from positions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .errors import InputError

# One side counts as "upper case" (or "lower case") when at least this share of its
# words that have cased letters are all upper (lower) case.
CASE_SHARE = 0.9
# Default --max-oov-rate of rescore: more unknown words than this and the LM score
# says more about the vocabulary than about the words.
MAX_OOV_RATE = 0.2
# Below the threshold, a case mismatch is still reported once this share of words is unknown.
CASE_OOV_RATE = 0.05
# Share of first-hypothesis words that match a reference word only when case is ignored
# from which scoring warns (sentence case on every utterance of 15-word sentences: ~6 %).
CASE_ONLY_SHARE = 0.02


def require_utterances(nbest, path, allow_empty: bool = False, what: str = "",
                       option: str | None = "--allow-empty") -> None:
    """InputError naming ``path`` when ``nbest`` has no utterances, unless ``allow_empty``;
    the message names ``option``, the command's way to allow it (None: there is none)."""
    if len(nbest) == 0 and not allow_empty:
        hint = f"; pass {option} if an empty set is intended" if option else ""
        raise InputError(f"no utterances{' ' + what if what else ''} (wrong format or an "
                         f"empty file?){hint}", path)


def require_ref_words(refs: Iterable[str | None], path, filtered: bool = True) -> None:
    """InputError naming ``path`` when the references hold no word at all (every one
    empty, e.g. after a scoring filter that removes every word): WER is then 0/0, and
    "%WER 0.00 [0/0]" or weights tuned on it would look like a result."""
    if not any((r or "").split() for r in refs):
        why = (" after the scoring filter (--noise, --noise-vocab, -pau- by default)"
               if filtered else "")
        raise InputError(f"the references have no words{why}: WER is undefined (0 errors in "
                         "0 words); check the references and the noise words", path)


def case_shares(texts: Iterable[str]) -> tuple[float, float, int]:
    """(share of all-upper-case words, share of all-lower-case words, cased words).

    Only words with cased letters count (``N``, ``123`` and ``<unk>`` do; ``'s``
    counts as lower case); mixed-case words (``McDonald``) are neither.
    """
    return _shares(*case_tallies(texts))


def case_tallies(texts: Iterable[str]) -> tuple[int, int, int]:
    """(all-upper-case words, all-lower-case words, cased words) of ``texts``, as counts
    (:func:`case_shares`), so that the counts of parts of a set add up."""
    upper = lower = n = 0
    for t in texts:
        for w in t.split():
            if w.isupper():
                upper += 1
            elif w.islower():
                lower += 1
            else:
                if w.lower() == w.upper():
                    continue  # no cased letters
            n += 1
    return upper, lower, n


def _shares(upper: int, lower: int, n: int) -> tuple[float, float, int]:
    return (upper / n, lower / n, n) if n else (0.0, 0.0, 0)


def _side(upper: float, lower: float) -> str | None:
    if upper >= CASE_SHARE:
        return "upper"
    if lower >= CASE_SHARE:
        return "lower"
    return None


def case_only_matches(nbest) -> tuple[int, int]:
    """(words of the first hypotheses that match a word of their reference only when
    case is ignored, words of those hypotheses), over utterances with a reference."""
    only = total = 0
    for u in nbest:
        if u.ref is None or not u.hyps:
            continue
        ref = set(u.ref.split())
        folded = {w.lower() for w in ref}
        for w in u.hyps[0].text.split():
            total += 1
            only += w not in ref and w.lower() in folded
    return only, total


def ref_hyp_case_mismatch(nbest) -> str | None:
    """A message when references and hypotheses differ in case, else None: opposite
    cases (>= ``CASE_SHARE`` of each side's words), or at least ``CASE_ONLY_SHARE``
    of the first hypotheses' words matching their reference only when case is
    ignored (sentence-case or truecased hypotheses against lower-case references)."""
    return case_mismatch_message(case_counts(nbest))


def case_counts(nbest) -> tuple[int, ...]:
    """The counts :func:`case_mismatch_message` decides on, for ``nbest``: the
    :func:`case_tallies` of the references and of the first hypotheses, then
    :func:`case_only_matches`; 8 integers that add up over parts of a set."""
    refs = [u.ref for u in nbest if u.ref]
    hyps = [h.text for u in nbest for h in u.hyps[:1]]  # first hypotheses: enough to tell
    return case_tallies(refs) + case_tallies(hyps) + case_only_matches(nbest)


def case_mismatch_message(counts) -> str | None:
    """:func:`ref_hyp_case_mismatch`'s message from :func:`case_counts` (summed over
    the parts of a set read in pieces)."""
    ru, rl, rn = _shares(*counts[0:3])
    hu, hl, hn = _shares(*counts[3:6])
    only, total = counts[6:8]
    rs, hs = _side(ru, rl), _side(hu, hl)
    if not rn or not hn or rs is None or hs is None or rs == hs:
        if total and only / total >= CASE_ONLY_SHARE:
            return (f"{100 * only / total:.1f} % of the first hypotheses' words ({only} of "
                    f"{total}) match their reference only when case is ignored (e.g. 'The' "
                    "and 'the'): words are compared exactly, so each counts as an error; "
                    "score with --ignore-case, or convert one side")
        return None
    r_share, h_share = (ru if rs == "upper" else rl), (hu if hs == "upper" else hl)
    return (f"{100 * r_share:.0f} % of the reference words are {rs} case but "
            f"{100 * h_share:.0f} % of the hypothesis words {hs} case: words are compared "
            f"exactly, so nearly every word counts as an error; convert one side "
            f"(e.g. tr '[:{rs}:]' '[:{hs}:]' on the references), or score with "
            "--ignore-case")


@dataclass(frozen=True)
class OovReport:
    """Unknown words of an N-best set under one LM vocabulary (after the text filter).

    ``words``: words of the distinct hypotheses (SentencePiece: their pieces,
    ``unit == "pieces"``); ``oov``: those mapped to ``<unk>``;
    ``case_fix``: ``"uppercase"`` or ``"lowercase"`` (the ``--text-filter`` rule that
    fixes it) when vocabulary and hypotheses are in opposite cases, else None;
    ``fixed_share``: the share of the unknown words that rule makes known.
    """

    words: int
    oov: int
    case_fix: str | None
    fixed_share: float
    unit: str = "words"   # "pieces" for a SentencePiece tokenizer (unknown pieces)

    @property
    def rate(self) -> float:
        return self.oov / self.words if self.words else 0.0


def oov_report(nbest, tokenizer, text_filter=None) -> OovReport | None:
    """OOV counts of the distinct hypothesis texts (after ``text_filter``).  For a
    tokenizer without a word list (SentencePiece) the counts are of pieces: how
    many of the pieces the texts encode to are ``<unk>`` (characters the model
    never saw, e.g. lower-case letters for a model trained on upper-case text).

    The case fix is proposed when the vocabulary and the (filtered) hypotheses are
    in opposite cases (>= ``CASE_SHARE`` of the words of each), e.g. an upper-case
    LM and lower-case lists; ``fixed_share`` is the share of unknown words it fixes.
    """
    stoi = getattr(tokenizer, "stoi", None)
    texts = [text_filter(t) if text_filter else t for t in {h.text for u in nbest for h in u.hyps}]
    if stoi is None:
        return _piece_report(texts, tokenizer)
    words = oov = up = low = 0
    for t in texts:
        for w in t.split():
            words += 1
            if w not in stoi:
                oov += 1
                up += w.upper() in stoi
                low += w.lower() in stoi
    fix, share = None, 0.0
    vocab_side = _side(*case_shares(w for w in stoi if not w.startswith("<"))[:2])
    hyp_side = _side(*case_shares(texts)[:2])
    if oov and vocab_side and hyp_side and vocab_side != hyp_side:
        fix = f"{vocab_side}case"
        share = (up if vocab_side == "upper" else low) / oov
    return OovReport(words, oov, fix, share)


def _piece_report(texts: list[str], tokenizer) -> OovReport:
    """:func:`oov_report` for a subword tokenizer (``encode`` and ``unk``): unknown
    pieces; the case fix is the conversion that makes most of them known."""
    unk = tokenizer.unk

    def count(convert) -> tuple[int, int]:
        ids = [i for t in texts for i in tokenizer.encode(convert(t))]
        return len(ids), sum(1 for i in ids if i == unk)

    pieces, oov = count(str)
    fix, share = None, 0.0
    if oov:
        hyp_side = _side(*case_shares(texts)[:2])
        for side, convert in (("upper", str.upper), ("lower", str.lower)):
            if side == hyp_side:
                continue
            left = count(convert)[1]
            if (oov - left) / oov > max(share, 0.5):
                fix, share = f"{side}case", (oov - left) / oov
    return OovReport(pieces, oov, fix, share, unit="pieces")


def oov_warning(rep: OovReport | None, where: str, max_rate: float = MAX_OOV_RATE
                ) -> str | None:
    """The warning for an :class:`OovReport`, or None when the rate is fine."""
    if rep is None or not rep.words:
        return None
    if rep.rate <= max_rate and not (rep.case_fix and rep.rate >= CASE_OOV_RATE):
        return None
    if rep.unit == "pieces":
        msg = (f"{100 * rep.rate:.1f} % of the hypothesis pieces ({rep.oov} of {rep.words} "
               f"SentencePiece pieces of the distinct hypotheses, after any --text-filter) are "
               f"<unk>: characters the LM's SentencePiece model never saw ({where})")
    else:
        msg = (f"{100 * rep.rate:.1f} % of the hypothesis words ({rep.oov} of {rep.words} in "
               f"the distinct hypotheses, after any --text-filter) are out of the LM's "
               f"vocabulary ({where})")
    if rep.case_fix and rep.unit == "pieces":
        msg += (f"; {100 * rep.fixed_share:.0f} % of them are known in {rep.case_fix[:-4]} "
                f"case: rescore with --text-filter {rep.case_fix}")
    elif rep.case_fix:
        msg += (f"; the vocabulary is {rep.case_fix[:-4]} case and the hypotheses are not "
                f"({100 * rep.fixed_share:.0f} % of the unknown words are known in "
                f"{rep.case_fix[:-4]} case): rescore with --text-filter {rep.case_fix}")
    else:
        msg += "; check that the LM matches the lists' language and text conventions"
    return msg


def replaced_refs(nbest, refs: dict[str, str]) -> tuple[int, int]:
    """(utterances with a stored reference, how many of those ``refs`` changes)."""
    stored = differ = 0
    for u in nbest:
        if u.ref is not None:
            stored += 1
            new = refs.get(u.utt)
            differ += new is not None and " ".join(new.split()) != " ".join(u.ref.split())
    return stored, differ
