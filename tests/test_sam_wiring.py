"""SAM wired into verl: recipes compose, start-up checks, the plugin in a Ray
actor, and the trainer mode's advantage step against a real TransferQueue."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from sam_advantage.config import SamConfigError, SamSettings, validate_run_config

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def recipe(name="grpo_sam", overrides=()):
    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        return compose(config_name=name, overrides=list(overrides))


def test_recipes_compose_with_verl_ppo_trainer():
    cfg = recipe("grpo_sam", ["algorithm.sam.variant=first_error",
                              "reward.custom_reward_function.reward_kwargs.variant=ordinal"])
    assert cfg.algorithm.adv_estimator == "sam"
    assert cfg.trainer.v1.trainer_mode == "sam"
    assert cfg.reward.reward_manager.name == "sam_steps"
    assert cfg.reward.custom_reward_function.path == "pkg://reward"
    assert cfg.reward.custom_reward_function.reward_kwargs.variant == "ordinal"
    # verl's own defaults are there underneath the recipe
    assert cfg.actor_rollout_ref.actor.ppo_epochs == 1
    assert validate_run_config(cfg) == SamSettings(variant="first_error")
    grpo = recipe("grpo")
    assert grpo.algorithm.adv_estimator == "grpo" and validate_run_config(grpo) is None


def test_paper_recipe_has_the_published_settings():
    cfg = recipe("grpo_sam_paper", ["data.train_batch_size=40"])
    actor, rollout = cfg.actor_rollout_ref.actor, cfg.actor_rollout_ref.rollout
    assert validate_run_config(cfg) == SamSettings(variant="paper", exclude_masked_from_loss=True)
    assert cfg.reward.custom_reward_function.reward_kwargs.criteria == "paper"
    assert not cfg.algorithm.use_kl_in_reward and not actor.use_kl_loss
    assert actor.ppo_mini_batch_size == 40  # mini-batch = batch
    assert (actor.clip_ratio_low, actor.clip_ratio_high) == (0.2, 0.28)
    assert actor.loss_agg_mode == "seq-mean-token-mean"
    assert rollout.n == 8 and rollout.temperature == 1.0
    assert (rollout.val_kwargs.temperature, rollout.val_kwargs.top_p, rollout.val_kwargs.do_sample) == (0.6, 0.95, True)
    # our reading on the same data: one override each
    ours = recipe("grpo_sam_paper", ["algorithm.sam.variant=symmetric", "algorithm.sam.exclude_masked_from_loss=false"])
    assert validate_run_config(ours) == SamSettings()


@pytest.mark.parametrize("overrides, message", [
    (["algorithm.adv_estimator=samm"], "not a registered advantage estimator"),
    (["algorithm.sam.exclude_masked_from_loss=maybe"], "must be true or false"),
    (["algorithm.sam.exclude_masked_from_loss=true", "actor_rollout_ref.actor.loss_agg_mode=mean"],
     "does not know actor_rollout_ref.actor.loss_agg_mode='mean'"),
    (["trainer.v1.trainer_mode=sync"], "trainer.v1.trainer_mode=sam"),
    (["reward.reward_manager.name=naive"], "reward.reward_manager.name=sam_steps"),
    (["algorithm.sam.variant=bogus"], "unknown SAM variant"),
    (["~algorithm.sam"], "needs an 'algorithm.sam' section"),
    (["trainer.use_v1=false"], "trainer.use_v1=true"),
])
def test_misconfigured_runs_fail_fast(overrides, message):
    with pytest.raises(SamConfigError, match=message):
        validate_run_config(recipe("grpo_sam", overrides))


@pytest.mark.parametrize("config, overrides, message", [
    # verl's own config, SAM asked for by one override
    ([], ["algorithm.adv_estimator=sam"], "needs an 'algorithm.sam' section"),
    ([], ["algorithm.adv_estimator=sam", "+algorithm.sam.variant=symmetric"], "trainer.v1.trainer_mode=sam"),
    ([], ["algorithm.adv_estimator=grpo_typo"], "not a registered advantage estimator"),
    # the project's recipe switched back to verl's stock trainer modes
    (["--config-path", str(RECIPES), "--config-name", "grpo_sam"], ["trainer.v1.trainer_mode=sync"],
     "trainer.v1.trainer_mode=sam"),
    (["--config-path", str(RECIPES), "--config-name", "grpo_sam"], ["trainer.use_v1=false"],
     "trainer.use_v1=true"),
])
def test_main_ppo_rejects_a_miswired_run_before_ray_starts(tmp_path, config, overrides, message):
    """The real `python -m verl.trainer.main_ppo`: the plugin's Hydra callback stops it in the driver."""
    proc = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", *config, *overrides,
                           f"hydra.run.dir={tmp_path}"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    assert "Config error" in out and message in out, out[-2000:]
    assert "ray init kwargs" not in out  # verl prints this just before ray.init()


