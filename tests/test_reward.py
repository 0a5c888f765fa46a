"""The reward: parsing, malformed-output codes, gold, variants and config errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import reward
from data_prep.criteria import load_criteria
from data_prep.prompt import format_response
from reward import (
    NO_PRED,
    RESULT_KEYS,
    compute_score,
    compute_score_format_penalty,
    compute_score_ordinal,
    compute_score_outcome,
    get_parser,
)
from timing import best_time

CRIT = load_criteria("default")
TAGS = {s.name: s.tag for s in CRIT.steps}


def verdicts_for(label: int) -> dict[str, str]:
    """Verdicts that are gold for `label` and imply it under the label rules."""
    out = {}
    for step in CRIT.steps:
        gold = step.gold_for_label(label)
        if gold:
            out[step.name] = gold[0]
        elif "n/a" in step.verdicts:
            out[step.name] = "n/a"
        else:
            out[step.name] = step.verdicts[0]
    return out


def response(label: int = 3, lang: str = "en", verdicts: dict[str, str] | None = None,
             answer: int | None = None) -> str:
    chosen = {**verdicts_for(label), **(verdicts or {})}
    steps = {name: (f"Some reasoning about {name}, with detail.\nA second line.", v)
             for name, v in chosen.items()}
    return format_response(steps, label if answer is None else answer, CRIT, lang=lang)


def block(text: str, name: str) -> str:
    tag = TAGS.get(name, name)
    start = text.index(f"<{tag}>")
    return text[start:text.index(f"</{tag}>", start) + len(tag) + 3]


def score(text, label=3, extra_info=None, **kw):
    return compute_score("relevance", text, label, extra_info, **kw)


def steps_of(result) -> list[dict]:
    return json.loads(result["steps"])["steps"]


def check_spans(text: str, result: dict) -> None:
    doc = json.loads(result["steps"])
    spans = []
    for item, step in zip(doc["steps"], CRIT.steps):
        if item["start"] >= 0:
            piece = text[item["start"]:item["end"]]
            assert piece.startswith(f"<{step.tag}>") and piece.endswith(f"</{step.tag}>")
            spans.append((item["start"], item["end"]))
        else:
            assert item["end"] == -1
    ans = doc["answer"]
    if ans["start"] >= 0:
        piece = text[ans["start"]:ans["end"]]
        assert piece.startswith("<answer>") and piece.endswith("</answer>")
        spans.append((ans["start"], ans["end"]))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "spans overlap"


# -- well-formed -------------------------------------------------------------------------


@pytest.mark.parametrize("label", [-1, 0, 1, 2, 3])
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_valid_response_scores_one(label, lang):
    text = response(label, lang)
    out = score(text, label, {"lang": lang})
    assert tuple(out) == RESULT_KEYS
    assert out["score"] == 1.0 and out["acc"] == 1.0 and out["pred"] == label
    assert out["format_ok"] == 1.0 and out["format_error"] == ""
    assert out["num_steps"] == 4 and out["step_acc"] == 1.0 and out["consistent"] == 1.0
    assert [s["verdict"] for s in steps_of(out)] == list(verdicts_for(label).values())
    check_spans(text, out)


def test_result_types_are_fixed():
    for text in (response(), "", "junk <answer>9</answer>"):
        out = score(text)
        assert tuple(out) == RESULT_KEYS
        types = [type(out[k]) for k in RESULT_KEYS]
        assert types == [float, float, int, float, str, int, float, int, int, float, str]


def test_steps_json_structure_and_exact_spans():
    text = "Preamble text.\n" + response(2) + "\nTrailing words."
    out = score(text, 2)
    doc = json.loads(out["steps"])
    assert set(doc) == {"steps", "answer"}
    assert [s["name"] for s in doc["steps"]] == list(CRIT.step_names)
    for item, step in zip(doc["steps"], CRIT.steps):
        assert set(item) == {"name", "verdict", "correct", "start", "end"}
        assert text[item["start"]:item["end"]] == block(text, step.name)
    assert text[doc["answer"]["start"]:doc["answer"]["end"]] == "<answer>2</answer>"
    # the hand-built JSON equals json.dumps of the same structure
    assert out["steps"] == json.dumps(doc)


# -- malformed output: one test per reason code ---------------------------------------------


def _swap(text: str, a: str, b: str) -> str:
    ba, bb = block(text, a), block(text, b)
    return text.replace(ba, "\0").replace(bb, ba).replace("\0", bb)


MALFORMED = {
    "missing_step:need": lambda t: t.replace(block(t, "need"), ""),
    "missing_step:query_analysis": lambda t: t.replace(block(t, "query_analysis"), ""),
    "bad_verdict:subject_match": lambda t: t.replace("Verdict: exact", "Verdict: identical"),
    "missing_verdict:need": lambda t: t.replace("Verdict: met", "It is met."),
    "missing_verdict:constraints": lambda t: t.replace("Verdict: satisfied", "Verdict:   "),
    "no_answer": lambda t: t.replace("<answer>3</answer>", "The level is 3."),
    "answer_not_a_label": lambda t: t.replace("<answer>3</answer>", "<answer>high</answer>"),
    "steps_out_of_order": lambda t: _swap(t, "need", "constraints"),
    "repeated_tag:need": lambda t: t.replace(block(t, "need"), block(t, "need") * 2),
    "repeated_tag:answer": lambda t: t + "\n<answer>2</answer>",
    "unclosed_tag:need": lambda t: t.replace("</need>", ""),
    "unclosed_tag:answer": lambda t: t.replace("</answer>", ""),
    "stray_close:constraints": lambda t: t.replace("</constraints>", "</constraints></constraints>"),
}


@pytest.mark.parametrize("code", sorted(MALFORMED))
def test_malformed_codes(code):
    text = MALFORMED[code](response(3))
    out = score(text, 3)
    assert out["format_error"] == code
    assert out["format_ok"] == 0.0 and out["score"] == 0.0
    assert tuple(out) == RESULT_KEYS
    check_spans(text, out)
    # both parser paths agree
    parser = get_parser("default")
    assert parser.parse(text) == parser.parse_slow(text)


@pytest.mark.parametrize("text", ["", "   \n\t", None])
def test_empty(text):
    out = score(text)
    assert out["format_error"] == "empty" and out["pred"] == NO_PRED and out["num_steps"] == 0
    assert out["score"] == 0.0 and out["acc"] == 0.0
    assert all(s["start"] == -1 and s["correct"] == -1 for s in steps_of(out))


def test_answer_out_of_range_and_words():
    for body in ("7", "-2", "3 (fully relevant)", "three", "", "3.5", "1e3"):
        out = score(response().replace("<answer>3</answer>", f"<answer>{body}</answer>"))
        assert out["format_error"] == "answer_not_a_label", body
        assert out["pred"] == NO_PRED


def test_answer_before_steps_is_out_of_order():
    text = response(1)
    text = "<answer>1</answer>\n" + text.replace("<answer>1</answer>", "")
    out = score(text, 1)
    assert out["format_error"] == "steps_out_of_order"
    assert out["pred"] == 1 and out["acc"] == 1.0 and out["score"] == 0.0


def test_repeated_tag_first_occurrence_counts():
    text = response(3)
    first = block(text, "need")
    second = first.replace("Verdict: met", "Verdict: unmet")
    text = text.replace(first, first + "\n" + second)
    out = score(text, 3)
    assert out["format_error"] == "repeated_tag:need"
    need = steps_of(out)[2]
    assert need["verdict"] == "met" and need["correct"] == 1
    assert text[need["start"]:need["end"]] == first

    text = response(3) + "\n<answer>1</answer>"
    out = score(text, 3)
    assert out["pred"] == 3 and out["acc"] == 1.0 and out["score"] == 0.0


def test_nested_step_is_unclosed():
    text = response(3)
    need, cons = block(text, "need"), block(text, "constraints")
    text = text.replace(need, "").replace(cons, need.replace("</need>", cons + "\n</need>"))
    out = score(text, 3)
    assert out["format_error"] == "unclosed_tag:need"
    assert steps_of(out)[2]["start"] == -1  # no span that would overlap the constraints span
    check_spans(text, out)


def test_tags_are_case_sensitive():
    out = score(response().replace("<need>", "<Need>").replace("</need>", "</Need>"))
    assert out["format_error"] == "missing_step:need"


@pytest.mark.parametrize("cut", [1, 20, 150, 300, 400, -30, -12, -1])
def test_truncated_responses(cut):
    text = response(2)[:cut]
    out = score(text, 2)
    assert out["format_ok"] == 0.0 and out["format_error"]
    check_spans(text, out)


def test_very_long_and_unicode_responses():
    long_text = response(3).replace("A second line.", "长文本🙂 " * 20000)
    assert len(long_text) > 100_000
    out = score(long_text, 3)
    assert out["score"] == 1.0
    check_spans(long_text, out)
    junk = "\x00\ud7ff\U0001f600<<<>>></answer><answer>" * 5000
    assert score(junk)["format_ok"] == 0.0


def test_pathological_inputs_stay_fast():
    import time

    parser = get_parser("default")
    nasty = [
        "<query_analysis>" + "Verdict" * 20000,
        "<query_analysis>" + "Verdict " * 5000 + "</query_analysis>" + "<subject_match>" * 3000,
        "".join(f"<{t}>Verdict:" for t in TAGS.values()) * 2000,
        "<query_analysis>Verdict:" + " " * 50000 + "x",
        "<answer>" + "9" * 100000 + "</answer>",
        "<query_analysis>" + "Verdict:\n" * 30000 + "</query_analysis>",
        "<query_analysis>" + "verdict " * 30000 + "</query_analysis>" * 2,
    ]
    for text in nasty:
        t0 = time.perf_counter()
        parser.parse(text)
        compute_score("r", text, 3)
        assert time.perf_counter() - t0 < 1.0


def _degenerate(size: int) -> dict[str, str]:
    """Shapes of a model stuck repeating itself up to the length limit, about `size` chars."""
    closed = "".join(f"<{TAGS[n]}>Verdict: {v}</{TAGS[n]}>" for n, v in
                     (("query_analysis", "how-to"), ("subject_match", "exact"), ("need", "met")))
    reps = lambda unit: unit * (size // len(unit))  # noqa: E731
    return {
        "unclosed step, markers on lines": "<query_analysis>" + reps("Verdict: how-to\n"),
        "unclosed step, markers on one line": "<query_analysis>" + reps("Verdict: how-to "),
        "unclosed last step, zh markers": closed + "<constraints>" + reps("结论：none "),
        "closed step, markers without colon": "<query_analysis>" + reps("Verdict ") + "</query_analysis>",
        "closed step, marker then spaces": "<query_analysis>Verdict" + reps(" \t") + "</query_analysis>",
        "opening tags repeated": reps("<query_analysis>Verdict: how-to "),
        "every tag opened, repeated": reps("".join(f"<{t}>Verdict: x" for t in TAGS.values())),
        "closing tags repeated": reps("</query_analysis>"),
        "answer never closed": closed + "<constraints>Verdict: none</constraints>" + reps("<answer>3"),
        "runs of '<'": reps("<"),
        "well-formed, then junk": response(3) + reps("Verdict: x<need>"),
    }


@pytest.mark.parametrize("shape", sorted(_degenerate(64)))
def test_reward_is_linear_on_degenerate_output(shape):
    # 16x the input may cost about 16x the time; a quadratic path costs 256x. The
    # bound leaves room for cache effects and a busy machine. Both sizes run on the
    # same machine, so it does not depend on the machine's speed.
    small, large = _degenerate(64 * 1024)[shape], _degenerate(1024 * 1024)[shape]
    t_small = max(best_time(lambda: compute_score("r", small, 3), repeat=5), 1e-4)
    t_large = best_time(lambda: compute_score("r", large, 3))
    assert compute_score("r", large, 3)["format_ok"] == 0.0
    assert t_large / t_small < 100, f"{shape}: {t_small * 1e3:.1f} ms -> {t_large * 1e3:.1f} ms"


# -- tolerance ---------------------------------------------------------------------------


@pytest.mark.parametrize("line", [
    "Verdict: EXACT", "verdict: exact.", "**Verdict:** **exact**", "VERDICT : 'exact'",
    "Verdict:exact", "Verdict：exact", "结论: exact", "结论：Exact。", "  Verdict:   exact  ",
    "Verdict:\u00a0exact", "结论：\u3000exact", "Verdict: exact\u3000", "Verdict:\u2003exact\u00a0",
])
def test_verdict_tolerance(line):
    text = response(3).replace("Verdict: exact", line)
    out = score(text, 3)
    assert out["format_ok"] == 1.0, out["format_error"]
    assert steps_of(out)[1]["verdict"] == "exact"


@pytest.mark.parametrize("body", [" 3 ", "\n3\n", "3.", "**3**", "'3'", "+3", "\u00a03", "\u30003\u3000"])
def test_answer_tolerance(body):
    out = score(response().replace("<answer>3</answer>", f"<answer>{body}</answer>"))
    assert out["pred"] == 3 and out["score"] == 1.0


def test_negative_label_and_unicode_minus():
    for body in ("-1", " -1 ", "\u22121", "\uff0d1"):
        text = response(-1).replace("<answer>-1</answer>", f"<answer>{body}</answer>")
        assert score(text, "-1")["score"] == 1.0, body


def test_last_verdict_marker_wins():
    text = response(3).replace("Verdict: met", "First thought. Verdict: unmet\nOn reflection:\nVerdict: met")
    assert steps_of(score(text, 3))[2]["verdict"] == "met"


def test_chinese_marker_and_mixed_markers():
    zh = response(2, lang="zh")
    assert "结论:" in zh and "Verdict:" not in zh
    out = score(zh, 2, {"lang": "zh"})
    assert out["score"] == 1.0
    mixed = zh.replace("结论: exact", "Verdict: exact")
    assert score(mixed, 2, {"lang": "zh"})["score"] == 1.0
    # the language does not restrict the marker
    assert score(zh, 2, {"lang": "en"})["score"] == 1.0


def test_extra_text_and_angle_brackets_are_allowed():
    text = response(3)
    text = ("Let me think. <br> a < b\n" + text.replace("A second line.", "price < 100 & x > 2")
            + "\nDone. <eos>")
    out = score(text, 3)
    assert out["format_ok"] == 1.0 and out["score"] == 1.0
    check_spans(text, out)


def test_non_string_solution():
    assert score(b"<answer>3</answer>")["pred"] == 3
    assert score(12345)["format_error"] == "missing_step:query_analysis"


# -- gold ---------------------------------------------------------------------------------


def test_gold_from_label():
    # label 2: subject exact, need met, constraints violated; query_analysis unverifiable
    text = response(2, verdicts={"constraints": "satisfied"}, answer=3)
    out = score(text, 2)
    assert out["format_ok"] == 1.0 and out["score"] == 0.0 and out["pred"] == 3
    assert out["consistent"] == 1.0  # the label follows from the (wrong) verdicts
    assert [s["correct"] for s in steps_of(out)] == [-1, 1, 1, 0]
    assert out["num_verifiable"] == 3 and out["num_correct"] == 2
    assert math.isclose(out["step_acc"], 2 / 3)


def test_gold_unverifiable_steps_for_low_labels():
    out = score(response(-1), -1)
    assert [s["correct"] for s in steps_of(out)] == [-1, 1, -1, -1]
    assert out["num_verifiable"] == 1 and out["step_acc"] == 1.0


@pytest.mark.parametrize("as_json", [True, False])
def test_gold_from_annotations(as_json):
    gold = {"query_analysis": ["place"], "subject_match": None, "need": "met"}
    info = {"step_gold": json.dumps(gold) if as_json else gold}
    text = response(3, verdicts={"query_analysis": "place"})
    out = score(text, 3, info)
    # query_analysis now verifiable, subject_match unverifiable, constraints from the label
    assert [s["correct"] for s in steps_of(out)] == [1, -1, 1, 1]
    assert out["num_verifiable"] == 3
    wrong = score(response(3, verdicts={"query_analysis": "review"}), 3, info)
    assert [s["correct"] for s in steps_of(wrong)] == [0, -1, 1, 1]
    assert wrong["score"] == 1.0  # outcome reward ignores step correctness


def test_gold_annotations_from_parquet_like_values():
    info = {"step_gold": {"query_analysis": np.array(["place", "review"]), "need": None,
                          "subject_match": np.array([], dtype=object)}}
    out = score(response(3, verdicts={"query_analysis": "review"}), 3, info)
    assert [s["correct"] for s in steps_of(out)] == [1, -1, -1, 1]
    for empty in ("", None, float("nan"), "{}"):
        out = score(response(3), 3, {"step_gold": empty})
        assert [s["correct"] for s in steps_of(out)] == [-1, 1, 1, 1]


@pytest.mark.parametrize("bad", [
    "{not json", "[1, 2]", json.dumps({"nope": ["x"]}), json.dumps({"need": ["maybe"]}),
    json.dumps({"nope": None}), 42,
])
def test_bad_step_gold_raises(bad):
    with pytest.raises(ValueError):
        score(response(3), 3, {"step_gold": bad})


@pytest.mark.parametrize("gt,label", [(3, 3), ("3", 3), (" -1 ", -1), (np.int64(2), 2),
                                      ("2.0", 2), (0.0, 0), (np.str_("1"), 1)])
def test_ground_truth_forms(gt, label):
    out = score(response(label), gt)
    assert out["acc"] == 1.0 and out["score"] == 1.0


@pytest.mark.parametrize("gt", ["high", 7, "", None, 2.5])
def test_bad_ground_truth_raises(gt):
    with pytest.raises(ValueError, match="ground_truth"):
        score(response(3), gt)


@pytest.mark.parametrize("gt", [True, False, np.bool_(True)])
def test_bool_ground_truth_is_not_a_label(gt):
    with pytest.raises(ValueError, match="ground_truth .*bool"):
        score(response(1), gt)


def _nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("step_gold", [
    "[" * 100_000 + "]" * 100_000,
    '{"need": ' + "[" * 100_000 + "]" * 100_000 + "}",
    {"need": _nested(100_000)},
], ids=["json-array", "json-object", "mapping"])
def test_deeply_nested_step_gold_is_a_value_error(step_gold):
    with pytest.raises(ValueError, match="step_gold|annotation"):
        score(response(3), 3, {"step_gold": step_gold})


@pytest.mark.parametrize("extra_info", ['{"criteria": "free_form"}', ["criteria"], 5, b"{}"])
def test_extra_info_of_the_wrong_type_raises(extra_info):
    with pytest.raises(ValueError, match="extra_info must be a mapping"):
        score(response(3), 3, extra_info)


@pytest.mark.parametrize("criteria", [5, ["free_form"], {"name": "x"}, True])
def test_criteria_of_the_wrong_type_raises(criteria):
    with pytest.raises(ValueError, match=r"extra_info\['criteria'\] must be a criteria name"):
        score(response(3), 3, {"criteria": criteria})
    with pytest.raises(ValueError, match="reward kwarg criteria must be a criteria name"):
        score(response(3), 3, criteria=criteria)


def test_missing_or_empty_criteria_is_the_default():
    for info in (None, {}, {"criteria": None}, {"criteria": ""}):
        assert score(response(3), 3, info)["score"] == 1.0


# -- variants and config --------------------------------------------------------------------


def test_outcome_variant():
    assert score(response(3), 3)["score"] == 1.0
    assert score(response(2), 3)["score"] == 0.0
    assert score(response(3)[:-5], 3)["score"] == 0.0
    assert compute_score_outcome("r", response(3), 3)["score"] == 1.0


def test_ordinal_variant():
    for fn, kw in ((compute_score, {"variant": "ordinal"}), (compute_score_ordinal, {})):
        assert fn("r", response(3), 3, None, **kw)["score"] == 1.0
        assert fn("r", response(2), 3, None, **kw)["score"] == 0.5
        assert fn("r", response(1), 3, None, **kw)["score"] == 0.0
        assert fn("r", response(-1), 0, None, **kw)["score"] == 0.5
        # partial credit still requires a well-formed response
        assert fn("r", response(2).replace("</need>", ""), 3, None, **kw)["score"] == 0.0
    assert score(response(2), 3, variant="ordinal", ordinal_lambda=0.2)["score"] == 0.2
    assert score(response(2), 3, variant="ordinal", ordinal_lambda="0")["score"] == 0.0


def test_format_penalty_variant():
    malformed = response(3).replace("</need>", "")
    for fn, kw in ((compute_score, {"variant": "format_penalty"}), (compute_score_format_penalty, {})):
        assert fn("r", response(3), 3, None, **kw)["score"] == 1.0
        assert fn("r", response(2), 3, None, **kw)["score"] == 0.0
        assert fn("r", malformed, 3, None, **kw)["score"] == -1.0
        assert fn("r", "", 3, None, **kw)["score"] == -1.0
    out = score(malformed, 3, variant="format_penalty", format_penalty=-0.25)
    assert out["score"] == -0.25 and out["acc"] == 1.0


def test_config_errors():
    with pytest.raises(ValueError, match="outcome.*ordinal.*format_penalty"):
        score(response(), 3, variant="stepwise")
    with pytest.raises(ValueError, match="ordinal_lamda"):
        score(response(), 3, variant="ordinal", ordinal_lamda=0.3)
    with pytest.raises(ValueError, match="ordinal_lambda"):
        score(response(), 3, variant="ordinal", ordinal_lambda=1.5)
    with pytest.raises(ValueError, match="ordinal_lambda"):
        score(response(), 3, variant="ordinal", ordinal_lambda="half")
    with pytest.raises(ValueError, match="format_penalty"):
        score(response(), 3, variant="format_penalty", format_penalty=0.5)
    for bad in (-math.inf, math.nan, "-inf", True):
        with pytest.raises(ValueError, match="format_penalty"):
            score(response(), 3, variant="format_penalty", format_penalty=bad)
    for bad in (math.inf, math.nan, False):
        with pytest.raises(ValueError, match="ordinal_lambda"):
            score(response(), 3, variant="ordinal", ordinal_lambda=bad)
    with pytest.raises(ValueError, match="fixes variant"):
        compute_score_ordinal("r", response(), 3, None, variant="outcome")
    with pytest.raises(ValueError, match="criteria"):
        score(response(), 3, criteria="no_such_criteria")


def test_verl_passthrough_kwargs_are_ignored():
    out = score(response(), 3, reward_router_address="127.0.0.1:1", reward_model_tokenizer=object())
    assert out["score"] == 1.0


def test_score_range():
    assert reward.make_config().score_range() == (0.0, 1.0)
    assert reward.make_config(variant="ordinal").score_range() == (0.0, 1.0)
    assert reward.make_config(variant="format_penalty", format_penalty=-2).score_range() == (-2.0, 1.0)


# -- criteria selection and free form -----------------------------------------------------------


def test_criteria_from_kwargs_beats_extra_info():
    text = "<think>hmm</think>\n<answer>2</answer>"
    assert score(text, 2, {"criteria": "free_form"})["score"] == 1.0
    assert score(text, 2, {"criteria": "free_form"}, criteria="default")["format_error"] == \
        "missing_step:query_analysis"
    assert score(text, 2, {}, criteria="free_form")["score"] == 1.0
    assert score(response(2), 2, {"criteria": ""})["score"] == 1.0  # empty -> default


FREE_FORM = {
    "": "<think>\nreasoning\n</think>\n<answer>2</answer>",
    "no think": "<answer> 2 </answer>",
    "repeated_tag:think": "<think>a</think><think>b</think><answer>2</answer>",
    "unclosed_tag:think": "<think>a <answer>2</answer>",
    "steps_out_of_order": "<answer>2</answer><think>later</think>",
    "no_answer": "<think>a</think> 2",
    "answer_not_a_label": "<think>a</think><answer>two</answer>",
    "repeated_tag:answer": "<answer>2</answer><answer>3</answer>",
    "empty": " ",
}


@pytest.mark.parametrize("case", sorted(FREE_FORM))
def test_free_form(case):
    text = FREE_FORM[case]
    out = score(text, 2, {"criteria": "free_form"})
    expected = "" if case in ("", "no think") else case
    assert out["format_error"] == expected
    assert out["score"] == (1.0 if not expected else 0.0)
    doc = json.loads(out["steps"])
    assert doc["steps"] == [] and out["num_steps"] == 0
    assert out["step_acc"] == -1.0 and out["num_verifiable"] == 0 and out["consistent"] == -1.0
    if doc["answer"]["start"] >= 0:
        assert text[doc["answer"]["start"]:doc["answer"]["end"]].startswith("<answer>")
    parser = get_parser("free_form")
    assert parser.parse(text) == parser.parse_slow(text)


def test_custom_criteria_file(tmp_path):
    """A new criteria file changes tags, markers and labels without code changes."""
    import yaml

    raw = {
        "name": "tiny", "format": "stepwise",
        "labels": [{"value": 0, "name": "no"}, {"value": 5, "name": "some"},
                   {"value": 10, "name": "yes"}],
        "verdict_marker": "Decision:", "verdict_marker_zh": "判断:",
        "steps": [
            {"name": "topic", "tag": "topic-check", "question": "Same topic?",
             "verdicts": ["Yes", "No"], "gold_from_label": {"0": "No", "5": "Yes", "10": "Yes"}},
        ],
        "answer": {"tag": "level"},
        "prompt": {"en": {"system": "", "user": "{query} {title} {content}"}},
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    text = "<topic-check>\nabout it\nDecision: yes\n</topic-check>\n<level>10</level>"
    out = compute_score("r", text, "10", None, criteria=str(path))
    assert out["score"] == 1.0 and steps_of(out) == [
        {"name": "topic", "verdict": "Yes", "correct": 1, "start": 0, "end": text.index("\n<level>")}]
    assert out["consistent"] == -1.0  # no label rules in this file
    # ordinal credit counts ranks (5 is next to 10), not value differences
    text5 = text.replace("<level>10</level>", "<level>5</level>")
    assert compute_score("r", text5, 10, None, criteria=str(path), variant="ordinal")["score"] == 0.5
    text0 = text.replace("<level>10</level>", "<level>0</level>")
    assert compute_score("r", text0, 10, None, criteria=str(path), variant="ordinal")["score"] == 0.0


# -- verl's loading of the function ----------------------------------------------------------------


@pytest.mark.parametrize("path,name", [
    ("pkg://reward", "compute_score"),
    ("pkg://reward", "compute_score_ordinal"),
    (reward.__file__, "compute_score"),  # <checkout>/reward/__init__.py
])
def test_verl_custom_reward_function_loading(path, name):
    from omegaconf import OmegaConf
    from verl.trainer.ppo.reward import get_custom_reward_fn

    cfg = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": path, "name": name,
        "reward_kwargs": {"variant": "ordinal", "ordinal_lambda": 0.25}}}})
    fn = get_custom_reward_fn(cfg)
    out = fn(data_source="r", solution_str=response(2), ground_truth="3", extra_info={})
    assert out["score"] == 0.25
