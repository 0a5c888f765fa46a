"""The paper-shaped criteria: its steps, warm-up traces, the reward reading them, and SAM's
`paper` variant on responses written in it (the authors' cases, through the real parser)."""

from __future__ import annotations

import argparse
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from data_prep.benchmark import BenchmarkConfig, add_benchmark_args, generate_benchmark, run_benchmark_cli
from data_prep.criteria import load_criteria
from data_prep.prompt import format_response, render_prompt
from data_prep.traces import build_trace
from reward import compute_score
from sam_advantage.core import compute_sam_advantage_and_keep
from sam_advantage.reward_manager import step_fields
from sam_advantage.token_spans import spans_to_token_ranges, step_ids_from_ranges
from sam_advantage.trainer import step_data_from_infos

CRIT = load_criteria("paper")
LABEL_STEPS = ("initial_label", "calibration")
SMALL = dict(train_size=300, val_size=20, test_random_size=20, test_longtail_size=40, sft_size=300,
             progress=False)


@pytest.fixture(scope="module", params=["en", "zh"])
def rows(request):
    return generate_benchmark(BenchmarkConfig(seed=3, lang=request.param, criteria="paper", **SMALL))["train"]


def test_criteria_has_the_papers_step_layout():
    assert CRIT.step_names == ("query_analysis", "coverage", "category_match", "keyword_hits", *LABEL_STEPS)
    for name in LABEL_STEPS:  # a label step's verdict is a label, and its gold is the gold label
        step = CRIT.step(name)
        assert step.verdicts == tuple(str(v) for v in sorted(CRIT.label_values))
        for label in CRIT.label_values:
            assert CRIT.gold_steps(label)[name] == [str(label)]
    assert CRIT.gold_steps(2)["keyword_hits"] is None  # a keyword hit alone proves nothing
    for lang in ("en", "zh"):
        text = render_prompt("q", "t", "c", criteria="paper", lang=lang)[-1]["content"]
        assert all(f"<{s.tag}>" in text for s in CRIT.steps)


def test_traces_parse_back_with_every_checkable_step_right_but_a_repaired_initial_label(rows):
    traced = [r for r in rows if r["reasoning"]]
    assert {r["case"] for r in traced} >= {"exact_match", "constraint_violated", "sibling", "keyword_collision"}
    for r in traced:
        res = compute_score("grm_relevance", r["reasoning"], r["label"], {"criteria": "paper"})
        assert res["score"] == 1.0 and res["consistent"] == 1.0, (r["id"], res)
        steps = {s["name"]: s for s in json.loads(res["steps"])["steps"]}
        assert steps["calibration"]["verdict"] == str(r["label"]) and steps["calibration"]["correct"] == 1
        # the initial label comes from subject and need alone: it differs exactly where a
        # constraint is violated (3 before the rules, 2 after), and the calibration repairs it
        repaired = r["case"] == "constraint_violated"
        assert steps["initial_label"]["verdict"] == ("3" if repaired else str(r["label"])), r["id"]
        assert steps["initial_label"]["correct"] == (0 if repaired else 1)
        assert all(s["correct"] in (1, -1) for n, s in steps.items() if n != "initial_label")
        if r["lang"] == "zh":
            assert re.search(r"[\u4e00-\u9fff]", r["reasoning"])


def test_benchmark_cli_writes_paper_data(tmp_path):
    args = add_benchmark_args(argparse.ArgumentParser()).parse_args(
        ["--out", str(tmp_path), "--criteria", "paper", "--train-size", "60", "--val-size", "10",
         "--test-random-size", "10", "--test-longtail-size", "20", "--sft-size", "12", "--no-progress"])
    assert run_benchmark_cli(args) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows_rejected"] == 0 and summary["sft_splits"]["train"] == 12
    train = pd.read_parquet(tmp_path / "train.parquet")
    assert "<initial_label>" in train["prompt"][0][-1]["content"]
    sft = pd.read_parquet(tmp_path / "sft_train.parquet")
    assert all("<calibration>" in m[-1]["content"] for m in sft["messages"])


