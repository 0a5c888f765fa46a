"""Serving latency of a model on prepared prompts: pairs/s and p50 / p99 ms per pair at a batch size.

Each batch of ``batch_size`` prompts is one call (a `generate` for a generative model, a forward
pass for a one-pass scorer), timed on its own; a pair's latency is its batch's wall time over the
batch's pairs (at batch 1: the request latency). Warm-up batches run first and are not timed
(the first call pays for lazy initialisation; a scorer also caches its prompt prefix there).

    gen = load_generator(path, "hf", "cpu", batch_size=32)
    teacher = measure_latency(generate_fn(gen, SamplingConfig(max_new_tokens=1024)), prompt_ids, 32)
    student = measure_latency(load_scorer(path, "cpu", 32).score, prompt_ids, 32)
    student["pairs_per_s"] / teacher["pairs_per_s"]   # the speed-up
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

Batch = Sequence[Sequence[int]]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile with linear interpolation between order statistics (numpy's default)."""
    xs = sorted(values)
    if not xs:
        raise ValueError("no values")
    pos = (len(xs) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def generate_fn(generator, cfg) -> Callable[[Batch], Any]:
    """A batch call for an `evaluation.generation` generator (its own batch size must be >= the batch)."""
    return lambda batch: generator.generate(batch, cfg, progress=False)


def measure_latency(run_batch: Callable[[Batch], Any], prompt_ids: Sequence[Sequence[int]], batch_size: int,
                    warmup_batches: int = 1) -> dict[str, Any]:
    """Time ``run_batch`` over ``prompt_ids`` in batches of ``batch_size``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    batches = [list(prompt_ids[i:i + batch_size]) for i in range(0, len(prompt_ids), batch_size)]
    if not batches:
        raise ValueError("no prompts to time")
    for batch in batches[:warmup_batches]:
        run_batch(batch)
    seconds: list[float] = []
    for batch in batches:
        start = time.perf_counter()
        run_batch(batch)
        seconds.append(time.perf_counter() - start)
    per_pair_ms = [1000.0 * s / len(b) for s, b in zip(seconds, batches)]
    total = sum(seconds)
    return {"batch_size": batch_size, "pairs": len(prompt_ids), "batches": len(batches),
            "pairs_per_s": len(prompt_ids) / total if total > 0 else None,
            "p50_ms": percentile(per_pair_ms, 50), "p99_ms": percentile(per_pair_ms, 99),
            "batch_p50_ms": percentile([1000.0 * s for s in seconds], 50)}


__all__ = ["generate_fn", "measure_latency", "percentile"]
