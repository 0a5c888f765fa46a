"""A verl reward manager that adds SAM's token-level step data to the reward extras.

It runs verl's naive manager (which calls the configured `compute_score`),
then maps the reward's character spans of each step onto response tokens
(`token_spans`) and passes them on, so the trainer can build step ids without
seeing any text. Extras added (strings, as verl requires scalar or str values):

* ``sam_token_ranges``: JSON ``[[t0, t1], ...]``, one per criteria step, the
  response-token range of the step ([0, 0] when absent);
* ``sam_step_correct``: JSON ``[1, 0, -1, ...]``, one per step.

Select it with ``reward.reward_manager.name=sam_steps``.
"""

from __future__ import annotations

import json

from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from sam_advantage.token_spans import spans_to_token_ranges, token_char_offsets

NAME = "sam_steps"
RANGES_KEY = "sam_token_ranges"
CORRECT_KEY = "sam_step_correct"
STEPS_KEY = "steps"  # the reward's per-step JSON


def step_fields(steps_json: str) -> tuple[list[tuple[int, int]], list[int]]:
    """Character spans and correctness per step from the reward's ``steps`` JSON."""
    parsed = json.loads(steps_json) if steps_json else {}
    steps = parsed.get("steps", []) if isinstance(parsed, dict) else parsed
    spans = [(int(s.get("start", -1)), int(s.get("end", -1))) for s in steps]
    correct = [int(s.get("correct", -1)) for s in steps]
    return spans, correct


@register(NAME)
class SamStepRewardManager(NaiveRewardManager):
    """Naive reward manager + token ranges of each reasoning step."""

    async def run_single(self, data):
        result = await super().run_single(data)
        extra = result["reward_extra_info"]
        if STEPS_KEY not in extra:
            raise KeyError(
                f"reward manager '{NAME}' needs a reward function that returns '{STEPS_KEY}' "
                f"(per-step spans); got keys {sorted(extra)}. Use the project's reward "
                f"(reward.custom_reward_function.path pointing at reward/__init__.py)."
            )
        item = data[-1:][0]
        response_ids = item.batch["responses"]
        valid = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
        ids = response_ids[:valid].tolist()
        spans, correct = step_fields(extra[STEPS_KEY])

        def map_spans():
            offsets = token_char_offsets(self.tokenizer, ids)
            return spans_to_token_ranges(offsets, spans)

        ranges = await self.loop.run_in_executor(None, map_spans)
        extra[RANGES_KEY] = json.dumps([list(r) for r in ranges])
        extra[CORRECT_KEY] = json.dumps(correct)
        return result
