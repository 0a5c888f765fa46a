"""End to end on CPU: the README's main command trains GRPO + SAM through verl's
own `main_ppo` with the project's reward, reward manager, trainer mode and SAM,
validates, checkpoints, and resumes from the checkpoint.

Minutes on 2 cores (Ray start-up and a dozen processes importing verl dominate).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

STEPS = 3


def launch(out, steps, *overrides):
    # the tiny model's scale: this checks the wiring, the miniature's learning is the tables' job
    cmd = [sys.executable, "-m", "recipes.launch", "--machine", "cpu", "--model", "tiny-sft", "--steps", str(steps),
           "--out", str(out), *overrides]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    log = (out / "train.log").read_text()
    assert "plugin failed to load" not in log
    metrics = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        metrics.setdefault(record["step"], {}).update(record["data"])
    return metrics, log


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    metrics, log = launch(out, STEPS, "--save-hf", "--seed", "3")
    return out, metrics, log


def test_grpo_sam_trains_and_validates(first_run):
    out, metrics, log = first_run
    assert sorted(metrics) == list(range(1, STEPS + 1))
    for step, data in metrics.items():
        # the project's pieces ran: reward extras reached the trainer mode, SAM reported
        for key in ("sam/masked_frac_pos", "sam/masked_frac_neg", "sam/step_acc",
                    "relevance/format_error_rate", "relevance/acc"):
            assert key in data, (step, sorted(data))
        # a step whose groups all got equal rewards has zero advantages and so no gradient
        # (seen on CI: every reward of step 1 was 0); any other step must move the actor
        no_signal = data["critic/advantages/max"] == data["critic/advantages/min"] == 0
        assert (data["actor/grad_norm"] == 0) if no_signal else (data["actor/grad_norm"] > 0), (step, data)
        # the old log-probs are the rollout's (verl's bypass mode, no recompute pass); the actor's
        # update checks them against its own log-probs of the same tokens, before it steps
        assert "timing_s/old_log_prob" not in data or data["timing_s/old_log_prob"] < 0.5, data
        assert abs(data["actor/rollout_corr/kl"]) < 0.01, data
        assert data["actor/rollout_corr/log_ppl_abs_diff"] < 0.05, data
    assert any(d["actor/grad_norm"] > 0 for d in metrics.values()), "no step moved the actor"
    assert any(d["sam/masked_frac"] > 0 for d in metrics.values()), "SAM never masked a token"
    assert "val-core/grm_relevance/acc/mean@1" in metrics[STEPS]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == STEPS and (out / "training_curves.png").stat().st_size > 0
    assert 0 < summary["prepare_s"] < summary["wall_s"]  # the driver's preparing, within the whole run


def test_weights_change_and_reach_the_rollout(first_run):
    _, _, log = first_run
    syncs = [ast.literal_eval(m) for m in re.findall(r"weight sync (\{.*?\})", log)]
    assert len(syncs) >= STEPS
    checksums = [s["checksum"] for s in syncs]
    assert len(set(checksums)) == len(checksums), "a training step did not change the rollout's weights"


def test_trained_actor_is_merged_into_a_hf_folder(first_run):
    """--save-hf: verl's model merger turns the last actor checkpoint into a loadable model."""
    import torch
    from transformers import AutoModelForCausalLM

    from model_zoo import resolve_model

    out, _, _ = first_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["hf_model"] == str(out / "hf")
    trained = AutoModelForCausalLM.from_pretrained(out / "hf", dtype=torch.float32)
    start = AutoModelForCausalLM.from_pretrained(resolve_model("tiny-sft"), dtype=torch.float32)
    a, b = trained.state_dict(), start.state_dict()
    assert a.keys() == b.keys()
    # the merger rounds to bf16: compare with the starting weights rounded alike
    assert any(not torch.equal(a[k], b[k].bfloat16().float()) for k in a), "the merged model has the starting weights"
    script = (out / "command.sh").read_text()
    assert "data.seed=3" in script and "actor_rollout_ref.rollout.seed=3" in script


