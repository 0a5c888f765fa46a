"""End to end on CPU: the paper recipe (`grpo_sam_paper`: variant paper, masked tokens out of the
loss, the paper criteria, the published settings) through verl's stock `main_ppo`, 3 steps with
the tiny model and short responses.

A few minutes on 2 cores (Ray start-up and a dozen processes importing verl dominate).
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from main_ppo_runs import run_main_ppo

from verl_backend.overrides import backend_launch

pytestmark = pytest.mark.slow

STEPS = 3
RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def write_paper_data(folder: Path) -> Path:
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark, rows_for_criteria
    from data_prep.criteria import load_criteria
    from data_prep.writer import write_splits

    cfg = BenchmarkConfig(seed=0, train_size=40, val_size=8, test_random_size=4, test_longtail_size=8,
                          sft_size=0, criteria="paper", progress=False)
    summary = write_splits(rows_for_criteria(generate_benchmark(cfg), load_criteria("paper")), folder,
                           criteria="paper")
    assert summary["rows_rejected"] == 0
    return folder


def test_paper_recipe_trains_through_main_ppo(tmp_path):
    model_zoo = pytest.importorskip("model_zoo")
    model = model_zoo.resolve_model("tiny")
    data = write_paper_data(tmp_path / "data")
    env, overrides = backend_launch("cpu", n_gpus=1)
    args = [
        "--config-path", str(RECIPES), "--config-name", "grpo_sam_paper",
        f"data.train_files={data / 'train.parquet'}",
        f"data.val_files={data / 'val.parquet'}",
        "data.train_batch_size=2",  # mini-batch = batch comes from the recipe
        "actor_rollout_ref.rollout.n=4",  # the recipe's 8, halved to keep the test cheap
        "data.max_prompt_length=1024",
        "data.max_response_length=16",
        f"actor_rollout_ref.model.path={model}",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.actor.optim.lr=1e-3",
        f"trainer.total_training_steps={STEPS}",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.logger=[console,file]",
        f"trainer.default_local_dir={tmp_path / 'checkpoints'}",
        *overrides,
    ]
    steps, _ = run_main_ppo(args, env, tmp_path, timeout=2400)
    assert sorted(steps) == list(range(1, STEPS + 1))
    for step, data in steps.items():
        for key in ("sam/masked_frac_pos", "sam/masked_frac_neg", "sam/masked_frac", "relevance/format_error_rate"):
            assert key in data and 0.0 <= data[key] <= 1.0, (step, key, sorted(data))
        assert math.isfinite(data["actor/pg_loss"]), (step, data["actor/pg_loss"])
        assert data["response_length/mean"] > 0
