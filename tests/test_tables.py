"""evaluation.tables: aggregation over seeds against hand computations, record checks,
markdown cells and order, the written files and plots, and the rebuild CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evaluation.metrics import classification_report
from evaluation.tables import aggregate, format_cell, main, plot_tables, render_markdown, write_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RANDOM, LONGTAIL = "test_random", "test_longtail"


def _metrics(acc: float, f1: float, *, step: float | None = 0.5, fmt: float = 0.0,
             lat: float | None = 0.02, pps: float | None = 50.0, mode: str = "generate") -> dict:
    """A dict with evaluate()'s keys; the headline numbers are set by hand."""
    report = classification_report([3, 2, 1, 0, -1, 2], [3, 2, 0, 0, None, 2])
    report.update({
        "accuracy": acc, "macro_f1": f1, "step_accuracy": step,
        "per_step_accuracy": {} if step is None else {"intent": {"correct": 1, "verifiable": 2, "acc": 0.5}},
        "format_error_rate": fmt, "format_errors": {}, "mean_reward": 0.1, "consistency_rate": 1.0,
        "n": 6, "latency_s_per_pair": lat, "pairs_per_s": pps, "generation_seconds": 1.0,
        "load_seconds": 2.0, "mean_prompt_tokens": 300.0, "mean_response_tokens": 120.0 if mode == "generate" else 2.0,
        "truncated_rate": 0.0, "model": "/models/x", "data": "/data/test.parquet", "mode": mode,
        "backend": "hf", "device": "cpu", "batch_size": 16, "max_new_tokens": 1024,
        "temperature": 0.0, "top_p": 1.0, "seed": 0, "reward_kwargs": {},
    })
    return report


def _rec(table: str, method: str, seed: int, split: str, metrics: dict) -> dict:
    return {"table": table, "method": method, "seed": seed, "split": split, "metrics": metrics}


SAM = "GRPO + SAM (symmetric)"


def _records() -> list[dict]:
    """Three seeds of GRPO + SAM (main, ablation, teacher), one seed of GRPO, a classify student."""
    recs = []
    # RANDOM accuracies 0.40, 0.45, 0.50; macro-F1 0.30, 0.36, 0.33; latency 10/12/14 ms; 80/90/100 pairs/s.
    for seed, acc, f1, lat, pps in [(1, 0.40, 0.30, 0.010, 80.0), (2, 0.45, 0.36, 0.012, 90.0),
                                    (3, 0.50, 0.33, 0.014, 100.0)]:
        for table in ("main", "ablation", "distillation"):
            recs.append(_rec(table, SAM, seed, RANDOM, _metrics(acc, f1, step=0.6, fmt=0.1, lat=lat, pps=pps)))
            recs.append(_rec(table, SAM, seed, LONGTAIL, _metrics(acc - 0.1, f1 - 0.1, step=0.5)))
    recs.append(_rec("main", "GRPO", 1, RANDOM, _metrics(0.412, 0.3, step=0.55, fmt=0.02)))
    recs.append(_rec("main", "GRPO", 1, LONGTAIL, _metrics(0.3, 0.2)))
    recs.append(_rec("ablation", "SAM (positive only)", 1, RANDOM, _metrics(0.42, 0.31)))
    for seed, acc in [(1, 0.38), (2, 0.40)]:
        for split in (RANDOM, LONGTAIL):
            recs.append(_rec("distillation", "Student 0.5B | direct", seed, split,
                             _metrics(acc, acc - 0.1, step=None, lat=0.002, pps=500.0, mode="classify")))
    return recs


def _row(rows: list[dict], table: str, method: str) -> dict:
    return next(r for r in rows if r["table"] == table and r["method"] == method)


# -- aggregation --------------------------------------------------------------------------------