def test_resume_from_checkpoint(first_run):
    out, _, _ = first_run
    assert (out / "checkpoints" / f"global_step_{STEPS}").is_dir()
    metrics, log = launch(out, STEPS + 1)
    # only the new step ran: training picked up at the saved step
    assert re.findall(r"\bstep:(\d+) - ", log) == [str(STEPS + 1)]
    assert f"global_step_{STEPS}" in log
    # one log over both attempts; the first attempt's console log is kept
    assert sorted(metrics) == list(range(1, STEPS + 2))
    assert (out / "train.1.log").exists() and not (out / "metrics.history.jsonl").exists()


def test_sigkill_then_the_same_command_resumes(tmp_path):
    """Kill the whole launch (driver, trainer, workers) with SIGKILL once step 2 is checkpointed and
    logged; make the next checkpoint look cut off mid-write; the same command again resumes
    from step 2 and the metrics log has every step once."""
    import os
    import signal
    import time

    steps = 4
    cmd = [sys.executable, "-m", "recipes.launch", "--machine", "cpu", "--model", "tiny-sft", "--steps", str(steps),
           "--out", str(tmp_path), "--seed", "5", "trainer.save_freq=1"]
    tracker = tmp_path / "checkpoints" / "latest_checkpointed_iteration.txt"
    with open(tmp_path / "first_attempt.log", "w") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline and proc.poll() is None:
            logged = (tmp_path / "metrics.jsonl").read_text() if (tmp_path / "metrics.jsonl").exists() else ""
            saved = tracker.read_text().strip() if tracker.exists() else ""
            # verl's file logger writes compact JSON ({"step":2,...}), unbuffered
            if saved.isdigit() and int(saved) >= 2 and re.search(r'"step":\s*2\b', logged):
                break
            time.sleep(0.2)
        assert proc.poll() is None, (tmp_path / "first_attempt.log").read_text()[-4000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # whatever came after step 2 is replaced by a checkpoint cut off while being written:
    # weights half there, no data loader state, the tracker truncated by verl's rewrite
    import shutil

    for later in range(3, steps + 1):
        shutil.rmtree(tmp_path / "checkpoints" / f"global_step_{later}", ignore_errors=True)
    partial = tmp_path / "checkpoints" / "global_step_3" / "actor"
    partial.mkdir(parents=True)
    (partial / "model_world_size_1_rank_0.pt").write_bytes(b"cut off")
    tracker.write_text("")

    metrics, log = launch(tmp_path, steps, "--seed", "5", "trainer.save_freq=1")
    assert "global_step_2" in log
    assert re.findall(r"\bstep:(\d+) - ", log) == ["3", "4"]
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    trained = [r["step"] for r in records if "actor/grad_norm" in r["data"]]
    assert trained == [1, 2, 3, 4]  # each step once, in order
    assert tracker.read_text().strip() == "4"
    assert "val-core/grm_relevance/acc/mean@1" in metrics[steps]


def test_two_fsdp_workers_train_grpo_sam(tmp_path):
    """The multi-worker path clusters use, on CPU: two FSDP2 workers over gloo train 2 GRPO + SAM
    steps. Each response's step data reaches the advantage of that same response: the estimator
    checks every row's length against the length its step ranges were mapped onto and stops the
    step on a mismatch (tests/test_sam_wiring.py shows it firing), so two trained steps with SAM's
    metrics mean no row got another's step data after dispatch to the two workers."""
    metrics, log = launch(tmp_path, 2, "--n-gpus", "2", "trainer.save_freq=2", "trainer.val_before_train=false",
                          "trainer.test_freq=-1")
    assert sorted(metrics) == [1, 2]
    for step, data in metrics.items():
        assert "sam/masked_frac" in data and "actor/grad_norm" in data, (step, sorted(data))
    assert any(d["sam/masked_frac"] > 0 for d in metrics.values()), "SAM never masked a token"
    assert "does not belong to the batch row" not in log
    # the actor really was sharded over two ranks
    shards = sorted(p.name for p in (tmp_path / "checkpoints" / "global_step_2" / "actor").glob("model_world_size_*"))
    assert shards == ["model_world_size_2_rank_0.pt", "model_world_size_2_rank_1.pt"], shards
