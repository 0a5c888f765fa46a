"""The tables runner's plan: stages, their order and inputs, and the commands they run."""

from __future__ import annotations

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
    per_seed = {"sft_label_only", "classifier", "student", *RL_RUNS}
    assert {s.model for s in matrix.stages.values() if s.seed == 1} == per_seed
    assert len(matrix.stages) == 4 + 2 * len(per_seed)


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
    assert {r["table"] for r in records} == {"main", "ablation", "distillation"}
    assert len(records) == 3 * len(SPLITS)
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
    assert keys[:4] == ["base", "warmup", "warmup_free", "warmup_paper"] and len(keys) == 4 + 3 + len(RL_RUNS)
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
