"""The tables runner's plan: stages, their order and inputs, and the commands they run."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from recipes import launch
from recipes.tables import PRESETS, RL_RUNS, SPLITS, TABLE_ENTRIES, Matrix, records_for, run_stage

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def matrix(tmp_path):
    data = {"default": tmp_path / "data", "free_form": tmp_path / "data-free", "paper": tmp_path / "data-paper",
            "pool": tmp_path / "pool.parquet"}
    return Matrix(PRESETS["tiny"], [0, 1], tmp_path / "work", data, "tiny")


def test_every_stage_comes_after_its_inputs(matrix):
    seen = set()
    for key, stage in matrix.stages.items():
        assert all(dep in seen for dep in stage.deps), key
        assert stage.model in TABLE_ENTRIES, key
        seen.add(key)
    per_seed = {"sft_label_only", "classifier", "student", "student_head", "student_head_soft", *RL_RUNS}
    assert {s.model for s in matrix.stages.values() if s.seed == 1} == per_seed
    # the data-efficiency table's other amounts: label-only SFT and the head per amount, RL per RL amount
    extra = [k for k, s in matrix.stages.items() if s.data_efficiency_only]
    assert sorted(extra) == ["classifier-n64-s0", "grpo_sam-n24-s0", "sft_label_only-n64-s0"]
    assert len(matrix.stages) == 4 + 2 * len(per_seed) + len(extra)


def test_data_efficiency_runs_see_their_amount_of_gold_pairs_once(matrix, tmp_path):
    """Each run's steps x batch is its amount; the main table's runs stand in the table at theirs,
    the warm-up at none; the other tables never get a run of another amount."""
    cmd = {k: matrix.command(s) for k, s in matrix.stages.items()}

    def opt(c, name):
        return c[c.index(name) + 1]

    sft_batch, rl_batch = matrix.sft_batch, matrix.rl_batch
    assert (sft_batch, rl_batch) == (4, 4)  # recipes/sft_scale/tiny.yaml, recipes/scale/tiny.yaml
    assert int(opt(cmd["sft_label_only-n64-s0"], "--steps")) * sft_batch == 64
    classifier = cmd["classifier-n64-s0"]
    assert int(opt(classifier, "--steps")) * int(opt(classifier, "--batch-size")) == 64
    rl = cmd["grpo_sam-n24-s0"]
    assert int(opt(rl, "--steps")) * rl_batch == 24 and opt(rl, "--model") == "tiny-sft"
    assert rl[-len(RL_RUNS["grpo_sam"].overrides) - 1:][0] == "trainer.test_freq=1"  # after the preset's
    stages = matrix.stages
    assert stages["sft_label_only-s1"].gold_pairs == PRESETS["tiny"].label_only_steps * sft_batch
    assert stages["grpo_sam-s1"].gold_pairs == PRESETS["tiny"].rl_steps * rl_batch
    assert stages["warmup"].gold_pairs == 0  # the teacher's traces
    assert stages["grpo_free-s0"].gold_pairs is None  # not from the warm-up: not in the table
    metrics = {split: {"accuracy": 0.5} for split in SPLITS}
    extra = records_for(stages["sft_label_only-n64-s0"], metrics)
    assert {r["table"] for r in extra} == {"data_efficiency"}
    assert {r["method"] for r in extra} == {"SFT label-only, 64 gold pairs"}
    assert all(r["metrics"]["gold_pairs"] == 64 for r in extra)
    main = records_for(stages["grpo_sam-s0"], metrics)
    assert {r["table"] for r in main} == {"main", "ablation", "distillation", "data_efficiency"}
    for tables, kept in (({"distillation"}, False), ({"data_efficiency"}, True)):
        copy = Matrix(matrix.preset, [0, 1], tmp_path / "w2", matrix.data, "tiny")
        copy.keep_tables(tables)
        assert ("grpo_sam-n24-s0" in copy.stages) == kept and ("warmup" in copy.stages)
        assert ("student-s0" in copy.stages) != kept


def test_rl_commands_start_from_the_right_model_and_data(matrix, tmp_path):
    cmd = {k: matrix.command(s) for k, s in matrix.stages.items()}

    def opt(c, name):
        return c[c.index(name) + 1]

    sam = cmd["grpo_sam-s1"]
    assert sam[1:3] == ["-m", "recipes.launch"] and "--save-hf" in sam
    assert opt(sam, "--config") == "grpo_sam" and opt(sam, "--seed") == "1"
    assert opt(sam, "--model") == "tiny-sft"
    assert opt(sam, "--data-dir") == str(tmp_path / "data")
    assert "algorithm.sam.variant=negative_only" in cmd["grpo_sam_negative_only-s0"]
    assert opt(cmd["grpo-s0"], "--config") == "grpo"
    free = cmd["grpo_free-s0"]
    assert opt(free, "--model") == "tiny-sft-free" and opt(free, "--data-dir") == str(tmp_path / "data-free")
    assert opt(cmd["grpo_sam_no_warmup-s0"], "--model") == "tiny"
    # the ablation rows of the authors' SAM: their rule, their loss treatment, their whole recipe
    assert "algorithm.sam.variant=paper" in cmd["grpo_sam_paper_variant-s0"]
    assert "algorithm.sam.exclude_masked_from_loss=true" in cmd["grpo_sam_excluded-s0"]
    paper = cmd["grpo_sam_paper-s1"]
    assert opt(paper, "--config") == "grpo_sam_paper" and opt(paper, "--model") == "tiny-sft-paper"
    assert opt(paper, "--data-dir") == str(tmp_path / "data-paper")
    student = cmd["student-s1"]
    assert student[1:3] == ["-m", "recipes.distill"]
    assert opt(student, "--teacher") == str(tmp_path / "work" / "grpo_sam-s1" / "hf")
    assert opt(student, "--pool") == str(tmp_path / "pool.parquet")
    assert opt(student, "--soft-samples") == str(PRESETS["tiny"].soft_samples)
    # the head students train on the labels the seed's label-only student wrote: hard and soft
    for model, targets in (("student_head", "hard"), ("student_head_soft", "soft")):
        head = cmd[f"{model}-s1"]
        assert matrix.stages[f"{model}-s1"].deps == ["student-s1"]
        assert opt(head, "--stage") == "train" and opt(head, "--student-kind") == "head"
        assert opt(head, "--labels-dir") == str(tmp_path / "work" / "student-s1")
        assert opt(head, "--targets") == targets and "--teacher" not in head
    label_only = cmd["sft_label_only-s0"]
    assert "--label-only" in label_only and opt(label_only, "--model") == "tiny"
    # the discriminative baseline: the base model, the same gold pairs as label-only SFT
    classifier = cmd["classifier-s1"]
    assert classifier[1:3] == ["-m", "recipes.classifier"] and opt(classifier, "--model") == "tiny"
    assert opt(classifier, "--data") == str(tmp_path / "data") and opt(classifier, "--seed") == "1"
    assert opt(classifier, "--steps") == opt(label_only, "--steps")
    assert cmd["warmup"] is None and cmd["base"] is None  # model_zoo builds, in-process


def test_records_put_a_model_into_each_of_its_tables(matrix):
    stage = matrix.stages["grpo_sam-s1"]
    metrics = {split: {"accuracy": 0.5, "split": split} for split in SPLITS}
    records = records_for(stage, metrics)
    assert {r["table"] for r in records} == {"main", "ablation", "distillation", "data_efficiency"}
    assert len(records) == 4 * len(SPLITS)
    assert all(r["seed"] == 1 and r["metrics"]["split"] == r["split"] for r in records)


def test_records_carry_no_paths_of_the_checkout(matrix):
    model = str(REPO / ".cache" / "models" / "tiny")
    metrics = {split: {"accuracy": 0.5, "model": model, "data": "/elsewhere/x.parquet"} for split in SPLITS}
    record = records_for(matrix.stages["base"], metrics)[0]
    assert record["metrics"]["model"] == ".cache/models/tiny"
    assert record["metrics"]["data"] == "/elsewhere/x.parquet"  # outside the checkout: left as given


def test_rl_stage_commands_compose_and_pass_the_start_up_checks(matrix, tmp_path):
    """Each RL run's overrides compose with verl's config and pass SAM's checks (launcher dry run)."""
    from model_zoo import resolve_model

    tiny = str(resolve_model("tiny"))
    for key in ("grpo-s0", "grpo_sam_first_error-s0", "grpo_sam_paper-s0"):
        argv = matrix.command(matrix.stages[key])[3:]
        argv[argv.index("--model") + 1] = tiny
        assert argv[argv.index("--data-dir") + 1] == str(matrix.data[matrix.stages[key].criteria])
        assert launch.main([*argv, "--dry-run"]) == 0
        script = (tmp_path / "work" / key / "command.sh").read_text()
        assert "trainer.save_freq=3" in script and "data.seed=0" in script
        assert "actor_rollout_ref.rollout.seed=0" in script and "trainer.test_freq=-1" in script
        if key.startswith("grpo_sam_first_error"):
            assert "algorithm.sam.variant=first_error" in script


