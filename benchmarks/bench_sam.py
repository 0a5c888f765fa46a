"""SAM advantage vs verl's GRPO estimators, timed in the same run.

    python benchmarks/bench_sam.py [--batch 4096 --length 1024 --group 8 --steps 4]

Prints the median time of `sam` (each variant; `symmetric` and `paper` also with
masked tokens out of the loss, under `seq-mean-token-mean` and `token-mean`, the
step token counts from the step ids or, as in the trainer mode, the token
advantages and counts from the ranges; and the registered estimator with its
metrics and its check that each row's step data belongs to it),
verl's `grpo_vectorized` and `grpo` (python loop), and the ratio
sam / grpo_vectorized (target: <= 2x, with the exclusion too; reading int64
step ids puts the memory-traffic floor near 1.7x). Runs are interleaved so
background load hits every estimator alike.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from verl.trainer.ppo.core_algos import (
    compute_grpo_outcome_advantage,
    compute_grpo_vectorized_outcome_advantage,
)

from omegaconf import OmegaConf

from sam_advantage.core import VARIANTS, compute_sam_advantage, compute_sam_advantage_and_keep
from sam_advantage.estimator import StepData, compute_sam_outcome_advantage, step_data_context


def make_batch(b: int, t: int, g: int, k: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(t // 4, t + 1, (b,), generator=gen)
    mask = (torch.arange(t)[None] < lengths[:, None]).float()
    rewards = torch.zeros(b, t)
    rewards[torch.arange(b), lengths - 1] = torch.randint(0, 2, (b,), generator=gen).float()
    index = np.array([f"uid-{i // g}" for i in range(b)], dtype=object)
    # k contiguous steps covering the first ~80% of each response, answer after
    bounds = (lengths[:, None].float() * torch.linspace(0.0, 0.8, k + 1)[None]).long()
    pos = torch.arange(t)[None]
    step_ids = torch.full((b, t), -1, dtype=torch.long)
    for s in range(k):
        step_ids[(pos >= bounds[:, s:s + 1]) & (pos < bounds[:, s + 1:s + 2])] = s
    correct = torch.randint(-1, 2, (b, k), generator=gen)
    ranges = torch.stack([bounds[:, :-1], bounds[:, 1:]], dim=-1)  # [B, K, 2], as the trainer mode has them
    return rewards, mask, index, step_ids, correct, ranges


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=4096)
    p.add_argument("--length", type=int, default=1024)
    p.add_argument("--group", type=int, default=8)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--loop-repeats", type=int, default=3, help="repeats of verl's slow python-loop grpo")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    p.add_argument("--mask-dtype", choices=("float32", "int64"), default="float32",
                   help="the response mask's dtype (verl's trainer slices it from the int64 attention mask)")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rewards, mask, index, step_ids, correct, ranges = make_batch(args.batch, args.length, args.group, args.steps)
    mask = mask.to(getattr(torch, args.mask_dtype))

    fns = {"grpo_vectorized": lambda: compute_grpo_vectorized_outcome_advantage(rewards, mask, index)}
    for v in VARIANTS:
        fns[f"sam[{v}]"] = (lambda v=v: compute_sam_advantage(rewards, mask, index, step_ids, correct, v))
    for v in ("symmetric", "paper"):
        for mode, short in (("seq-mean-token-mean", "seq"), ("token-mean", "tok")):
            fns[f"sam[{v}]+exclude[{short}]"] = (lambda v=v, mode=mode: compute_sam_advantage(
                rewards, mask, index, step_ids, correct, v, exclude_masked_from_loss=True, loss_agg_mode=mode))

    # the trainer mode's path: token advantages and step token counts from the ranges, no step ids
    fns["sam[symmetric]+exclude[seq,ranges]"] = lambda: compute_sam_advantage_and_keep(
        rewards, mask, index, None, correct, "symmetric", exclude_masked_from_loss=True,
        loss_agg_mode="seq-mean-token-mean", token_ranges=ranges)
    # the registered estimator as verl's trainer calls it, with its metrics
    algorithm = OmegaConf.create({"sam": {"variant": "symmetric", "exclude_masked_from_loss": True}})

    # the response lengths the reward manager records: the estimator checks each row's against its mask
    recorded = mask.sum(dim=-1).long()

    def estimator() -> None:
        data = StepData(token_ranges=ranges, step_correct=correct, loss_agg_mode="seq-mean-token-mean",
                        response_tokens=recorded)
        with step_data_context(data):
            compute_sam_outcome_advantage(rewards, mask, index, algorithm)
    fns["estimator[symmetric]+exclude[seq]"] = estimator
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up: allocator, thread pool
    for _ in range(args.repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    loop = []
    for _ in range(args.loop_repeats):
        t0 = time.perf_counter()
        compute_grpo_outcome_advantage(rewards, mask, index)
        loop.append(time.perf_counter() - t0)
    times["grpo (verl python loop)"] = loop

    base = statistics.median(times["grpo_vectorized"])
    print(f"B={args.batch} T={args.length} G={args.group} K={args.steps} threads={torch.get_num_threads()} "
          f"repeats={args.repeats} mask={args.mask_dtype}")
    print(f"{'estimator':<32}{'median ms':>11}{'min ms':>9}{'x grpo_vectorized':>19}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:<32}{med * 1e3:>11.2f}{min(ts) * 1e3:>9.2f}{med / base:>19.2f}")
    for name in ("sam[symmetric]", "sam[symmetric]+exclude[seq]", "sam[symmetric]+exclude[seq,ranges]",
                 "estimator[symmetric]+exclude[seq]"):
        ratio = statistics.median(times[name]) / base
        print(f"{name} / grpo_vectorized = {ratio:.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
