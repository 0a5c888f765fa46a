"""Paired bootstrap confidence intervals for the difference of two models on the same pairs.

Both models are scored on the same evaluation pairs, so the pairs are resampled together
(a paired bootstrap): each resample draws ``n`` pair indices with replacement and computes
the statistic of model A minus that of model B on them; the interval is the percentile
interval of those differences. Several seeds of one method are combined before, per pair
(e.g. the mean correctness over seeds), so the interval is over pairs, not seeds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

_CHUNK = 500  # resamples drawn at once: 500 x n indices stay small for n in the thousands


@dataclass(frozen=True)
class Interval:
    diff: float  # the statistic of A minus that of B on all pairs
    low: float
    high: float
    confidence: float
    resamples: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0

    def __str__(self) -> str:
        return f"{self.diff:+.4f} [{self.low:+.4f}, {self.high:+.4f}]"


def paired_bootstrap(statistic: Callable[[np.ndarray], float], n: int, resamples: int = 10_000,
                     confidence: float = 0.95, seed: int = 0) -> Interval:
    """Percentile interval of ``statistic(indices)`` (A minus B on those pairs) over resamples.

    ``statistic`` gets an array of pair indices (with repeats) and returns the difference of
    the two models on those pairs, e.g. a difference of macro-F1s recomputed on the resample.
    """
    if n < 1:
        raise ValueError("a bootstrap needs at least one pair")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    rng = np.random.default_rng(seed)
    diffs = np.array([statistic(rng.integers(0, n, n)) for _ in range(resamples)])
    return _interval(float(statistic(np.arange(n))), diffs, confidence)


def paired_mean_difference(a: Sequence[float], b: Sequence[float], resamples: int = 10_000,
                           confidence: float = 0.95, seed: int = 0) -> Interval:
    """Interval for mean(a) - mean(b), where a[i] and b[i] score the same pair (e.g. 1 if correct)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b must score the same pairs: shapes {a.shape} and {b.shape}")
    if len(a) < 1:
        raise ValueError("a bootstrap needs at least one pair")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    d = a - b
    rng = np.random.default_rng(seed)
    means = []
    for start in range(0, resamples, _CHUNK):  # vectorised: one (chunk, n) draw at a time
        idx = rng.integers(0, len(d), (min(_CHUNK, resamples - start), len(d)))
        means.append(d[idx].mean(axis=1))
    return _interval(float(d.mean()), np.concatenate(means), confidence)


def _interval(diff: float, diffs: np.ndarray, confidence: float) -> Interval:
    tail = (1 - confidence) / 2
    low, high = np.quantile(diffs, [tail, 1 - tail])
    return Interval(diff=diff, low=float(low), high=float(high), confidence=confidence, resamples=len(diffs))