def test_aggregate_matches_hand_computation():
    rows = aggregate(_records())
    assert [(r["table"], r["method"]) for r in rows] == [
        ("main", SAM), ("ablation", SAM), ("distillation", SAM), ("main", "GRPO"),
        ("ablation", "SAM (positive only)"), ("distillation", "Student 0.5B | direct")]
    sam = _row(rows, "main", SAM)
    assert sam["seeds"] == [1, 2, 3] and sam["n_seeds"] == 3 and sam["mode"] == "generate"
    acc = sam["splits"][RANDOM]["accuracy"]
    # mean (0.40 + 0.45 + 0.50) / 3 = 0.45; squared deviations 0.0025 + 0 + 0.0025 over n - 1 = 2.
    assert acc["mean"] == pytest.approx(0.45)
    assert acc["std"] == pytest.approx(0.05)
    assert (acc["min"], acc["max"], acc["n"]) == (pytest.approx(0.40), pytest.approx(0.50), 3)
    f1 = sam["splits"][RANDOM]["macro_f1"]  # mean 0.33; deviations -0.03, 0.03, 0 -> 0.0018 / 2
    assert f1["mean"] == pytest.approx(0.33) and f1["std"] == pytest.approx(0.03)
    lat = sam["splits"][RANDOM]["latency_s_per_pair"]
    assert lat["mean"] == pytest.approx(0.012) and lat["std"] == pytest.approx(0.002)
    pps = sam["splits"][RANDOM]["pairs_per_s"]
    assert pps["mean"] == pytest.approx(90.0) and pps["std"] == pytest.approx(10.0)
    assert sam["splits"][LONGTAIL]["accuracy"]["mean"] == pytest.approx(0.35)
    # The same run in another table aggregates to the same numbers.
    assert _row(rows, "ablation", SAM)["splits"] == sam["splits"]


def test_single_seed_has_no_spread_and_none_is_skipped():
    rows = aggregate(_records())
    grpo = _row(rows, "main", "GRPO")["splits"][RANDOM]["accuracy"]
    assert grpo == {"mean": 0.412, "std": None, "min": 0.412, "max": 0.412, "n": 1}
    student = _row(rows, "distillation", "Student 0.5B | direct")
    assert student["mode"] == "classify"
    assert student["splits"][RANDOM]["step_accuracy"] is None  # every value None
    # A split with no records: every metric is None.
    ablation = _row(rows, "ablation", "SAM (positive only)")
    assert all(v is None for v in ablation["splits"][LONGTAIL].values())
    # None among numbers: skipped, not counted as a seed.
    recs = [_rec("main", "m", s, RANDOM, _metrics(0.5, 0.5, step=v)) for s, v in [(1, 0.2), (2, None), (3, 0.4)]]
    step = aggregate(recs)[0]["splits"][RANDOM]["step_accuracy"]
    assert step["n"] == 2 and step["mean"] == pytest.approx(0.3)
    assert step["std"] == pytest.approx(math.sqrt(0.02))  # (0.01 + 0.01) / 1


@pytest.mark.parametrize("index, change, needle", [
    (2, {"table": "appendix"}, "record 2: field 'table'"),
    (1, {"split": "val"}, "record 1: field 'split'"),
    (3, {"metrics": {"macro_f1": 0.3}}, "record 3: field 'metrics' has no 'accuracy'"),
    (0, {"seed": "1"}, "record 0: field 'seed'"),
    (2, {"method": ""}, "record 2: field 'method'"),
    (1, {"metrics": {"accuracy": float("nan")}}, "record 1: field 'metrics.accuracy'"),
    (3, "drop:split", "record 3: field 'split' is missing"),
])
def test_malformed_records_are_named(index, change, needle):
    recs = _records()[:6]
    if change == "drop:split":
        del recs[index]["split"]
    else:
        recs[index].update(change)
    with pytest.raises(ValueError) as err:
        aggregate(recs)
    assert needle in str(err.value)


def test_duplicate_record_is_named():
    recs = _records()
    recs.append(dict(recs[0]))
    with pytest.raises(ValueError, match=rf"record {len(recs) - 1}: .*\(table, method, seed, split\).*"
                                         r"repeat record 0"):
        aggregate(recs)
    # The same seed in another table or split is not a duplicate.
    aggregate(_records())


# -- markdown -----------------------------------------------------------------------------------