def test_a_failed_stage_is_reported_with_its_log(matrix, tmp_path):
    stage = matrix.stages["sft_label_only-s0"]
    matrix.stages["base"].zoo = str(tmp_path / "no-such-model")  # the stage's input is missing
    messages = []
    ok, _ = run_stage(matrix, stage, messages.append)
    assert not ok
    assert "sft_label_only-s0 failed (exit" in messages[0] and "stage.log" in messages[0]
    assert "no-such-model" in (tmp_path / "work" / "sft_label_only-s0" / "stage.log").read_text()
    assert not (tmp_path / "work" / "sft_label_only-s0" / "done.json").exists()


def test_dry_run_lists_every_stage(tmp_path):
    out = subprocess.run([sys.executable, "-m", "recipes.tables", "--preset", "tiny", "--seeds", "1",
                          "--work", str(tmp_path / "work"), "--dry-run"],
                         cwd=REPO, capture_output=True, text=True, env={**__import__("os").environ,
                                                                        "GRM_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0, out.stderr[-2000:]
    plan = out.stdout[re.search(r"^base ", out.stdout, re.M).start():]  # after the data generation messages
    keys = [line.split()[0] for line in plan.splitlines() if line.strip()]
    assert keys[:4] == ["base", "warmup", "warmup_free", "warmup_paper"] and len(keys) == 4 + 5 + len(RL_RUNS)
    assert "student-s0" in keys and "classifier-s0" in keys and "--model tiny-sft " in plan
    data = tmp_path / "cache" / "data"
    for folder in ("benchmark-en-pool128", "benchmark-en-free_form", "benchmark-en-paper"):  # none rejected
        summary = __import__("json").loads((data / folder / "summary.json").read_text())
        assert summary["rows_rejected"] == 0 and (data / folder / "test_longtail.parquet").exists(), folder
    assert (data / "benchmark-en-pool128" / "pool" / "pool.parquet").exists()


def test_launcher_writes_the_benchmark_with_the_recipes_criteria():
    assert launch.recipe_criteria("grpo_sam_paper", []) == ("paper", True)
    assert launch.recipe_criteria("grpo_sam", []) == ("default", False)
    assert launch.default_data_dir("paper").name == "benchmark-en-paper"
    assert launch.default_data_dir("default").name == "benchmark-en"


@pytest.mark.slow
def test_a_distillation_row_gets_ranking_and_serving_latency(tmp_path, monkeypatch):
    """A student of the distillation table: test metrics, NDCG / MRR on the ranking split of each
    distribution, pairs/s and p50 / p99 ms at the serving batch on test_random; all cached."""
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.writer import write_splits
    from model_zoo import resolve_model
    from recipes import tables

    splits = generate_benchmark(BenchmarkConfig(seed=5, train_size=10, val_size=5, test_random_size=12,
                                                test_longtail_size=12, sft_size=0, rank_queries=3,
                                                rank_candidates=5, progress=False))
    write_splits(splits, tmp_path / "data")
    matrix = Matrix(PRESETS["tiny"], [0], tmp_path / "work", {"default": tmp_path / "data"}, "tiny")
    stage = matrix.stages["student_head-s0"]
    student = resolve_model("tiny-label")  # a label-only model, read in one pass as a head would be
    monkeypatch.setattr(matrix, "model_dir", lambda key: student)
    monkeypatch.setattr(tables, "SERVE_PAIRS", 10)
    results = tables.evaluate_stage(matrix, stage)
    for split in SPLITS:
        assert results[split]["mode"] == "score" and results[split]["n"] == 12
        assert 0 <= results[split]["ndcg@10"] <= 1 and 0 <= results[split]["mrr"] <= 1
    serve = json.loads((tmp_path / "work" / "eval" / "student_head-s0" / "serve_b32.json").read_text())
    assert serve["pairs"] == 10 and serve["mode"] == "score" and serve["p50_ms"] <= serve["p99_ms"]
    assert results["test_random"]["serve_pairs_per_s"] == serve["pairs_per_s"] > 0
    assert "serve_pairs_per_s" not in results["test_longtail"]
    rank = json.loads((tmp_path / "work" / "eval" / "student_head-s0" / "rank_longtail" / "metrics.json").read_text())
    assert rank["n"] == 15 and rank["ranking"]["queries"] == 3
    records = records_for(stage, results)
    assert {r["method"] for r in records} == {"Student: classification head, from the teacher's labels"}
    # everything is read back, nothing is run again
    monkeypatch.setattr(tables, "load_reader", lambda *a: pytest.fail("evaluated again"))
    again = tables.evaluate_stage(matrix, stage)
    keys = ("accuracy", "macro_f1", "ndcg@10", "mrr", "serve_pairs_per_s", "serve_p50_ms")
    assert [{k: again[s].get(k) for k in keys} for s in SPLITS] == [{k: results[s].get(k) for k in keys}
                                                                  for s in SPLITS]


def test_results_reach_the_output_folder_only_when_the_run_ends(tmp_path, monkeypatch):
    """While stages run the tables grow in <work>/live; the output folder (committed results) gets
    them once, with the final status, so a half-finished run cannot be committed as a result."""
    from recipes import tables

    work, out = tmp_path / "work", tmp_path / "out"
    seen_during_run = []

    def fake_run(matrix, stage, log):
        seen_during_run.append(out.exists())
        (work / stage.key).mkdir(parents=True, exist_ok=True)
        return True, 1.0

    monkeypatch.setattr(tables, "ensure_data", lambda preset: {"default": tmp_path / "data"})
    monkeypatch.setattr(tables, "run_stage", fake_run)
    monkeypatch.setattr(tables, "evaluate_stage", lambda matrix, stage: {
        split: {"mode": "generate", "n": 10, "accuracy": 0.5} for split in SPLITS})
    assert tables.main(["--preset", "tiny", "--seeds", "1", "--work", str(work), "--out", str(out),
                        "--tables", "main"]) == 0
    assert seen_during_run and not any(seen_during_run)
    assert json.loads((work / "live" / "header.json").read_text())["status"].startswith("in progress")
    assert json.loads((out / "header.json").read_text())["status"] == "complete"
    assert (out / "stages.md").exists() and (out / "main.md").exists()


def test_the_data_efficiency_table_is_a_command_of_its_own(tmp_path, monkeypatch):
    """`--tables data_efficiency` runs the main table's gold-label and RL runs (reused when done)
    and the other amounts, and writes that table alone; the default tables never show it."""
    from recipes import tables

    work = tmp_path / "work"
    ran = []

    def fake_run(matrix, stage, log):
        ran.append(stage.key)
        return True, 1.0

    monkeypatch.setattr(tables, "ensure_data", lambda preset: {"default": tmp_path / "data"})
    monkeypatch.setattr(tables, "run_stage", fake_run)
    monkeypatch.setattr(tables, "interval_rows", lambda matrix: [])
    monkeypatch.setattr(tables, "evaluate_stage", lambda matrix, stage: {
        split: {"mode": "generate", "n": 10, "accuracy": 0.5} for split in SPLITS})
    out = tmp_path / "de"
    assert tables.main(["--preset", "tiny", "--seeds", "1", "--work", str(work), "--out", str(out),
                        "--tables", "data_efficiency"]) == 0
    assert {"sft_label_only-s0", "grpo_sam-s0", "sft_label_only-n64-s0", "grpo_sam-n24-s0"} <= set(ran)
    assert not any(k.startswith("student") for k in ran)
    records = json.loads((out / "records.json").read_text())
    assert {r["table"] for r in records} == {"data_efficiency"}
    methods = {r["method"] for r in records}
    assert {"SFT label-only, 64 gold pairs", "SFT label-only, 800 gold pairs", "GRPO + SAM from the warm-up, 12 gold pairs",
            "GRPO + SAM from the warm-up, 24 gold pairs"} <= methods
    assert (out / "data_efficiency.md").exists() and (out / "data_efficiency.png").exists()
    assert (work / "live-data-efficiency" / "header.json").exists()
    main_out = tmp_path / "main"
    assert tables.main(["--preset", "tiny", "--seeds", "1", "--work", str(work), "--out", str(main_out),
                        "--tables", "main"]) == 0
    assert {r["table"] for r in json.loads((main_out / "records.json").read_text())} == {"main"}


def test_warm_students_start_from_the_warm_up_s_first_layers(tmp_path):
    """A preset's warm students: soft-target heads on the seed's teacher labels, from the warm-up's
    first N layers; rows of the distillation table named as students."""
    from dataclasses import replace

    data = {"default": tmp_path / "data", "free_form": tmp_path / "f", "paper": tmp_path / "p",
            "pool": tmp_path / "pool.parquet"}
    matrix = Matrix(replace(PRESETS["tiny"], warm_students=(1,)), [0], tmp_path / "work", data, "tiny")
    matrix.keep_tables({"distillation"})
    stage = matrix.stages["student_warm_l1-s0"]
    assert stage.deps == ["student-s0", "warmup"] and list(matrix.stages).index("warmup") < \
        list(matrix.stages).index("student_warm_l1-s0")
    cmd = matrix.command(stage)

    def opt(name):
        return cmd[cmd.index(name) + 1]

    assert opt("--labels-dir") == str(tmp_path / "work" / "student-s0") and opt("--targets") == "soft"
    assert opt("--student") == "tiny-sft" and opt("--student-layers") == "1"  # a zoo model goes by name
    records = records_for(stage, {split: {"accuracy": 0.5} for split in SPLITS})
    assert {r["table"] for r in records} == {"distillation"}
    assert all(r["method"].startswith("Student:") for r in records)


def test_a_run_of_another_amount_of_data_is_its_own_learning_curve(matrix, tmp_path, monkeypatch):
    from evaluation import curves
    from recipes.tables import plot_learning_curves

    for key in ("grpo_sam-s0", "grpo_sam-s1", "grpo_sam-n24-s0"):
        (tmp_path / "work" / key).mkdir(parents=True)
        (tmp_path / "work" / key / "metrics.jsonl").write_text('{"step": 1, "data": {}}\n')
    seen = {}
    monkeypatch.setattr(curves, "plot_seed_bands", lambda runs, path, title: seen.update(runs))
    plot_learning_curves(matrix, tmp_path / "out")
    assert len(seen["grpo_sam"]) == 2 and len(seen["grpo_sam-n24"]) == 1
