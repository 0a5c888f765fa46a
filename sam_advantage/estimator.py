"""The `sam` advantage estimator, registered in verl's estimator registry.

verl calls registered estimators with only ``token_level_rewards``,
``response_mask``, ``index`` and ``config``; SAM also needs each response's
step data, which lives in the reward extras. The SAM trainer mode
(`sam_advantage.trainer`) reads those extras and hands them over through
`step_data_context` (``verl_backend.compat.EstimatorInputs``, where that
coupling is checked) for exactly one estimator call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from verl.trainer.ppo.core_algos import register_adv_est

from sam_advantage.config import ESTIMATOR, SamSettings
from sam_advantage.core import compute_sam_advantage_and_keep, sam_step_metrics
from sam_advantage.token_spans import response_ends, step_token_counts
from verl_backend.compat import EstimatorInputs


@dataclass
class StepData:
    token_ranges: torch.Tensor  # long [B, K, 2]: each step's response tokens [t0, t1) (`ranges_tensor`)
    step_correct: torch.Tensor  # long [B, K]
    # the run's actor_rollout_ref.actor.loss_agg_mode: how masked tokens leave the loss
    loss_agg_mode: str = "token-mean"
    # long [B]: the response tokens the reward manager mapped the steps onto (-1: not recorded)
    response_tokens: torch.Tensor | None = None
    metrics: dict[str, float] = field(default_factory=dict)


def check_alignment(response_tokens: torch.Tensor | None, response_mask: torch.Tensor,
                    ends: torch.Tensor | None = None) -> None:
    """Raise if a row's step data was computed for a response of another length: the reward
    extras and the batch tensors travel separately (dispatch to workers, re-ordering), and a
    mix-up would silently mask another response's tokens. The response ends at the last token
    of its mask (the mask may have holes in multi-turn rollouts; its end is still the end).
    ``ends``: `response_ends` of the mask, if the caller has them."""
    if response_tokens is None:
        return
    ends = response_ends(response_mask) if ends is None else ends
    recorded = response_tokens.to(ends.device)
    bad = ((recorded >= 0) & (recorded != ends)).nonzero().flatten()
    if bad.numel():
        row = int(bad[0])
        raise RuntimeError(
            f"SAM step data does not belong to the batch row it reached: row {row} has {int(ends[row])} "
            f"response tokens, its step data was computed for {int(recorded[row])} ({bad.numel()} rows differ); "
            "the reward extras and the batch were re-ordered differently")


_STEP_DATA = EstimatorInputs()
step_data_context = _STEP_DATA.provide  # `with step_data_context(data):` around one estimator call


@register_adv_est(ESTIMATOR)
def compute_sam_outcome_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    **_: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    data: StepData | None = _STEP_DATA.current()
    if data is None:
        raise RuntimeError(
            "advantage estimator 'sam' was called without step data: run it with "
            "trainer.v1.trainer_mode=sam and reward.reward_manager.name=sam_steps")
    if index is None:
        raise RuntimeError("advantage estimator 'sam' needs the group ids (uid) of the responses")
    batch = response_mask.shape[0]
    if data.token_ranges.shape[0] != batch or data.step_correct.shape[0] != batch:
        raise RuntimeError(f"SAM step data covers {data.token_ranges.shape[0]} responses, batch has {batch}")
    lengths = response_mask.sum(dim=-1)
    ends = response_ends(response_mask, lengths)
    check_alignment(data.response_tokens, response_mask, ends)
    settings = SamSettings.from_algorithm(config)
    norm = bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True
    ranges = data.token_ranges.to(response_mask.device)
    step_tokens = step_token_counts(ranges, response_mask, lengths, ends)  # the exclusion's and the metrics'
    # The token advantages straight from the ranges: no [B, T] step ids; when no row's mask has a
    # hole (single-turn), no multiply by the mask either (the ends say).
    advantages, scalars, keep = compute_sam_advantage_and_keep(
        token_level_rewards, response_mask, index, None, data.step_correct,
        variant=settings.variant, norm_adv_by_std_in_grpo=norm, epsilon=settings.epsilon,
        exclude_masked_from_loss=settings.exclude_masked_from_loss, loss_agg_mode=data.loss_agg_mode,
        token_ranges=ranges, lengths=lengths, ends=ends, step_tokens=step_tokens)
    data.metrics.update(sam_step_metrics(scalars, keep, step_tokens, lengths, data.step_correct))
    return advantages, advantages
