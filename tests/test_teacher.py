"""The warm-up teacher's mistakes: parsed strictly, applied reproducibly, self-consistent traces."""

import json
from collections import Counter

import pytest

from data_prep.benchmark import BenchmarkConfig, generate_benchmark
from data_prep.teacher import TeacherErrors
from data_prep.traces import build_trace
from reward.scoring import score_response


@pytest.fixture(scope="module")
def rows():
    cfg = BenchmarkConfig(seed=3, train_size=1000, val_size=5, test_random_size=5, test_longtail_size=5,
                          sft_size=0, progress=False)
    return generate_benchmark(cfg)["train"]


@pytest.mark.parametrize("spec, words", [
    ("siblings=unrelated:0.5", "unknown case 'siblings'"),
    ("sibling=exact:0.5", "must be one of related, unrelated"),
    ("sibling=unrelated:half", "must be a number"),
    ("sibling=unrelated:1.5", "must lie in [0, 1]"),
    ("sibling=unrelated:0.5,sibling=related:0.2", "given twice"),
    # answer mistakes: label=label:share
    ("2=2:0.5", "must differ from the gold label"),
    ("5=3:0.5", "maps a label to another label"),
    ("2=x:0.5", "maps a label to another label"),
    ("2=3:0.5,2=1:0.2", "given twice"),
    ("2=3:-0.1", "must lie in [0, 1]"),
])
def test_a_malformed_spec_names_the_item(spec, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
        TeacherErrors.parse(spec)


def test_the_spec_reads_back_and_empty_is_the_annotating_teacher(rows):
    errors = TeacherErrors.parse(" sibling=unrelated:0.60 , keyword_collision=related:1 ")
    assert errors.spec == "sibling=unrelated:0.6,keyword_collision=related:1"
    assert TeacherErrors.parse(errors.spec) == errors
    for none in (TeacherErrors.parse(""), TeacherErrors.parse(None), TeacherErrors.parse("sibling=unrelated:0")):
        assert not none
        assert all(none.view(r) is r for r in rows)


def test_mistakes_hit_their_case_at_their_share_and_nothing_else(rows):
    errors = TeacherErrors.parse("sibling=unrelated:0.6", seed=0)
    seen = [errors.view(r) for r in rows]
    assert seen == [errors.view(r) for r in rows]  # reproducible
    changed = [(r, v) for r, v in zip(rows, seen) if v is not r]
    assert {r["case"] for r, _ in changed} == {"sibling"}
    siblings = sum(r["case"] == "sibling" for r in rows)
    assert 0.5 < len(changed) / siblings < 0.7, (len(changed), siblings)
    # another seed picks other traces, at the same share
    other = [r for r in rows if TeacherErrors.parse("sibling=unrelated:0.6", seed=1).view(r) is not r]
    assert {r["id"] for r, _ in changed} != {r["id"] for r in other}
    for row, view in changed:
        assert row["label"] == 0 and row["step_gold"]["subject_match"] == "related"  # the input is untouched
        assert view["label"] == -1 and view["teacher_mistake"] == "sibling->unrelated"
        assert view["step_gold"] == {"query_analysis": row["step_gold"]["query_analysis"],
                                     "subject_match": "unrelated"}


@pytest.mark.parametrize("criteria", ["default", "compact"])
def test_a_mistaken_trace_is_consistent_and_scores_as_the_teacher_meant(rows, criteria):
    errors = TeacherErrors.parse("sibling=unrelated:1,keyword_collision=related:1")
    views = [errors.view(r) for r in rows if r["case"] in ("sibling", "keyword_collision")]
    assert Counter(v["teacher_mistake"] for v in views) == Counter(
        {"sibling->unrelated": sum(r["case"] == "sibling" for r in rows),
         "keyword_collision->related": sum(r["case"] == "keyword_collision" for r in rows)})
    for view, row in zip(views[:40], [r for r in rows if r["case"] in ("sibling", "keyword_collision")]):
        trace = build_trace(view, criteria)
        info = {"criteria": criteria, "step_gold": json.dumps(view["step_gold"])}
        as_meant = score_response(trace, str(view["label"]), info)
        assert as_meant["format_ok"] and as_meant["acc"] == 1.0 and as_meant["step_acc"] == 1.0
        gold = score_response(trace, str(row["label"]), {"criteria": criteria, "step_gold": json.dumps(row["step_gold"])})
        assert gold["acc"] == 0.0 and gold["step_acc"] < 1.0  # the gold reward sees the mistake


@pytest.mark.parametrize("criteria", ["compact", "free_form", "paper_compact"])
def test_an_answer_mistake_changes_the_answer_alone(rows, criteria):
    """The lenient teacher: steps as annotated, the answer one level up in its share of the rows."""
    from data_prep.teacher import LENIENT

    errors = TeacherErrors.parse(LENIENT)
    assert errors.spec == LENIENT and TeacherErrors.parse(errors.spec) == errors
    views = [errors.view(r) for r in rows]
    changed = [(r, v) for r, v in zip(rows, views) if v is not r]
    for gold in (2, 1, 0):
        share = (sum(r["label"] == gold for r, _ in changed) / sum(r["label"] == gold for r in rows))
        assert 0.5 < share < 0.7, (gold, share)
    assert not any(r["label"] in (3, -1) for r, _ in changed)
    for row, view in changed[:30]:
        assert view["label"] == row["label"] and view["step_gold"] == row["step_gold"]  # the gold stands
        assert view["answer_label"] == row["label"] + 1 and view["teacher_mistake"] == f"{row['label']}->{row['label'] + 1}"
        trace, annotated = build_trace(view, criteria), build_trace(row, criteria)
        # the same trace up to the answer, which says one level more
        assert trace.replace(f"<answer>{row['label'] + 1}</answer>", "") == \
            annotated.replace(f"<answer>{row['label']}</answer>", "")
        info = {"criteria": criteria}
        if criteria == "compact":  # the paper criteria's gold comes from the label; free-form has no steps
            info["step_gold"] = json.dumps(row["step_gold"])
        scored = score_response(trace, str(row["label"]), info)
        assert scored["format_ok"] and scored["acc"] == 0.0 and scored["pred"] == row["label"] + 1
        steps = {s["name"]: s for s in json.loads(scored["steps"])["steps"]}
        if criteria == "compact":
            assert scored["step_acc"] == 1.0  # every step right, the answer wrong
        elif criteria == "paper_compact":  # the calibrated label is the gold one; only the answer is lenient
            assert steps["calibration"]["verdict"] == str(row["label"]) and steps["calibration"]["correct"] == 1
