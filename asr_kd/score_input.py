"""An N-best set read to be scored (``score``, ``tune``, ``convert-nbest``): the one
policy for references and empty sets.

An N-best utterance without a reference is an error listing the ids
(:func:`asr_kd.nbest.attach_refs`); references without N-best utterances are
left out with a warning giving their count and the first ids; an empty set is an
error unless allowed.  Warnings go to the caller's ``warn(message)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from .errors import InputError

Warn = Callable[[str], None]


@dataclass(frozen=True)
class ScoringInput:
    """An N-best set to score or tune on, as the options name it.

    nbest, fmt:   the N-best file or folder and its format (None: detect);
    ref:          references replacing the stored ones (Kaldi text or sclite trn);
    noise, noise_vocab, no_default_noise, ignore_case: the scoring filter's options
                  (:func:`asr_kd.noise.build_filter`);
    srilm_scores: ``NAME=DIR`` extra score folders of SRILM input; srilm_am, srilm_lm:
                  the keys of its two columns (:func:`asr_kd.nbest.srilm.reader_options`);
    print_srilm:  the SRILM form of the weights is asked for (it also uses those keys).
    """
    nbest: str
    fmt: str | None = None
    ref: str | None = None
    noise: list[str] | None = None
    noise_vocab: list[str] | None = None
    no_default_noise: bool = False
    ignore_case: bool = False
    srilm_scores: list[str] | None = None
    srilm_am: str | None = None
    srilm_lm: str | None = None
    print_srilm: bool = False

    def noise_filter(self):
        """The :class:`asr_kd.noise.NoiseFilter` the filter options give."""
        from .noise import build_filter
        return build_filter(self.noise, self.noise_vocab, default=not self.no_default_noise,
                            ignore_case=self.ignore_case)

    def filter_given(self) -> bool:
        """True when any filter option is set (it then wins over a weights file's record)."""
        return bool(self.noise or self.noise_vocab or self.no_default_noise
                    or self.ignore_case)

    def reader_options(self) -> dict:
        """The N-best reader's options for SRILM input (empty for other input)."""
        from .nbest.srilm import reader_options
        return reader_options(self.srilm_scores, self.srilm_am, self.srilm_lm, self.fmt,
                              self.nbest, keys_used=self.print_srilm)

    def srilm_keys(self) -> dict:
        """``{"am": KEY, "lm": KEY}`` for :func:`asr_kd.nbest.srilm.srilm_weights`
        (None: chosen from the weights)."""
        return {"am": self.srilm_am, "lm": self.srilm_lm}


def attach_ref_file(nbest, ref: str, nbest_path: str, warn: Warn) -> None:
    """Attach the references of ``ref`` to ``nbest`` (read from ``nbest_path``), saying so
    when they replace different references stored in the N-best set or are matched to
    ids the reader made up from positions."""
    from .checks import replaced_refs
    from .nbest import attach_refs, read_refs

    refs = read_refs(ref)
    if getattr(nbest, "positional_ids", False):
        warn(f"{nbest_path} has no utterance ids (they are positions 0..{len(nbest) - 1})"
             f": the references of {ref} are matched by position only; check that they list "
             "the same utterances in the same order")
    stored, differ = replaced_refs(nbest, refs)
    if differ:
        warn(f"--ref {ref} replaces the references stored in {nbest_path}: "
             f"{differ} of {stored} differ")
    extra = attach_refs(nbest, refs, ref)
    if extra:
        warn(f"{ref}: {len(extra)} references have no N-best entry and are left out "
             f"(first: {', '.join(extra[:5])})")


def load_nbest(path: str, fmt: str | None, ref: str | None, command: str,
               allow_empty: bool = False, *, warn: Warn, **opts):
    """Read an N-best set (``opts`` go to the reader) and, when ``ref`` is given, attach
    its references (:func:`attach_ref_file`).  An empty set is an InputError unless
    ``allow_empty`` (``--allow-empty`` is named as the way out for ``score``)."""
    from .checks import require_utterances
    from .nbest import read_nbest  # readers load lazily: the CLI starts fast

    nbest = read_nbest(path, fmt, **opts)
    require_utterances(nbest, path, allow_empty, "to " + command,
                       "--allow-empty" if command == "score" else None)
    if ref is not None:
        attach_ref_file(nbest, ref, path, warn)
    return nbest


def has_refs(nbest, where: str) -> bool:
    """True if every utterance has a reference, False if none has; InputError if only some."""
    missing = [u.utt for u in nbest if u.ref is None]
    if missing and len(missing) < len(nbest):
        shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise InputError(f"{len(missing)} of {len(nbest)} utterances have no reference: {shown}",
                         where)
    return not missing


def require_ref_words(nbest, where: str) -> None:
    """InputError when the (filtered) references of a non-empty set hold no word
    (:func:`asr_kd.checks.require_ref_words`); an empty set is ``--allow-empty``'s."""
    from .checks import require_ref_words as check

    if len(nbest):
        check((u.ref for u in nbest), where)


def filter_set(flt, nbest, info: Callable[[str], None]):
    """``nbest`` filtered by the scoring filter ``flt`` (:class:`asr_kd.noise.NoiseFilter`);
    says through ``info`` how many tokens went, when any did."""
    out, n_hyp, n_ref = flt.nbest(nbest)
    if n_hyp or n_ref:
        info(f"scoring filter ({flt.describe()}) removed {n_hyp} hypothesis and {n_ref} "
             "reference tokens")
    return out
