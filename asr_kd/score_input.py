"""An N-best set read to be scored (``score``, ``tune``, ``convert-nbest``): the one
policy for references and empty sets.

An N-best utterance without a reference is an error listing the ids
(:func:`asr_kd.nbest.attach_refs`); references without N-best utterances are
left out with a warning giving their count and the first ids; an empty set is an
error unless allowed.  Warnings go to the caller's ``warn(message)``.
"""
from __future__ import annotations

from typing import Callable

from .errors import InputError

Warn = Callable[[str], None]


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
