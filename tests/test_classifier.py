"""recipes.classifier: the discriminative baseline, from gold labels to a one-pass score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    subprocess.run([sys.executable, "-m", "data_prep", "benchmark", "--out", str(out), "--seed", "3",
                    "--train-size", "40", "--val-size", "5", "--test-random-size", "12", "--test-longtail-size", "5",
                    "--sft-size", "5", "--rank-queries", "0", "--criteria", "compact", "--no-progress"],
                   cwd=REPO, check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def trained(bench, tmp_path_factory):
    """The 40 training pairs seen 10 times each: a head that has memorised most of them."""
    out = tmp_path_factory.mktemp("clf")
    run = subprocess.run([sys.executable, "-m", "recipes.classifier", "--model", "tiny", "--data", str(bench),
                          "--out", str(out), "--steps", "100", "--batch-size", "4", "--seed", "1", "--lr", "1e-2",
                          "--no-progress", "--threads", "1"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    return out


def test_summary_counts_the_gold_pairs_it_saw(trained):
    summary = json.loads((trained / "summary.json").read_text())
    assert summary["distinct_pairs_seen"] == 40  # 400 draws cycle through the 40-row split
    assert summary["label_draws"] == {str(v): 80 for v in (3, 2, 1, 0, -1)}  # the split is label-balanced
    config = json.loads((trained / "hf" / "config.json").read_text())
    assert config["architectures"][0].endswith("ForSequenceClassification")
    assert config["id2label"] == {"0": "3", "1": "2", "2": "1", "3": "0", "4": "-1"}


def test_scorer_reads_the_head_and_batching_does_not_change_it(trained, bench):
    from evaluation.generation import render_prompts
    from evaluation.label_scorer import ClassifierHeadScorer, load_scorer
    from evaluation.scoring import load_rows

    scorer = load_scorer(str(trained / "hf"), device="cpu", batch_size=5)
    assert isinstance(scorer, ClassifierHeadScorer)
    rows = load_rows(bench / "test_random.parquet")
    prompts = render_prompts(scorer.tokenizer, [r["prompt"] for r in rows])
    assert len({len(p) for p in prompts}) > 1  # left padding is exercised
    batched = scorer.score(prompts)
    assert scorer._prefix is not None and len(scorer._prefix) >= 50  # the shared prefix ran from its cache
    for ids, got in zip(prompts, batched):  # each prompt alone, no padding, no cache
        with torch.inference_mode():
            logits = scorer.model(input_ids=torch.tensor([ids])).logits[0].float()
        probs = torch.softmax(logits, -1)
        assert got.label == scorer.labels[int(probs.argmax())]
        assert [got.probs[v] for v in scorer.labels] == pytest.approx(probs.tolist(), abs=1e-5)
        assert got.expected == pytest.approx(float(probs @ torch.tensor(scorer.labels, dtype=torch.float)), abs=1e-5)


def test_evaluation_scores_the_classifier_on_its_training_pairs(trained, bench, tmp_path):
    """Trained to memorise its pairs, the head must get most of them right: the labels reach the loss."""
    from evaluation import evaluate

    metrics = evaluate(str(trained / "hf"), bench / "train.parquet", tmp_path / "eval", mode="score",
                       device="cpu", batch_size=8, progress=False)
    assert metrics["mode"] == "score" and metrics["backend"] == "classification_head"
    assert metrics["accuracy"] >= 0.6, metrics["accuracy"]  # chance is 0.2
    record = json.loads((tmp_path / "eval" / "predictions.jsonl").open().readline())
    assert sum(record["probs"].values()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("args, message", [
    (["--data", "/no/such/folder"], "no such"),
    (["--model", "/no/such/model"], "unknown model"),
    (["--steps", "0"], "must be >= 1"),
    (["--lr", "-1"], "positive finite"),
])
def test_user_errors_are_one_line(bench, tmp_path, args, message):
    base = {"--model": "tiny", "--data": str(bench), "--out": str(tmp_path / "out")}
    for flag, value in zip(args[::2], args[1::2]):
        base[flag] = value
    run = subprocess.run([sys.executable, "-m", "recipes.classifier", *sum(base.items(), ()), "--no-progress"],
                         cwd=REPO, capture_output=True, text=True)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out" / "summary.json").exists()
