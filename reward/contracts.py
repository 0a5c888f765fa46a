"""What the reward, SAM and evaluation exchange, defined once.

The reward (``reward.scoring.compute_score``) produces these values; SAM's reward manager and
trainer (``sam_advantage``) and evaluation read them. Stop tokens, the other contract between
the training rollout and evaluation, live with the models: ``model_zoo.stop_tokens``.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any, Mapping, Sequence

NO_PRED = -99  # ``compute_score``'s ``pred`` when no label could be read


class StepCorrect(IntEnum):
    """A step's verdict against its gold verdicts, as SAM's step table stores it."""

    CORRECT = 1
    WRONG = 0
    UNKNOWN = -1  # no gold verdict for the step, or the response has no span for it


# The same values as plain ints, for hot loops and tensor comparisons.
CORRECT, WRONG, UNKNOWN = (int(c) for c in (StepCorrect.CORRECT, StepCorrect.WRONG, StepCorrect.UNKNOWN))


# SAM's reward extras (strings: verl keeps only scalar or str extras).
RANGES_KEY = "sam_token_ranges"  # JSON [[t0, t1], ...]: each step's response-token range
CORRECT_KEY = "sam_step_correct"  # JSON [1, 0, -1, ...]: each step's StepCorrect
# The number of response tokens the ranges index: the trainer checks it against the response
# mask of the row the advantage is computed for, so step data can never reach another response.
TOKENS_KEY = "sam_response_tokens"


def decode_steps(steps_json: str | None) -> list[dict[str, Any]]:
    """The per-step records (``name``, ``start``, ``end``, ``verdict``, ``correct``) of the reward's
    ``steps`` JSON; empty for an empty string."""
    parsed = json.loads(steps_json) if steps_json else {}
    return list(parsed.get("steps", []) if isinstance(parsed, dict) else parsed)


def encode_step_extras(ranges: Sequence[Sequence[int]], correct: Sequence[int],
                       num_tokens: int | None = None) -> dict[str, Any]:
    """SAM's extras of one response: its steps' token ranges and correctness, and (when given)
    the number of response tokens they index."""
    extras: dict[str, Any] = {RANGES_KEY: json.dumps([[int(a), int(b)] for a, b in ranges]),
                              CORRECT_KEY: json.dumps([int(StepCorrect(c)) for c in correct])}
    if num_tokens is not None:
        extras[TOKENS_KEY] = int(num_tokens)
    return extras


def decode_step_extras(info: Mapping[str, Any]) -> tuple[list[tuple[int, int]], list[int]]:
    """(token ranges, correctness) from one response's extras, as ``encode_step_extras`` wrote them."""
    return ([tuple(r) for r in json.loads(info[RANGES_KEY])], [int(c) for c in json.loads(info[CORRECT_KEY])])


def row_id(row: Mapping[str, Any], index: int) -> str:
    """A data row's id for messages and records: ``extra_info.id``, else ``row-<index>``."""
    return str((row.get("extra_info") or {}).get("id") or f"row-{index}")
