"""reward.contracts: a step's correctness travels from the reward to SAM's step table unchanged."""

from __future__ import annotations

import pytest

from reward import compute_score
from reward.contracts import NO_PRED, StepCorrect, decode_step_extras, decode_steps, encode_step_extras, row_id
from sam_advantage.core import CORRECT, UNKNOWN, WRONG
from sam_advantage.reward_manager import step_fields
from sam_advantage.trainer import step_data_from_infos

# default criteria: query_analysis, subject_match, need, constraints; the gold says the constraints
# are violated (label 2), the response says satisfied and answers 3
RESPONSE = (
    "<query_analysis>\nWants a how-to.\nVerdict: how-to\n</query_analysis>\n"
    "<subject_match>\nSame subject.\nVerdict: exact\n</subject_match>\n"
    "<need>\nIt serves it.\nVerdict: met\n</need>\n"
    "<constraints>\nAll kept.\nVerdict: satisfied\n</constraints>\n"
    "<answer>3</answer>")
GOLD = {"query_analysis": "how-to", "subject_match": "exact", "need": "met", "constraints": "violated"}


def test_the_enum_is_what_sam_counts_with():
    assert (CORRECT, WRONG, UNKNOWN) == (StepCorrect.CORRECT, StepCorrect.WRONG, StepCorrect.UNKNOWN) == (1, 0, -1)


def test_step_correctness_reaches_sams_table_unchanged():
    res = compute_score("grm_relevance", RESPONSE, 2, {"step_gold": GOLD})
    assert res["pred"] == 3 and res["acc"] == 0.0
    assert [s["correct"] for s in decode_steps(res["steps"])] == [1, 1, 1, 0]
    spans, correct = step_fields(res["steps"])
    assert correct == [StepCorrect.CORRECT] * 3 + [StepCorrect.WRONG]
    ranges = [(k, k + 1) for k in range(len(spans))]  # stand-ins for the token ranges
    extras = encode_step_extras(ranges, correct)
    assert decode_step_extras(extras) == (ranges, correct)
    table = step_data_from_infos([extras, {**encode_step_extras([], []), "format_ok": 1.0}]).step_correct
    assert table.tolist() == [[1, 1, 1, 0], [UNKNOWN] * 4]  # a response without steps: unknown throughout


def test_no_prediction_and_row_ids():
    assert compute_score("grm_relevance", "no answer here", 2, {"step_gold": GOLD})["pred"] == NO_PRED
    assert decode_steps("") == []
    assert row_id({"extra_info": {"id": "en-7"}}, 3) == "en-7" and row_id({}, 3) == "row-3"
    with pytest.raises(ValueError):
        encode_step_extras([(0, 1)], [2])  # not a StepCorrect