def test_format_cell():
    assert format_cell({"mean": 0.4123, "std": 0.031, "min": 0, "max": 1, "n": 3}) == "41.2 ± 3.1"
    assert format_cell({"mean": 0.4123, "std": None, "min": 0, "max": 1, "n": 1}) == "41.2"
    assert format_cell(None) == "—"
    assert format_cell({"mean": 12.34, "std": 0.41, "min": 0, "max": 1, "n": 2}, percent=False) == "12.3 ± 0.4"
    assert format_cell({"mean": 0.0123, "std": 0.0004, "min": 0, "max": 1, "n": 2}, scale=1000.0) == "12.3 ± 0.4"
    assert format_cell({"mean": 0.5, "std": 0.1, "min": 0, "max": 1, "n": 2}, n_seeds=3) == "50.0 ± 10.0 (n=2)"


def _table_lines(md: str) -> list[list[str]]:
    # Split on unescaped pipes only: a method name may contain "\|".
    import re

    return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            for line in md.splitlines() if line.startswith("|") and not line.startswith("|---")]


def test_main_and_ablation_markdown():
    rows = aggregate(_records())
    md = render_markdown(rows, "main")
    lines = _table_lines(md)
    assert lines[0] == ["Method", "seeds", "RANDOM acc", "RANDOM macro-F1", "LONGTAIL acc",
                        "LONGTAIL macro-F1", "step acc (RANDOM)", "steps imply gold (RANDOM)",
                        "format errors (RANDOM)"]
    assert lines[1] == [SAM, "3", "45.0 ± 5.0", "33.0 ± 3.0", "35.0 ± 5.0", "23.0 ± 3.0", "60.0 ± 0.0", "—",
                        "10.0 ± 0.0"]
    assert lines[2] == ["GRPO", "1", "41.2", "30.0", "30.0", "20.0", "55.0", "—", "2.0"]
    assert len(lines) == 3  # only this table's rows
    legend = md.strip().splitlines()[-1]
    assert "sample standard deviation" in legend and "single-seed" in legend and "no spread" in legend
    abl = _table_lines(render_markdown(rows, "ablation"))
    assert [line[0] for line in abl[1:]] == [SAM, "SAM (positive only)"]
    assert abl[2][2:] == ["42.0", "31.0", "—", "—", "50.0", "—", "0.0"]


def test_distillation_markdown():
    """Records without the serving view (an earlier commit's) keep the evaluation's throughput columns."""
    lines = _table_lines(render_markdown(aggregate(_records()), "distillation"))
    assert lines[0] == ["Model", "mode", "seeds", "RANDOM acc", "RANDOM macro-F1", "LONGTAIL acc",
                        "LONGTAIL macro-F1", "RANDOM NDCG@10", "LONGTAIL NDCG@10", "pairs/s", "ms/pair"]
    assert lines[1] == [SAM, "generate", "3", "45.0 ± 5.0", "33.0 ± 3.0", "35.0 ± 5.0", "23.0 ± 3.0", "—", "—",
                        "90.0 ± 10.0", "12.0 ± 2.0"]
    assert lines[2] == ["Student 0.5B \\| direct", "classify", "2", "39.0 ± 1.4", "29.0 ± 1.4",
                        "39.0 ± 1.4", "29.0 ± 1.4", "—", "—", "500.0 ± 0.0", "2.0 ± 0.0"]


def test_distillation_markdown_with_the_serving_view():
    """NDCG@10 per distribution, serving pairs/s and p50 at the serving batch, the speed-up over the
    teacher row's mean pairs/s."""
    recs = []
    for seed, pps, ndcg in [(1, 10.0, 0.60), (2, 14.0, 0.70)]:
        for method, rate, mode in [("Teacher: GRPO + SAM (reasoning)", pps, "generate"),
                                   ("Student: classification head", 50 * pps, "score")]:
            for split in (RANDOM, LONGTAIL):
                m = {**_metrics(0.4, 0.3, mode=mode), "ndcg@10": ndcg if split == RANDOM else ndcg - 0.1}
                if split == RANDOM:
                    m.update(serve_pairs_per_s=rate, serve_p50_ms=1000 / rate)
                recs.append(_rec("distillation", method, seed, split, m))
    lines = _table_lines(render_markdown(aggregate(recs), "distillation"))
    assert lines[0][-5:] == ["RANDOM NDCG@10", "LONGTAIL NDCG@10", "pairs/s", "p50 ms", "speed-up"]
    assert lines[1][-5:] == ["65.0 ± 7.1", "55.0 ± 7.1", "12.0 ± 2.8", "85.7 ± 20.2", "1.0x"]
    assert lines[2][-3:] == ["600.0 ± 141.4", "1.7 ± 0.4", "50.0x"]  # mean over mean, not a mean of ratios
    with pytest.raises(ValueError, match="table must be one of"):
        render_markdown([], "appendix")


