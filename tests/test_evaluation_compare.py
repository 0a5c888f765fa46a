"""evaluation.compare: paired intervals over pairs and over seeds, checked against hand computations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evaluation.compare import compare, interval_over_seeds, load_predictions, main, t_quantile


def _write(folder: Path, rows: list[tuple[str, int, int, int]]) -> Path:
    """rows: (id, correct, correct steps, verifiable steps)."""
    folder.mkdir(parents=True)
    (folder / "predictions.jsonl").write_text("".join(
        json.dumps({"id": i, "correct": bool(c), "num_correct": k, "num_verifiable": v}) + "\n"
        for i, c, k, v in rows))
    return folder


def _seeded(tmp_path: Path, name: str, seed: int, n: int = 300, p: float = 0.5) -> Path:
    rng = np.random.default_rng(seed)
    correct = rng.random(n) < p
    verifiable = rng.integers(1, 5, n)
    steps = np.minimum(verifiable, rng.integers(0, 5, n))
    return _write(tmp_path / name, [(f"p{i}", int(c), int(k), int(v))
                                    for i, (c, k, v) in enumerate(zip(correct, steps, verifiable))])


def test_accuracy_and_step_accuracy_match_a_hand_computation(tmp_path):
    a = _write(tmp_path / "a", [("x", 1, 2, 2), ("y", 1, 1, 3), ("z", 0, 0, 1)])
    b = _write(tmp_path / "b", [("x", 0, 1, 2), ("y", 1, 1, 3), ("z", 0, 1, 1), ("w", 1, 1, 1)])
    r = compare([load_predictions(a)], [load_predictions(b)], resamples=2000)
    assert r["pairs"] == 3 and r["pairs_not_shared"] == {str(a): 0, str(b): 1}
    acc, step = r["metrics"]["accuracy"], r["metrics"]["step_accuracy"]
    assert acc["a"] == [pytest.approx(2 / 3)] and acc["b"] == [pytest.approx(1 / 3)]
    assert acc["over_pairs"][0] == pytest.approx(1 / 3)
    # micro step accuracy: (2+1+0)/6 against (1+1+1)/6, as evaluation.metrics.step_accuracy sums
    assert step["a"] == [pytest.approx(0.5)] and step["b"] == [pytest.approx(0.5)]
    assert step["over_pairs"][0] == pytest.approx(0.0)
    assert acc["over_seeds"] is None  # one seed: no seed interval


def test_seeds_pair_in_order_and_the_t_interval_matches_by_hand(tmp_path):
    a = [load_predictions(_seeded(tmp_path, f"a{s}", s, p=0.6)) for s in range(3)]
    b = [load_predictions(_seeded(tmp_path, f"b{s}", 10 + s, p=0.4)) for s in range(3)]
    r = compare(a, b, resamples=2000)
    acc = r["metrics"]["accuracy"]
    diffs = [x - y for x, y in zip(acc["a"], acc["b"])]
    mean, sd = np.mean(diffs), np.std(diffs, ddof=1)
    half = 4.303 * sd / math.sqrt(3)  # t(0.975, 2 df)
    assert acc["over_seeds"] == pytest.approx([mean, mean - half, mean + half])
    # over pairs: seeds averaged per pair, the interval brackets the difference and excludes 0 here
    d, lo, hi = acc["over_pairs"]
    assert d == pytest.approx(mean) and lo < d < hi and lo > 0
    # per seed: seed i against seed i
    for i, (di, loi, hii) in enumerate(acc["per_seed"]):
        assert di == pytest.approx(diffs[i]) and loi < di < hii


def test_a_single_b_is_paired_with_every_a(tmp_path):
    a = [load_predictions(_seeded(tmp_path, f"a{s}", s)) for s in range(2)]
    b = [load_predictions(_seeded(tmp_path, "warm", 7))]
    acc = compare(a, b, resamples=500)["metrics"]["accuracy"]
    diffs = [x - acc["b"][0] for x in acc["a"]]
    assert [p[0] for p in acc["per_seed"]] == pytest.approx(diffs)
    assert acc["over_seeds"][0] == pytest.approx(np.mean(diffs))


def test_t_quantile_and_seed_interval_edges():
    assert t_quantile(1) == 12.706 and t_quantile(2) == 4.303 and t_quantile(12) == 2.228
    assert t_quantile(500) == 1.980  # the conservative neighbour below, never the normal 1.96 too early
    with pytest.raises(ValueError):
        t_quantile(0)
    assert interval_over_seeds([0.1]) is None
    assert interval_over_seeds([0.1, 0.1]) == pytest.approx((0.1, 0.1, 0.1))


def test_a_side_without_steps_is_compared_in_accuracy_only(tmp_path, capsys):
    a = _write(tmp_path / "a", [("x", 1, 2, 2), ("y", 1, 1, 3)])
    b = _write(tmp_path / "b", [("x", 0, 0, 0), ("y", 1, 0, 0)])  # a student: the label alone
    r = compare([load_predictions(a)], [load_predictions(b)], resamples=200)
    assert set(r["metrics"]) == {"accuracy"} and r["metrics"]["accuracy"]["over_pairs"][0] == pytest.approx(0.5)
    assert r["not_compared"] == {"step_accuracy": f"no verifiable step in {b}"}
    assert main(["--a", str(a), "--b", str(b), "--resamples", "200"]) == 0
    assert f"| step accuracy | not compared: no verifiable step in {b} |" in capsys.readouterr().out


def test_cli_prints_the_table_and_writes_json(tmp_path, capsys):
    a = [_seeded(tmp_path, f"a{s}", s) for s in range(2)]
    b = [_seeded(tmp_path, f"b{s}", 5 + s) for s in range(2)]
    out = tmp_path / "cmp" / "sam_vs_grpo.json"
    assert main(["--a", *map(str, a), "--b", *map(str, b), "--name-a", "SAM", "--name-b", "GRPO",
                 "--json", str(out), "--resamples", "500"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("SAM - GRPO on 300 shared pairs (2 vs 2 evaluations)")
    assert "| accuracy |" in text and "| step accuracy |" in text
    assert json.loads(out.read_text())["a"] == [str(f) for f in a]
    # the predictions files themselves are read as their folders are
    assert main(["--a", *(str(f / "predictions.jsonl") for f in a), "--b", *map(str, b), "--name-a", "SAM",
                 "--name-b", "GRPO", "--resamples", "500"]) == 0
    assert capsys.readouterr().out == text


@pytest.mark.parametrize("case", ["missing_file", "missing_field", "bad_json", "counts", "disjoint"])
def test_bad_input_is_one_line_naming_the_file_and_exit_2(tmp_path, capsys, case):
    good = _seeded(tmp_path, "good", 0)
    other = _seeded(tmp_path, "other", 1)
    if case == "missing_file":
        args, expect = ["--a", str(tmp_path / "nowhere"), "--b", str(good)], "nowhere/predictions.jsonl: no such file"
    elif case == "missing_field":
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "predictions.jsonl").write_text('{"id": "p0", "correct": true}\n')
        args, expect = ["--a", str(bad), "--b", str(good)], "predictions.jsonl:1: field 'num_correct' missing"
    elif case == "bad_json":
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / "predictions.jsonl").write_text('{"id": "p0", "correct": true, "num_correct": 1, "num_verifiable": 1}\n{oops\n')
        args, expect = ["--a", str(bad), "--b", str(good)], "predictions.jsonl:2: not a prediction record"
    elif case == "counts":
        args, expect = ["--a", str(good), "--b", str(good), str(other)], "--b has 2 folders"
    else:
        far = _write(tmp_path / "far", [("q", 1, 1, 1)])
        args, expect = ["--a", str(far), "--b", str(good)], "share no pair id"
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("error: ") and expect in err
