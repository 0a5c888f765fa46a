"""Property tests: no model output makes the reward raise or break its contract."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_prep.criteria import load_criteria
from data_prep.prompt import format_response
from reward import RESULT_KEYS, compute_score, get_parser, make_config

CRITERIA = {name: load_criteria(name) for name in ("default", "free_form")}
TYPES = {"score": float, "acc": float, "pred": int, "format_ok": float, "format_error": str,
         "num_steps": int, "step_acc": float, "num_verifiable": int, "num_correct": int,
         "consistent": float, "steps": str}
VARIANT_KWARGS = [{}, {"variant": "ordinal"}, {"variant": "ordinal", "ordinal_lambda": 0.3},
                  {"variant": "format_penalty"}, {"variant": "format_penalty", "format_penalty": -0.5}]

# Pieces that make random text hit the parser's edge cases often.
_D = CRITERIA["default"]
TOKENS = (
    [f"<{s.tag}>" for s in _D.steps] + [f"</{s.tag}>" for s in _D.steps]
    + ["<answer>", "</answer>", "<think>", "</think>", "<Need>", "<", ">", "</", "\n", " ", "\t"]
    + ["Verdict:", "verdict :", "结论:", "结论：", "**Verdict:**", "Verdict"]
    + [v for s in _D.steps for v in s.verdicts] + ["-1", "0", "1", "2", "3", "7", "−1", "n/a"]
    + ["🙂", "长", "\x00", "\r\n", "İ", "ß"]
)
token_text = st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=12)), max_size=60).map("".join)


@st.composite
def valid_responses(draw, criteria_name: str):
    crit = CRITERIA[criteria_name]
    label = draw(st.sampled_from(crit.label_values))
    lang = draw(st.sampled_from(["en", "zh"]))
    words = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
    steps = {s.name: (draw(words), draw(st.sampled_from(s.verdicts))) for s in crit.steps}
    reasoning = draw(words) if crit.format == "free_form" else None
    return format_response(steps, label, crit, lang=lang, reasoning=reasoning), label


@st.composite
def mutated(draw, criteria_name: str):
    text, label = draw(valid_responses(criteria_name))
    for _ in range(draw(st.integers(0, 4))):
        n = len(text)
        i = draw(st.integers(0, n))
        j = draw(st.integers(i, n))
        op = draw(st.sampled_from(["delete", "duplicate", "insert", "truncate", "swap", "upper"]))
        if op == "delete":
            text = text[:i] + text[j:]
        elif op == "duplicate":
            text = text[:j] + text[i:j] + text[j:]
        elif op == "insert":
            text = text[:i] + draw(st.sampled_from(TOKENS) | st.text(max_size=8)) + text[i:]
        elif op == "truncate":
            text = text[:i]
        elif op == "swap":
            k = draw(st.integers(j, n))
            text = text[:i] + text[j:k] + text[i:j] + text[k:]
        else:
            text = text[:i] + text[i:j].upper() + text[j:]
    return text, label


def check_contract(text, label, criteria_name: str, extra_info=None) -> None:
    crit = CRITERIA[criteria_name]
    parser = get_parser(criteria_name)
    info = {"criteria": criteria_name, **(extra_info or {})}
    outs = []
    for kw in VARIANT_KWARGS:
        out = compute_score("rel", text, label, info, **kw)
        assert tuple(out) == RESULT_KEYS
        assert all(type(out[k]) is t for k, t in TYPES.items()), out
        lo, hi = make_config(**kw).score_range()
        assert lo <= out["score"] <= hi
        outs.append(out)
    out = outs[0]
    # the variants differ only in the score
    assert all({k: v for k, v in o.items() if k != "score"} == {k: v for k, v in out.items() if k != "score"}
               for o in outs)
    assert (out["format_ok"] == 1.0) == (out["format_error"] == "")
    assert out["score"] in (0.0, 1.0) and out["acc"] in (0.0, 1.0)
    assert out["pred"] == -99 or out["pred"] in crit.label_values
    if out["format_ok"]:
        assert out["num_steps"] == len(crit.steps) and out["pred"] != -99
    assert out["step_acc"] == -1.0 or 0.0 <= out["step_acc"] <= 1.0

    doc = json.loads(out["steps"])
    assert [s["name"] for s in doc["steps"]] == list(crit.step_names)
    spans = []
    for item, step in zip(doc["steps"], crit.steps):
        assert item["correct"] in (-1, 0, 1)
        assert item["verdict"] is None or item["verdict"] in step.verdicts
        if item["start"] < 0:
            assert item["end"] == -1 and item["correct"] == -1
            continue
        piece = text[item["start"]:item["end"]]
        assert piece.startswith(f"<{step.tag}>") and piece.endswith(f"</{step.tag}>")
        spans.append((item["start"], item["end"]))
    assert out["num_steps"] == len(spans)
    ans = doc["answer"]
    if ans["start"] >= 0:
        piece = text[ans["start"]:ans["end"]]
        assert piece.startswith(f"<{crit.answer_tag}>") and piece.endswith(f"</{crit.answer_tag}>")
        spans.append((ans["start"], ans["end"]))
    spans.sort()
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:]))
    # the one-regex fast path and the tag-by-tag path agree
    if isinstance(text, str):
        assert parser.parse(text) == parser.parse_slow(text)


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(text=token_text, label=st.sampled_from([-1, 0, 1, 2, 3]),
       criteria_name=st.sampled_from(["default", "free_form"]))
def test_random_text(text, label, criteria_name):
    check_contract(text, label, criteria_name)


@SETTINGS
@given(case=mutated("default"))
def test_mutated_stepwise_responses(case):
    check_contract(*case, "default")


@SETTINGS
@given(case=mutated("free_form"))
def test_mutated_free_form_responses(case):
    check_contract(*case, "free_form")


@settings(max_examples=100, deadline=None)
@given(case=valid_responses("default"))
def test_valid_responses_are_well_formed(case):
    text, label = case
    out = compute_score("rel", text, label, {})
    # random step text may itself contain "<answer>" and the like; otherwise well-formed
    if out["format_ok"] == 1.0:
        assert out["score"] == 1.0 and out["pred"] == label
    check_contract(text, label, "default")


@settings(max_examples=100, deadline=None)
@given(text=st.one_of(st.none(), st.binary(max_size=50), st.integers(), st.text(max_size=50)),
       step_gold=st.sampled_from([None, "", "{}", '{"need": null}', '{"query_analysis": ["place"]}']))
def test_odd_inputs(text, step_gold):
    out = compute_score("rel", text, "2", {"step_gold": step_gold})
    assert tuple(out) == RESULT_KEYS