# -- files, plots, CLI --------------------------------------------------------------------------

HEADER = {"preset": "smoke", "machine": "1x H100", "commit": "abc1234", "started": "2025-01-01T00:00:00",
          "finished": "2025-01-01T01:00:00", "wall_s": 3600.0, "command": "python -m recipes.tables --preset smoke"}


def _is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == PNG_SIGNATURE


def test_write_results_and_rebuild(tmp_path, capsys):
    records = _records()
    paths = write_results(records, tmp_path / "a", HEADER)
    expected = {"main.md", "ablation.md", "distillation.md", "main.png", "ablation.png", "distillation.png",
                "README.md", "records.json", "tables.json", "header.json"}
    assert set(paths) == expected
    assert {p.name for p in (tmp_path / "a").iterdir()} == expected
    assert all(_is_png(paths[f"{t}.png"]) for t in ("main", "ablation", "distillation"))
    assert json.loads(paths["records.json"].read_text()) == records
    assert json.loads(paths["tables.json"].read_text()) == json.loads(json.dumps(aggregate(records)))
    readme = paths["README.md"].read_text()
    assert "- **preset**: smoke" in readme and "`python -m recipes.tables --preset smoke`" in readme
    assert readme.index("## Main results") < readme.index("## Ablation") < readme.index("## Distillation")
    assert "](main.png)" in readme and "](distillation.png)" in readme
    assert paths["main.md"].read_text() in readme

    assert main(["--records", str(paths["records.json"]), "--out", str(tmp_path / "b")]) == 0
    assert "README.md" in capsys.readouterr().out
    for name in ("main.md", "ablation.md", "distillation.md", "README.md", "tables.json", "header.json"):
        assert (tmp_path / "b" / name).read_text() == paths[name].read_text(), name


def test_only_tables_with_records_are_written(tmp_path):
    recs = [r for r in _records() if r["table"] == "main"]
    paths = write_results(recs, tmp_path, {})
    assert {"main.md", "main.png"} <= set(paths)
    assert not any(n.startswith(("ablation", "distillation")) for n in paths)
    assert not (tmp_path / "ablation.md").exists()
    assert "## Ablation" not in paths["README.md"].read_text()
    # A bad record writes nothing.
    with pytest.raises(ValueError):
        write_results([_rec("main", "x", 1, "val", _metrics(0.5, 0.5))], tmp_path / "bad", {})
    assert not (tmp_path / "bad").exists()


def test_plot_with_missing_values(tmp_path):
    rows = aggregate([_rec("main", "only random", 1, RANDOM, _metrics(0.5, 0.4))])
    (png,) = plot_tables(rows, tmp_path)
    assert png.name == "main.png" and _is_png(png)


def test_real_evaluate_responses_metrics(tmp_path):
    """Records holding evaluate_responses() output (speed fields None) go through unchanged."""
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.traces import build_trace
    from data_prep.writer import write_splits
    from evaluation import evaluate_responses

    splits = generate_benchmark(BenchmarkConfig(seed=3, train_size=4, val_size=4, test_random_size=4,
                                                test_longtail_size=4, sft_size=0, progress=False))
    write_splits(splits, tmp_path)
    recs = []
    for split in (RANDOM, LONGTAIL):
        traces = [build_trace(r) for r in splits[split]]
        m = evaluate_responses(tmp_path / f"{split}.parquet", traces, write=False)
        recs.append(_rec("main", "gold traces", 0, split, m))
    (row,) = aggregate(recs)
    assert row["splits"][RANDOM]["accuracy"]["mean"] == 1.0
    assert row["splits"][RANDOM]["pairs_per_s"] is None
    assert _table_lines(render_markdown([row], "main"))[1] == [
        "gold traces", "1", "100.0", "100.0", "100.0", "100.0", "100.0", "100.0", "0.0"]
