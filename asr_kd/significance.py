"""Is system B's WER really different from system A's?  Two utterance-level tests.

Both take per-utterance error counts of the two systems on the same utterances
(same order) and never look at the words again.

- :func:`bootstrap_wer_diff`: bootstrap over utterances (Bisani & Ney, 2004):
  resample utterances with replacement, recompute WER(B) - WER(A) on each
  sample; report the mean, the 95 % percentile interval, and the probability
  of improvement P(B better than A).
- :func:`sign_test`: the two-sided exact sign test on per-utterance error
  counts.  Utterances where both systems make the same number of errors are
  dropped; under the null hypothesis "B is as likely as A to be the better one
  on an utterance" the number of utterances where B wins is Binomial(n, 1/2).
  This is simpler and weaker than NIST's MAPSSWE (which compares error counts
  within segments and uses a normal approximation); it is named for what it is.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import comb

import numpy as np


@dataclass(frozen=True)
class BootstrapResult:
    """WER differences are B minus A, in percent points; negative means B is better.

    ``p_b_better`` counts a sample where WER(B) < WER(A) as 1 and a tie as 1/2, so
    identical systems give exactly 0.5 and P(B better) + P(A better) = 1.
    """

    diff: float      # on the full set
    mean: float      # over bootstrap samples
    low: float       # 2.5th percentile
    high: float      # 97.5th percentile
    p_b_better: float
    n: int
    seed: int


def _as_counts(x, name: str) -> np.ndarray:
    a = np.asarray(x, dtype=np.int64)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one count per utterance, got shape {a.shape}")
    return a


def bootstrap_wer_diff(errs_a, errs_b, ref_words, n: int = 1000, seed: int = 0,
                       chunk: int = 100) -> BootstrapResult:
    """Bootstrap WER(B) - WER(A) over utterances.

    ``errs_a``, ``errs_b``, ``ref_words``: shape (U,) per-utterance error and
    reference word counts.  Uses ``numpy.random.default_rng(seed)``: the same
    seed and inputs give the same result.  A resample with no reference words
    counts as a difference of 0.
    """
    ea, eb, w = (_as_counts(x, k) for x, k in
                 ((errs_a, "errs_a"), (errs_b, "errs_b"), (ref_words, "ref_words")))
    if not (len(ea) == len(eb) == len(w)) or not len(w):
        raise ValueError(f"need equal, non-zero lengths, got {len(ea)}, {len(eb)}, {len(w)}")
    rng = np.random.default_rng(seed)
    delta = eb - ea  # per-utterance error difference: resample this and w together
    diffs = np.empty(n, dtype=np.float64)
    for s in range(0, n, chunk):
        idx = rng.integers(0, len(w), size=(min(chunk, n - s), len(w)))
        num, den = delta[idx].sum(axis=1), w[idx].sum(axis=1)
        diffs[s:s + len(idx)] = 100.0 * num / np.maximum(den, 1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    p = float(np.mean(diffs < 0) + 0.5 * np.mean(diffs == 0))
    full = 100.0 * delta.sum() / max(int(w.sum()), 1)
    return BootstrapResult(float(full), float(diffs.mean()), float(low), float(high), p, n, seed)


@dataclass(frozen=True)
class SignTestResult:
    """Utterances where A has fewer errors, B has fewer, equal; exact two-sided p-value."""

    a_better: int
    b_better: int
    ties: int
    p_value: float

    name = "two-sided exact sign test on per-utterance error counts"


def binom_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n trials of Binomial(n, 1/2)."""
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(k, n - k) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))  # exact integers, then one rounding


def sign_test(errs_a, errs_b) -> SignTestResult:
    """Sign test of B against A over utterances with different error counts."""
    ea, eb = _as_counts(errs_a, "errs_a"), _as_counts(errs_b, "errs_b")
    if len(ea) != len(eb):
        raise ValueError(f"{len(ea)} vs {len(eb)} utterances")
    a_better, b_better = int((ea < eb).sum()), int((eb < ea).sum())
    n = a_better + b_better
    return SignTestResult(a_better, b_better, len(ea) - n, binom_two_sided(b_better, n))
