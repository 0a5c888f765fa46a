"""evaluation: metric functions against hand computations, scoring of known responses,
the evaluator end to end on the tiny model, and the training-curve plot."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub from these tests

from PIL import Image

from data_prep.benchmark import BenchmarkConfig, generate_benchmark
from data_prep.traces import build_trace
from data_prep.writer import write_splits
from evaluation import (
    accuracy,
    classification_report,
    confusion_matrix,
    evaluate,
    evaluate_responses,
    macro_f1,
    per_class,
    per_step_accuracy,
    plot_training_curves,
    step_accuracy,
)
from evaluation.__main__ import main as eval_main
from evaluation.curves import main as curves_main
from evaluation.scoring import NO_LABEL, parse_direct_label
from model_zoo import resolve_model

REPORT_FILES = ("metrics.json", "summary.md", "predictions.jsonl", "confusion_matrix.png")


def _valid_png(path: Path) -> tuple[int, int]:
    with Image.open(path) as img:
        img.verify()  # raises on a truncated or corrupt file
    with Image.open(path) as img:
        assert img.format == "PNG"
        return img.size


# -- metrics vs hand computation ------------------------------------------------------------

# gold, pred; None and -99 are unreadable predictions.
HAND = [(3, 3), (3, 2), (2, 2), (1, None), (0, 0), (-1, -1), (-1, -99), (2, 1), (0, 3)]


def test_metrics_match_hand_computation():
    golds, preds = [g for g, _ in HAND], [p for _, p in HAND]
    assert accuracy(golds, preds) == pytest.approx(4 / 9)  # unreadable counts as wrong
    matrix = confusion_matrix(golds, preds)
    #                 3  2  1  0 -1 none
    assert matrix == [[1, 1, 0, 0, 0, 0],   # gold 3
                      [0, 1, 1, 0, 0, 0],   # gold 2
                      [0, 0, 0, 0, 0, 1],   # gold 1
                      [1, 0, 0, 1, 0, 0],   # gold 0
                      [0, 0, 0, 0, 1, 1]]   # gold -1
    classes = per_class(matrix)
    expected = {  # label: precision, recall, f1, support, predicted
        3: (1 / 2, 1 / 2, 1 / 2, 2, 2),
        2: (1 / 2, 1 / 2, 1 / 2, 2, 2),
        1: (0.0, 0.0, 0.0, 1, 1),
        0: (1.0, 1 / 2, 2 / 3, 2, 1),
        -1: (1.0, 1 / 2, 2 / 3, 2, 1),  # the unreadable prediction is a miss for recall only
    }
    for label, (p, r, f, support, predicted) in expected.items():
        c = classes[label]
        assert (c["precision"], c["recall"], c["f1"]) == pytest.approx((p, r, f)), label
        assert (c["support"], c["predicted"]) == (support, predicted), label
    assert macro_f1(matrix) == pytest.approx((1 / 2 + 1 / 2 + 0 + 2 / 3 + 2 / 3) / 5)  # 7/15

    report = classification_report(golds, preds)
    assert report["accuracy"] == pytest.approx(4 / 9)
    assert report["macro_f1"] == pytest.approx(7 / 15)
    assert report["no_label_rate"] == pytest.approx(2 / 9)
    assert report["confusion_matrix"]["columns"] == ["3", "2", "1", "0", "-1", "none"]
    assert report["per_class"]["0"]["f1"] == pytest.approx(2 / 3)


def test_macro_f1_averages_the_classes_that_occur():
    # Class 3: P = 1, R = 1/2, F1 = 2/3. Class 2: predicted once, never gold: F1 = 0.
    # Classes 1, 0, -1 occur nowhere and have no F1.
    matrix = confusion_matrix([3, 3], [3, 2])
    assert macro_f1(matrix) == pytest.approx((2 / 3 + 0) / 2)
    assert macro_f1(confusion_matrix([], [])) == 0.0
    assert accuracy([], []) == 0.0


def test_metric_inputs_are_checked():
    with pytest.raises(ValueError, match="2 gold labels but 1"):
        accuracy([3, 2], [3])
    with pytest.raises(ValueError, match="not one of"):
        confusion_matrix([7], [3])
    # A prediction outside the labels is unreadable, not an error.
    assert confusion_matrix([3], [7])[0] == [0, 0, 0, 0, 0, 1]


def test_step_accuracy_sums_before_dividing():
    # 3/4 and 0/1 average to 0.375 per response, but the batch rate is 3/5.
    assert step_accuracy([3, 0], [4, 1]) == pytest.approx(3 / 5)
    assert step_accuracy([0, 0], [0, 0]) is None
    steps = per_step_accuracy([
        [("subject_match", True, True), ("need", True, False), ("constraints", False, False)],
        [("subject_match", True, True), ("need", True, True), ("constraints", True, False)],
    ])
    assert list(steps) == ["subject_match", "need", "constraints"]
    assert steps["subject_match"] == {"correct": 2, "verifiable": 2, "acc": 1.0}
    assert steps["need"] == {"correct": 1, "verifiable": 2, "acc": 0.5}
    assert steps["constraints"] == {"correct": 0, "verifiable": 1, "acc": 0.0}


@pytest.mark.parametrize("text, label", [
    ("<answer>3</answer>", 3), ("<answer> -1 </answer>", -1), ("<answer>2", 2),  # cut off by the limit
    ("3", 3), ("-1.", -1), ("**0**", 0), ("2 (mostly relevant)", 2),
    ("<think>x</think><answer>1</answer>", 1), ("", None), ("relevant", None),
    ("<answer>7</answer>", None), ("<answer>high</answer> 3", None),
])
def test_parse_direct_label(text, label):
    assert parse_direct_label(text, frozenset({3, 2, 1, 0, -1})) == label


# -- scoring known responses ------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A small benchmark: raw rows and the verl parquet files written from them."""
    splits = generate_benchmark(BenchmarkConfig(seed=3, train_size=10, val_size=10, test_random_size=10,
                                                test_longtail_size=10, sft_size=0, progress=False))
    out = tmp_path_factory.mktemp("bench")
    summary = write_splits(splits, out)
    assert summary["rows_rejected"] == 0  # parquet row i is raw row i
    return splits, out