def test_startup_check_passes_valid_runs_and_other_apps():
    from omegaconf import OmegaConf

    from sam_advantage.startup_check import SamStartupCheck, is_ppo_config, registered

    assert registered()
    check = SamStartupCheck()
    for name in ("grpo_sam", "grpo"):
        cfg = recipe(name)
        assert is_ppo_config(cfg)
        assert check.on_job_start(config=cfg, task_function=None) is None
    assert not is_ppo_config(OmegaConf.create({"algorithm": {"adv_estimator": "sam"}}))
    with pytest.raises(SystemExit, match="trainer.v1.trainer_mode=sam"):
        check.on_job_start(config=recipe("grpo_sam", ["trainer.v1.trainer_mode=sync"]), task_function=None)


@pytest.mark.parametrize("first_import", [
    "sam_advantage.core", "sam_advantage.trainer", "sam_advantage.plugin", "verl", "reward",
])
def test_registrations_hold_whatever_is_imported_first(first_import):
    code = (f"import {first_import}\n"
            "from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY\n"
            "from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY\n"
            "from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER\n"
            "assert 'sam' in ADV_ESTIMATOR_REGISTRY and 'sam' in TRAINER_REGISTRY\n"
            "assert 'sam_steps' in REWARD_MANAGER\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def ray_session():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"TOKENIZERS_PARALLELISM": "false"}})
    yield ray
    import transfer_queue as tq

    try:
        tq.close()
    finally:
        ray.shutdown()


def test_plugin_loads_in_a_ray_actor(ray_session):
    ray = ray_session

    @ray.remote(num_cpus=0)
    class Probe:
        def registered(self):
            # a fresh worker process: only the verl.plugins entry point can have registered these
            import verl  # noqa: F401
            from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
            from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
            from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

            return ("sam" in ADV_ESTIMATOR_REGISTRY, "sam" in TRAINER_REGISTRY,
                    "sam_steps" in REWARD_MANAGER, os.getpid())

    sam, mode, manager, pid = ray.get(Probe.remote().registered.remote())
    assert pid != os.getpid()
    assert sam and mode and manager


def _put_batch(tq, responses, partition="train"):
    """Write rollout outputs the way verl's agent loop does: one key per response."""
    from verl.utils.tensordict_utils import list_of_dict_to_tensordict

    keys, fields = [], []
    for i, r in enumerate(responses):
        keys.append(f"{r['uid']}_{i}_0")
        length = r["length"]
        scores = torch.zeros(length)
        scores[-1] = r["score"]
        fields.append({
            "uid": r["uid"],
            "response_mask": torch.ones(length, dtype=torch.int64),
            "rm_scores": scores,
            "old_log_probs": torch.zeros(length),
            "extra_fields": {"reward_extra_info": {
                "sam_token_ranges": json.dumps(r["ranges"]),
                "sam_step_correct": json.dumps(r["correct"]),
                "format_ok": r.get("format_ok", 1.0), "acc": float(r["score"]), "step_acc": 0.5,
                # what the reward manager records: the response tokens its ranges index
                "sam_response_tokens": r.get("tokens", length),
            }},
        })
    return tq.kv_batch_put(keys=keys, partition_id=partition, fields=list_of_dict_to_tensordict(fields))


@pytest.mark.parametrize("estimator", ["sam", "grpo"])
def test_trainer_mode_advantage_reads_transfer_queue(ray_session, estimator):
    import transfer_queue as tq
    from omegaconf import OmegaConf

    from sam_advantage.trainer import SamPPOTrainer

    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    # group "a": a right answer with a wrong step 1, a wrong answer with a correct step 0
    responses = [
        {"uid": f"a{estimator}", "length": 6, "score": 1.0, "ranges": [[0, 2], [2, 4]], "correct": [1, 0]},
        {"uid": f"a{estimator}", "length": 5, "score": 0.0, "ranges": [[0, 2], [2, 4]], "correct": [1, 0]},
    ]
    meta = _put_batch(tq, responses)
    trainer = object.__new__(SamPPOTrainer)  # only the advantage step is exercised
    trainer.config = recipe("grpo_sam" if estimator == "sam" else "grpo")
    metrics = {}
    trainer._compute_advantage(meta, metrics)

    out = tq.kv_batch_get(keys=meta.keys, partition_id="train", select_fields=["advantages"])
    adv = [torch.as_tensor(a) for a in out["advantages"]]
    a_pos = adv[0][-1].item()
    a_neg = adv[1][-1].item()
    assert a_pos > 0 > a_neg
    if estimator == "sam":
        assert adv[0].tolist() == pytest.approx([a_pos, a_pos, 0, 0, a_pos, a_pos])
        assert adv[1].tolist() == pytest.approx([0, 0, a_neg, a_neg, a_neg])
        assert metrics["sam/masked_frac_pos"] == pytest.approx(2 / 6)
        assert metrics["sam/masked_frac_neg"] == pytest.approx(2 / 5)
    else:  # plain GRPO: nothing masked
        assert adv[0].tolist() == pytest.approx([a_pos] * 6)
        assert adv[1].tolist() == pytest.approx([a_neg] * 5)
        assert not any(k.startswith("sam/") for k in metrics)
    assert metrics["relevance/format_error_rate"] == 0.0
    assert metrics["relevance/acc"] == 0.5
    tq.kv_clear(keys=meta.keys, partition_id="train")


def test_step_data_that_reached_another_response_is_refused(ray_session):
    """Step data recorded for a 5-token response arriving at a 6-token row (the extras re-ordered
    apart from the tensors) stops the step with a message naming the row."""
    import transfer_queue as tq
    from omegaconf import OmegaConf

    from sam_advantage.trainer import SamPPOTrainer

    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    responses = [
        {"uid": "swap", "length": 6, "tokens": 5, "score": 1.0, "ranges": [[0, 2], [2, 4]], "correct": [1, 0]},
        {"uid": "swap", "length": 5, "tokens": 6, "score": 0.0, "ranges": [[0, 2], [2, 4]], "correct": [1, 0]},
    ]
    meta = _put_batch(tq, responses)
    trainer = object.__new__(SamPPOTrainer)
    trainer.config = recipe("grpo_sam")
    with pytest.raises(RuntimeError, match="row 0 has 6 response tokens, its step data was computed for 5"):
        trainer._compute_advantage(meta, {})
    tq.kv_clear(keys=meta.keys, partition_id="train")


def test_poll_interval_reaches_verls_replay_buffer():
    """trainer.v1.sam.poll_interval_s is set on the buffer verl's own _build_replay_buffer makes."""
    from verl.trainer.ppo.v1.replay_buffer import ReplayBuffer

    from sam_advantage.trainer import SamPPOTrainer

    for overrides, expected in (([], 0.1), (["trainer.v1.sam.poll_interval_s=0.25"], 0.25)):
        trainer = SamPPOTrainer.__new__(SamPPOTrainer)  # no workers: only the buffer is built
        trainer.config = recipe("grpo_sam", overrides)
        buffer = trainer._build_replay_buffer()
        assert type(buffer) is ReplayBuffer and buffer.poll_interval == expected
    # what the key replaces: verl's own default (a 2 s floor under every generation)
    import inspect
    assert inspect.signature(ReplayBuffer.__init__).parameters["poll_interval"].default == 2.0


@pytest.mark.parametrize("value", ["0", "-1"])
def test_poll_interval_must_be_positive(value):
    with pytest.raises(SamConfigError, match="poll_interval_s must be > 0"):
        validate_run_config(recipe("grpo", [f"trainer.v1.sam.poll_interval_s={value}"]))


def test_poll_interval_setter_refuses_a_foreign_buffer():
    from verl_backend.patches import set_replay_buffer_poll_interval

    with pytest.raises(RuntimeError, match="no poll_interval"):
        set_replay_buffer_poll_interval(object(), 0.1)


def test_trainer_mode_runs_the_paper_recipe(ray_session):
    """variant paper, masked tokens out of the seq-mean-token-mean denominator, malformed left unmasked."""
    import transfer_queue as tq
    from omegaconf import OmegaConf

    from sam_advantage.trainer import SamPPOTrainer

    tq.init(OmegaConf.create({"backend": {"SimpleStorage": {"num_data_storage_units": 1}}}))
    # steps: initial label [0, 2), calibrated label [2, 4); the answer after them
    responses = [
        # right, initial label wrong but calibrated right: repaired, nothing masked
        {"uid": "p", "length": 6, "score": 1.0, "ranges": [[0, 2], [2, 4]], "correct": [0, 1]},
        # right, calibration wrong: it is masked, 2 of 6 tokens
        {"uid": "p", "length": 6, "score": 1.0, "ranges": [[0, 2], [2, 4]], "correct": [1, 0]},
        # wrong, initial label right: it is masked, 2 of 5 tokens
        {"uid": "p", "length": 5, "score": 0.0, "ranges": [[0, 2], [2, 4]], "correct": [1, 0]},
        # wrong and malformed, a right step: the authors leave malformed responses unmasked
        {"uid": "p", "length": 5, "score": 0.0, "ranges": [[0, 2], [2, 4]], "correct": [1, 0], "format_ok": 0.0},
    ]
    meta = _put_batch(tq, responses, partition="paper")
    trainer = object.__new__(SamPPOTrainer)
    trainer.config = recipe("grpo_sam_paper")
    metrics = {}
    trainer._compute_advantage(meta, metrics)
    out = tq.kv_batch_get(keys=meta.keys, partition_id="paper", select_fields=["advantages"])
    adv = [torch.as_tensor(a).tolist() for a in out["advantages"]]
    a_pos, a_neg = adv[0][-1], adv[3][-1]
    assert a_pos > 0 > a_neg
    assert adv[0] == pytest.approx([a_pos] * 6)
    # kept tokens rescaled by L / L_kept, so the sequence's token mean runs over its kept tokens
    assert adv[1] == pytest.approx([a_pos * 6 / 4] * 2 + [0, 0] + [a_pos * 6 / 4] * 2)
    assert adv[2] == pytest.approx([0, 0] + [a_neg * 5 / 3] * 3)
    assert adv[3] == pytest.approx([a_neg] * 5)
    assert metrics["sam/masked_frac_pos"] == pytest.approx(2 / 12)
    assert metrics["sam/masked_frac_neg"] == pytest.approx(2 / 10)
    tq.kv_clear(keys=meta.keys, partition_id="paper")


def test_importing_verl_leaves_sam_unloaded_until_verl_needs_it():
    """The plugin loads in every process that imports verl; only the processes that import the verl
    module SAM extends pay for SAM's part (estimator, reward manager, trainer mode)."""
    code = ("import sys, verl\n"
            "ours = ('sam_advantage.estimator', 'sam_advantage.reward_manager', 'sam_advantage.trainer', 'pandas')\n"
            "assert not [m for m in ours if m in sys.modules], [m for m in ours if m in sys.modules]\n"
            "import verl.trainer.ppo.core_algos\n"
            "assert 'sam_advantage.estimator' in sys.modules and 'sam_advantage.trainer' not in sys.modules\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
