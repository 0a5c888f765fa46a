"""Paired bootstrap intervals against distributions that can be enumerated by hand."""

import numpy as np
import pytest

from evaluation.stats import paired_bootstrap, paired_mean_difference


def test_two_pairs_interval_is_the_enumerated_percentiles():
    # differences d = (0, 1): a resample's mean is 0, 1/2 or 1 with probability 1/4, 1/2, 1/4,
    # so the 2.5% and 97.5% points are 0 and 1, and the point estimate is 1/2
    iv = paired_mean_difference([1, 1], [1, 0], resamples=20_000, seed=1)
    assert (iv.diff, iv.low, iv.high) == (0.5, 0.0, 1.0)
    assert not iv.excludes_zero


def test_three_pairs_at_ninety_percent():
    # d = (0, 0, 1): the mean of 3 draws is k/3 with k ~ Binomial(3, 1/3):
    # P = 8/27, 12/27, 6/27, 1/27; the 5% point is 0, the 95% point 2/3 (cumulative 26/27 >= 0.95)
    iv = paired_mean_difference([0, 0, 1], [0, 0, 0], resamples=40_000, confidence=0.9, seed=2)
    assert iv.low == 0.0 and iv.high == pytest.approx(2 / 3)
    assert iv.diff == pytest.approx(1 / 3)


def test_pairing_removes_the_variation_shared_by_both_models():
    # B is A minus 0.1 on every pair: unpaired the spread would be wide, paired it is none
    rng = np.random.default_rng(0)
    a = rng.random(500)
    iv = paired_mean_difference(a, a - 0.1, resamples=2_000)
    assert iv.low == pytest.approx(0.1) and iv.high == pytest.approx(0.1) and iv.excludes_zero


def test_generic_statistic_matches_the_enumerated_case():
    a, b = np.array([1.0, 1.0]), np.array([1.0, 0.0])
    iv = paired_bootstrap(lambda idx: a[idx].mean() - b[idx].mean(), n=2, resamples=20_000, seed=3)
    assert (iv.diff, iv.low, iv.high) == (0.5, 0.0, 1.0)


@pytest.mark.parametrize("call, message", [
    (lambda: paired_mean_difference([1, 0], [1]), "same pairs"),
    (lambda: paired_mean_difference([], []), "at least one pair"),
    (lambda: paired_mean_difference([1], [0], confidence=1.0), "confidence"),
    (lambda: paired_bootstrap(lambda i: 0.0, n=0), "at least one pair"),
    (lambda: paired_bootstrap(lambda i: 0.0, n=3, resamples=0), "resamples"),
])
def test_bad_arguments_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call()