def _predictions(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]


def test_gold_traces_score_perfectly(bench, tmp_path):
    splits, data = bench
    rows = splits["val"]
    m = evaluate_responses(data / "val.parquet", [build_trace(r) for r in rows], tmp_path)
    assert m["n"] == len(rows) == 10
    assert m["accuracy"] == m["macro_f1"] == m["step_accuracy"] == m["mean_reward"] == 1.0
    assert m["implied_accuracy"] == 1.0
    assert m["format_error_rate"] == 0.0 and m["format_errors"] == {}
    assert all(s["acc"] == 1.0 for s in m["per_step_accuracy"].values())
    assert sum(s["verifiable"] for s in m["per_step_accuracy"].values()) == \
        sum(r["num_verifiable"] for r in _predictions(tmp_path))
    assert {f for f in REPORT_FILES} <= {p.name for p in tmp_path.iterdir()}


def test_wrong_answers_and_broken_responses(bench, tmp_path):
    splits, data = bench
    rows = splits["val"][:4]
    traces = [build_trace(r) for r in rows]
    wrong = -1 if rows[1]["label"] != -1 else 3
    responses = [
        traces[0],                                                              # right
        traces[1].replace(f"<answer>{rows[1]['label']}</answer>", f"<answer>{wrong}</answer>"),
        traces[2].split("<answer>")[0],                                         # no answer
        "",                                                                     # empty
    ]
    m = evaluate_responses(data / "val.parquet", responses, tmp_path)
    preds = _predictions(tmp_path)
    assert [p["pred"] for p in preds] == [rows[0]["label"], wrong, None, None]
    assert [p["correct"] for p in preds] == [True, False, False, False]
    assert m["accuracy"] == pytest.approx(1 / 4)
    # the right steps of the wrong answer imply the gold label; so may the answerless trace's steps
    assert m["implied_accuracy"] == pytest.approx(3 / 4)
    assert m["format_error_rate"] == pytest.approx(2 / 4)
    assert m["format_errors"] == {"empty": 1, "no_answer": 1}
    assert m["no_label_rate"] == pytest.approx(2 / 4)
    # The steps of the wrong-answer trace are still right: only the label was changed.
    assert preds[1]["num_correct"] == preds[1]["num_verifiable"] > 0
    assert preds[3]["num_correct"] == 0 and preds[3]["num_verifiable"] > 0

    # A student's direct labels: tagged, bare, and unreadable.
    labels = [r["label"] for r in rows]
    student = [f"<answer>{labels[0]}</answer>", str(labels[1]), "unsure", ""]
    m = evaluate_responses(data / "val.parquet", student, tmp_path / "cls", mode="classify")
    preds = _predictions(tmp_path / "cls")
    assert [p["pred"] for p in preds] == [labels[0], labels[1], None, None]
    assert [p["format_error"] for p in preds] == ["", "", NO_LABEL, NO_LABEL]
    assert m["accuracy"] == m["mean_reward"] == pytest.approx(2 / 4)
    assert m["step_accuracy"] is None and m["per_step_accuracy"] == {} and m["implied_accuracy"] is None


