"""The `sam` trainer mode of verl's v1 trainer (`trainer.v1.trainer_mode=sam`).

It is verl's synchronous trainer with one addition: before the advantage step it
reads the reward extras of the batch from TransferQueue (step token ranges and
correctness, written by the `sam_steps` reward manager) and hands them to the
`sam` estimator. With any other estimator (e.g. `grpo`) the advantage is
verl's own, unchanged; the step metrics are logged either way, so GRPO and
GRPO + SAM runs can be compared on the same curves.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from verl.trainer.ppo.v1.trainer_base import register_trainer
from verl.trainer.ppo.v1.trainer_sync import PPOTrainerSync

from reward.contracts import CORRECT_KEY, RANGES_KEY, TOKENS_KEY, UNKNOWN, decode_step_extras
from sam_advantage.config import (ESTIMATOR, TRAINER_MODE, SamSettings, loss_agg_mode, poll_interval_s,
                                  validate_run_config)
from sam_advantage.core import unmasks_malformed
from sam_advantage.estimator import StepData, step_data_context
from sam_advantage.token_spans import ranges_tensor
from verl_backend.compat import SyncCodePaths, reward_extra_infos
from verl_backend.patches import set_replay_buffer_poll_interval

logger = logging.getLogger(__name__)


def step_data_from_infos(infos: list[dict], unmask_malformed: bool = False,
                         loss_agg_mode: str = "token-mean") -> StepData:
    """The step data of a batch from its reward extras.

    With ``unmask_malformed`` (the `paper` variant) the steps of a malformed
    response (the reward's ``format_ok`` 0) are marked unknown, so SAM leaves it
    unmasked.
    """
    missing = [i for i, info in enumerate(infos) if RANGES_KEY not in info or CORRECT_KEY not in info]
    if missing:
        raise RuntimeError(
            f"{len(missing)} responses lack SAM step data ('{RANGES_KEY}', '{CORRECT_KEY}' in the "
            f"reward extras), e.g. row {missing[0]}: use reward.reward_manager.name=sam_steps")
    decoded = [decode_step_extras(info) for info in infos]
    ranges, correct = [r for r, _ in decoded], [c for _, c in decoded]
    # a step without a correctness value (or a range) is unknown: SAM keeps its advantage
    num_steps = max((max(len(r), len(c)) for r, c in decoded), default=0)
    table = torch.full((len(correct), num_steps), UNKNOWN, dtype=torch.long)
    for row, values in enumerate(correct):
        if values and not (unmask_malformed and float(infos[row].get("format_ok", 1.0)) == 0.0):
            table[row, : len(values)] = torch.tensor(values, dtype=torch.long)
    # -1: not recorded (extras from elsewhere), not checked
    tokens = torch.tensor([int(info.get(TOKENS_KEY, -1)) for info in infos], dtype=torch.long)
    return StepData(token_ranges=ranges_tensor(ranges, num_steps), step_correct=table, loss_agg_mode=loss_agg_mode,
                    response_tokens=tokens)


def reward_quality_metrics(infos: list[dict]) -> dict[str, float]:
    """Format-error rate, exact accuracy and step accuracy of the batch's responses."""
    out: dict[str, float] = {}
    for key, name in (("format_ok", "format_error_rate"), ("acc", "acc"), ("step_acc", "step_acc")):
        values = [float(info[key]) for info in infos if key in info and info[key] is not None]
        if key == "step_acc":
            values = [v for v in values if v >= 0]  # negative: no verifiable step
        if values:
            mean = float(np.mean(values))
            out[f"relevance/{name}"] = 1.0 - mean if key == "format_ok" else mean
    return out


@register_trainer(TRAINER_MODE)
class SamPPOTrainer(SyncCodePaths, PPOTrainerSync):
    """verl's sync trainer (its code paths too: SyncCodePaths) whose advantage step can apply SAM."""

    def __init__(self, config):
        validate_run_config(config)  # fail before any worker is built
        super().__init__(config)

    def _build_replay_buffer(self):
        buffer = super()._build_replay_buffer()
        set_replay_buffer_poll_interval(buffer, poll_interval_s(self.config))
        return buffer

    def _compute_advantage(self, batch, metrics: dict):
        infos = reward_extra_infos(batch)
        metrics.update(reward_quality_metrics(infos))
        if self.config.algorithm.adv_estimator != ESTIMATOR:
            return super()._compute_advantage(batch, metrics)
        settings = SamSettings.from_algorithm(self.config.algorithm)
        data = step_data_from_infos(infos, unmask_malformed=unmasks_malformed(settings.variant),
                                    loss_agg_mode=loss_agg_mode(self.config))
        with step_data_context(data):
            batch = super()._compute_advantage(batch, metrics)
        metrics.update(data.metrics)
        return batch