def respond(initial: str, calibrated: str, final: int) -> str:
    texts = {"query_analysis": ("The user wants a review.", "review"), "coverage": ("All of it.", "most"),
             "category_match": ("Both are hotels.", "same"), "keyword_hits": ("The name appears.", "hit"),
             "initial_label": ("Subject and need match.", initial),
             "calibration": ("The rules change nothing.", calibrated)}
    return format_response(texts, final, CRIT)


def masked_steps(responses: list[str], gold: int, variant: str = "paper", malformed_unmasked: bool = True):
    """Score with the reward, map its spans to tokens (one per character), run SAM; masked steps per response."""
    scored = [compute_score("grm_relevance", text, gold, {"criteria": "paper"}) for text in responses]
    infos, ranges = [], []
    for text, res in zip(responses, scored):
        spans, correct = step_fields(res["steps"])
        offsets = np.array([[i, i + 1] for i in range(len(text))])
        token_ranges = spans_to_token_ranges(offsets, spans)
        ranges.append(token_ranges)
        infos.append({**res, "sam_token_ranges": json.dumps(token_ranges), "sam_step_correct": json.dumps(correct)})
    data = step_data_from_infos(infos, unmask_malformed=malformed_unmasked)
    length = max(map(len, responses))
    mask = torch.tensor([[1.0] * len(t) + [0.0] * (length - len(t)) for t in responses])
    rewards = torch.zeros_like(mask)
    for i, (text, res) in enumerate(zip(responses, scored)):
        rewards[i, len(text) - 1] = res["score"]
    step_ids = step_ids_from_ranges(ranges, length)
    index = np.array(["g"] * len(responses), dtype=object)
    adv, scalars, keep = compute_sam_advantage_and_keep(rewards, mask, index, step_ids, data.step_correct, variant)
    out = []
    for i in range(len(responses)):
        outside = (step_ids[i] == -1) & (mask[i] > 0)
        assert torch.all(adv[i][outside] == scalars[i])  # outside the steps: A_i
        out.append([name for name, kept in zip(CRIT.step_names, keep[i].tolist()) if not kept])
    return out, scalars


@pytest.mark.parametrize("initial, calibrated, final, masked", [
    ("1", "2", 2, []),                                # initial wrong, calibration right, final right
    ("2", "2", 2, []),                                # all right
    ("2", "1", 2, ["calibration"]),                   # the calibration went wrong, the final label right
    ("1", "3", 2, ["initial_label", "calibration"]),  # both label steps wrong, the final right
    ("2", "2", 3, ["coverage", "category_match", "initial_label", "calibration"]),  # final wrong
    ("3", "2", 1, ["coverage", "category_match", "calibration"]),
    ("3", "3", 3, ["coverage", "category_match"]),
])
def test_authors_cases_on_parsed_responses(initial, calibrated, final, masked):
    # gold 2; a second, differently judged response in the group gives the first a signed advantage
    other = respond("2", "2", 2) if final != 2 else respond("3", "3", 3)
    got, scalars = masked_steps([respond(initial, calibrated, final), other], gold=2)
    assert (scalars[0] > 0) == (final == 2)
    assert got[0] == masked


def test_malformed_response_is_not_masked_under_paper_only():
    wrong = respond("2", "2", 3)
    malformed = wrong.replace("</keyword_hits>", "")  # right label steps, but malformed
    right = respond("2", "2", 2)
    got, scalars = masked_steps([malformed, right], gold=2)
    assert scalars[0] < 0 and got[0] == []
    got, _ = masked_steps([malformed, right], gold=2, variant="symmetric", malformed_unmasked=False)
    assert "initial_label" in got[0]  # our reading masks the malformed response's right steps