# -- the evaluator end to end on the tiny model -------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    # One thread: on a busy shared CPU, more threads than free cores make
    # generation many times slower (they wait on each other), not faster.
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield resolve_model("tiny")
    torch.set_num_threads(threads)


def test_evaluate_tiny_model_end_to_end(bench, tiny, tmp_path):
    _, data = bench
    m = evaluate(tiny, data / "val.parquet", tmp_path, max_examples=8, batch_size=4, max_new_tokens=16,
                 backend="hf", device="cpu", progress=False)
    for name in REPORT_FILES:
        assert (tmp_path / name).is_file(), name
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk["accuracy"] == m["accuracy"] and on_disk["n"] == m["n"] == 8
    assert (m["backend"], m["device"], m["mode"]) == ("hf", "cpu", "generate")
    assert m["model"] == str(tiny) and m["data"] == str(data / "val.parquet")

    preds = _predictions(tmp_path)
    assert len(preds) == 8
    assert all(0 < p["num_tokens"] <= 16 for p in preds)
    matrix = m["confusion_matrix"]["matrix"]
    assert sum(map(sum, matrix)) == 8 and len(matrix) == 5 and all(len(r) == 6 for r in matrix)
    assert m["format_error_rate"] == pytest.approx(1 - sum(p["format_ok"] for p in preds) / 8)
    assert m["accuracy"] == pytest.approx(sum(p["correct"] for p in preds) / 8)
    assert m["mean_reward"] == pytest.approx(sum(p["score"] for p in preds) / 8)
    assert sum(m["format_errors"].values()) == sum(not p["format_ok"] for p in preds)
    assert m["pairs_per_s"] > 0 and m["latency_s_per_pair"] == pytest.approx(1 / m["pairs_per_s"])
    if m["step_accuracy"] is not None:
        assert m["step_accuracy"] == pytest.approx(
            sum(p["num_correct"] for p in preds) / sum(p["num_verifiable"] for p in preds))
    assert "| accuracy |" in (tmp_path / "summary.md").read_text()
    assert min(_valid_png(tmp_path / "confusion_matrix.png")) > 100


