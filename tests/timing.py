"""Timing for the tests that bound how cost grows with the input.

They compare two sizes on the same machine (a ratio, never an absolute time),
so they hold on a slow or busy machine; the best of a few runs drops noise.
"""

from __future__ import annotations

import time


def best_time(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best
