"""A verl reward manager that adds SAM's token-level step data to the reward extras.

It runs verl's naive manager (which calls the configured `compute_score`),
then maps the reward's character spans of each step onto response tokens
(`token_spans`) and passes them on, so the trainer can build step ids without
seeing any text. Extras added (strings, as verl requires scalar or str values):

* ``sam_token_ranges``: JSON ``[[t0, t1], ...]``, one per criteria step, the
  response-token range of the step ([0, 0] when absent);
* ``sam_step_correct``: JSON ``[1, 0, -1, ...]``, one per step;
* ``sam_response_tokens``: the number of response tokens the ranges index (the
  trainer checks it against the row it computes the advantage for).

Select it with ``reward.reward_manager.name=sam_steps``.

A reward function that raises (a bug in a user's own ``compute_score``) is
re-raised as `RewardFunctionError` naming the sample: its id, split and row
index, data source, ground truth and the start of the response.
"""

from __future__ import annotations

import reprlib

from verl.experimental.reward_loop.reward_manager import register
from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

from reward.contracts import decode_steps, encode_step_extras
from sam_advantage.token_spans import spans_to_token_ranges, token_char_offsets

NAME = "sam_steps"
STEPS_KEY = "steps"  # the reward's per-step JSON


def valid_response_ids(item) -> list[int]:
    """The response tokens the reward saw (verl's naive manager cuts at the attention mask)."""
    response_ids = item.batch["responses"]
    valid = int(item.batch["attention_mask"][-response_ids.shape[-1]:].sum())
    return response_ids[:valid].tolist()


class RewardFunctionError(RuntimeError):
    """The reward function raised on one sample; the message names the sample."""


def describe_sample(item, tokenizer) -> str:
    """The fields that find a sample in its data file, for an error message."""
    info = item.non_tensor_batch.get("extra_info")
    info = info if isinstance(info, dict) else {}
    gold = item.non_tensor_batch.get("reward_model")
    parts = [f"{key}={info[key]!r}" for key in ("id", "split", "index") if info.get(key) is not None]
    parts.append(f"data_source={item.non_tensor_batch.get('data_source')!r}")
    if isinstance(gold, dict):
        parts.append(f"ground_truth={reprlib.repr(gold.get('ground_truth'))}")
    try:
        text = tokenizer.decode(valid_response_ids(item), skip_special_tokens=True)
        parts.append(f"response starting {text[:120]!r}")
    except Exception:  # the description must not hide the reward's own error
        pass
    return ", ".join(parts)


def step_fields(steps_json: str) -> tuple[list[tuple[int, int]], list[int]]:
    """Character spans and correctness per step from the reward's ``steps`` JSON."""
    steps = decode_steps(steps_json)
    spans = [(int(s.get("start", -1)), int(s.get("end", -1))) for s in steps]
    correct = [int(s.get("correct", -1)) for s in steps]
    return spans, correct


@register(NAME)
class SamStepRewardManager(NaiveRewardManager):
    """Naive reward manager + token ranges of each reasoning step."""

    async def run_single(self, data):
        try:
            result = await super().run_single(data)
        except Exception as exc:
            raise RewardFunctionError(
                f"the reward function raised on sample {describe_sample(data[-1:][0], self.tokenizer)}: "
                f"{type(exc).__name__}: {exc}") from exc
        extra = result["reward_extra_info"]
        if STEPS_KEY not in extra:
            raise KeyError(
                f"reward manager '{NAME}' needs a reward function that returns '{STEPS_KEY}' "
                f"(per-step spans); got keys {sorted(extra)}. Use the project's reward "
                f"(reward.custom_reward_function.path pointing at reward/__init__.py)."
            )
        ids = valid_response_ids(data[-1:][0])
        spans, correct = step_fields(extra[STEPS_KEY])

        def map_spans():
            offsets = token_char_offsets(self.tokenizer, ids)
            return spans_to_token_ranges(offsets, spans)

        ranges = await self.loop.run_in_executor(None, map_spans)
        extra.update(encode_step_extras(ranges, correct, num_tokens=len(ids)))
        return result