def test_cli_classify_mode(bench, tiny, tmp_path, capsys):
    _, data = bench
    out = tmp_path / "student"
    assert eval_main(["--model", str(tiny), "--data", str(data / "test_random.parquet"), "--out", str(out),
                      "--max-examples", "4", "--mode", "classify", "--max-new-tokens", "4",
                      "--backend", "hf", "--device", "cpu", "--no-progress"]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert (m["n"], m["mode"], m["max_new_tokens"]) == (4, "classify", 4)
    assert sum(map(sum, m["confusion_matrix"]["matrix"])) == 4
    assert f"report: {out}" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        eval_main(["--model", str(tiny), "--data", "x.parquet", "--mode", "nope"])
    with pytest.raises(SystemExit):
        eval_main(["--model", str(tiny), "--data", "x.parquet", "--max-examples", "-3"])
    assert "argument --max-examples: must be >= 1, got -3" in capsys.readouterr().err


# -- training curves ----------------------------------------------------------------------------


def test_plot_training_curves(tmp_path):
    log = tmp_path / "run.jsonl"
    lines = [json.dumps({"step": s, "data": {
        "critic/score/mean": 0.1 * s, "critic/rewards/mean": 0.1 * s,
        "relevance/acc": 0.2 + 0.05 * s, "relevance/format_error_rate": 0.5 / s,
        "sam/masked_frac_pos": 0.1, "sam/step_acc": 0.5, "timing_s/step": 3.0,
        "training/epoch": 0, "note": "text is ignored"}}) for s in range(1, 6)]
    lines.insert(2, json.dumps({"step": 2, "data": {"val-core/grm_relevance/acc/mean@1": 0.3,
                                                    "val-core/grm_relevance/reward/mean@1": 0.3}}))
    lines.append('{"step": 6, "data": {"critic/sc')  # a run killed mid-write
    log.write_text("\n".join(lines) + "\n")
    out = tmp_path / "curves.png"
    panels = plot_training_curves(log, out)
    assert panels["train reward"] == ["critic/score/mean"]  # the first alternative present
    assert panels["validation accuracy"] == ["val-core/grm_relevance/acc/mean@1"]
    assert "SAM masked fraction, A < 0" not in panels  # absent from the log: skipped
    assert {"relevance accuracy (train)", "format-error rate (train)", "step accuracy (train)",
            "seconds per step", "SAM masked fraction, A > 0"} <= set(panels)
    width, height = _valid_png(out)
    assert width > height > 100

    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"step": 1, "data": {"unknown/metric": 1.0}}) + "\n")
    assert curves_main(["--log", str(empty), "--out", str(tmp_path / "empty.png")]) == 0
    _valid_png(tmp_path / "empty.png")  # a figure that says there is nothing to plot


# -- user errors: one line, exit code 2, found before generating ------------------------------


def _bad_label_at_row_2(tmp_path, bench) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    _, data = bench
    rows = pq.read_table(data / "test_random.parquet").to_pylist()
    rows[1]["reward_model"]["ground_truth"] = "9"
    path = tmp_path / "bad_label.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(data / "test_random.parquet")), path)
    return path


def _text_file(tmp_path, bench) -> Path:
    (tmp_path / "notes.parquet").write_text("not parquet")
    return tmp_path / "notes.parquet"


def _sft_parquet(tmp_path, bench) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"messages": [[{"role": "user", "content": "x"}]]}), tmp_path / "sft.parquet")
    return tmp_path / "sft.parquet"


@pytest.mark.parametrize("make_data,model,message", [
    (lambda tmp, bench: tmp / "missing.parquet", "tiny", "missing.parquet: no such file"),
    (lambda tmp, bench: tmp, "tiny", "is a directory, expected file"),
    (_text_file, "tiny", "notes.parquet: not a readable parquet file"),
    (_sft_parquet, "tiny", "sft.parquet: not an RL parquet, missing column(s) ['prompt', 'reward_model']"),
    # the label is checked before the model is even looked for, so before any generation
    (_bad_label_at_row_2, "/nonexistent/model", "bad_label.parquet: row 2 ("),
    (lambda tmp, bench: bench[1] / "test_random.parquet", "/nonexistent/model", "unknown model '/nonexistent/model'"),
    (lambda tmp, bench: bench[1] / "test_random.parquet", "FOLDER", "not a Hugging Face model folder, no config.json"),
])
def test_cli_user_errors_are_one_line(bench, tmp_path, capsys, make_data, model, message):
    if model == "FOLDER":
        (tmp_path / "empty-model").mkdir()
        model = str(tmp_path / "empty-model")
    rc = eval_main(["--model", model, "--data", str(make_data(tmp_path, bench)), "--out", str(tmp_path / "report"),
                    "--backend", "hf", "--device", "cpu", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "report").exists()


def test_bad_label_message_names_the_value(bench, tmp_path):
    from evaluation.scoring import DataError

    with pytest.raises(DataError, match=r"row 2 \(.*\): ground_truth '9' is not a label"):
        evaluate_responses(_bad_label_at_row_2(tmp_path, bench), ["x", "y", "z"], write=False)
