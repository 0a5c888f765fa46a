"""End to end: verl's stock ``main_ppo`` (v1 trainer) runs GRPO on CPU with the hf rollout.

About 2-3 minutes on 2 cores: Ray start-up and a dozen processes importing verl dominate.
"""

from __future__ import annotations

import ast
import re
import textwrap

import pytest
from main_ppo_runs import run_main_ppo

from verl_backend.overrides import backend_launch

pytestmark = pytest.mark.slow

STEPS = 2


def write_data(folder) -> None:
    import pandas as pd

    for split, n in (("train", 16), ("test", 4)):
        rows = [
            {
                "data_source": "tiny",
                "prompt": [{"role": "user", "content": f"query {i}: cheap hotel paris. note: rooms near the louvre"}],
                "ability": "relevance",
                "reward_model": {"style": "rule", "ground_truth": str(i % 5 - 1)},
                "extra_info": {"split": split, "index": i},
            }
            for i in range(n)
        ]
        pd.DataFrame(rows).to_parquet(folder / f"{split}.parquet")
    # Rewards with some spread, so GRPO advantages are not all zero.
    (folder / "reward_fn.py").write_text(textwrap.dedent("""
        def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs):
            score = float(len(solution_str) % 3 == 0)
            return {"score": score, "acc": score}
    """))


def test_main_ppo_trains_two_grpo_steps_on_cpu(tmp_path):
    model_zoo = pytest.importorskip("model_zoo")
    model = model_zoo.resolve_model("tiny")
    write_data(tmp_path)
    env, overrides = backend_launch("cpu", n_gpus=1)
    args = [
        "algorithm.adv_estimator=grpo",
        f"data.train_files={tmp_path / 'train.parquet'}",
        f"data.val_files={tmp_path / 'test.parquet'}",
        "data.train_batch_size=4",
        "data.max_prompt_length=64",
        "data.max_response_length=32",
        f"actor_rollout_ref.model.path={model}",
        "actor_rollout_ref.rollout.n=4",
        "actor_rollout_ref.actor.ppo_mini_batch_size=4",
        "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8",
        "actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu=16",
        "actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu=16",
        "actor_rollout_ref.actor.use_kl_loss=True",
        "actor_rollout_ref.actor.optim.lr=1e-3",
        f"reward.custom_reward_function.path={tmp_path / 'reward_fn.py'}",
        "reward.custom_reward_function.name=compute_score",
        f"trainer.total_training_steps={STEPS}",
        "trainer.val_before_train=False",
        "trainer.test_freq=-1",
        "trainer.save_freq=-1",
        "trainer.logger=[console,file]",
        *overrides,
    ]
    steps, text = run_main_ppo(args, env, tmp_path, timeout=900)
    assert sorted(steps) == list(range(1, STEPS + 1))
    for data in steps.values():
        assert data["timing_s/gen"] > 0 and data["perf/total_num_tokens"] > 0
        assert data["response_length/mean"] > 0
        # The old log-probs are the hf server's (verl's bypass mode); the actor checks them
        # against its own log-probs of the same tokens before it steps.
        assert abs(data["actor/rollout_corr/kl"]) < 0.01
        assert data["actor/rollout_corr/log_ppl_abs_diff"] < 0.05

    # The server logs each weight sync: one at start-up, then one after every step.
    syncs = [ast.literal_eval(m) for m in re.findall(r"weight sync (\{.*?\})", text)]
    assert len(syncs) >= STEPS, text[-3000:]
    assert [s["sync"] for s in syncs] == list(range(1, len(syncs) + 1))
    assert syncs[1]["checksum"] != syncs[0]["checksum"]  # the trained weights reached the rollout
    # 16 concurrent requests per step went through far fewer generate() calls.
    assert syncs[-1]["requests"] >= 16 and syncs[-1]["generate_calls"] * 4 <= syncs[-1]["requests"]
