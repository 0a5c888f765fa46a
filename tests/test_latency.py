"""`evaluation.latency`: batching, warm-up and percentiles of the serving-latency measurement."""

from __future__ import annotations

import numpy as np
import pytest

from evaluation.latency import measure_latency, percentile


def test_percentile_matches_numpy():
    xs = [5.0, 1.0, 9.0, 3.0, 7.5, 2.0]
    for q in (0, 1, 50, 90, 99, 100):
        assert percentile(xs, q) == pytest.approx(float(np.percentile(xs, q)))
    with pytest.raises(ValueError):
        percentile([], 50)


def test_measure_latency_batches_and_warms_up():
    calls = []
    result = measure_latency(lambda batch: calls.append(len(batch)), [[1]] * 70, 32, warmup_batches=1)
    assert calls == [32, 32, 32, 6]  # one warm-up batch, then every batch timed once
    assert (result["batches"], result["pairs"], result["batch_size"]) == (3, 70, 32)
    assert result["pairs_per_s"] > 0 and 0 <= result["p50_ms"] <= result["p99_ms"]
    with pytest.raises(ValueError):
        measure_latency(lambda b: None, [], 4)
    with pytest.raises(ValueError):
        measure_latency(lambda b: None, [[1]], 0)
