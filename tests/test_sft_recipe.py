"""The SFT warm-up through verl's own SFT trainer (torchrun, FSDP2 over gloo) on CPU.

`python -m recipes.sft` trains the tiny model for a few steps on the benchmark's reasoning
traces, merges the checkpoint with verl's model merger, and the merged folder loads and
generates with plain transformers. About a minute on 2 cores.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from recipes.sft import CONFIG_NAME, RECIPES, build_label_only
from verl_backend.overrides import sft_backend_overrides

STEPS = 5


def test_recipe_composes_verl_sft_config():
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        cfg = compose(config_name=CONFIG_NAME, overrides=sft_backend_overrides("cpu"))
    assert cfg.data.messages_key == "messages" and cfg.data.max_length == 1536
    assert cfg.trainer.logger == ["console", "file"]
    assert cfg.engine.strategy == "fsdp2" and cfg.trainer.device == "cpu"
    assert cfg.model.override_config.attn_implementation == "sdpa"
    assert cfg.engine._target_ == "verl.workers.config.FSDPEngineConfig"  # verl's own defaults underneath


def test_cpu_patch_starts_the_sft_process_group_with_gloo():
    """verl's initialize_global_process_group asks for "cpu:gloo,cpu:gloo" on CPU; the patch uses gloo."""
    import os

    from verl_backend.overrides import backend_env

    code = (
        "import json, os, socket, torch\n"
        "import verl.utils.distributed as d\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]; s.close()\n"
        "os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), RANK='0', WORLD_SIZE='1', LOCAL_RANK='0')\n"
        "ranks = d.initialize_global_process_group(timeout_second=60)\n"
        "print(json.dumps({'patched': hasattr(d.initialize_global_process_group, '__wrapped__'),\n"
        "                  'backend': torch.distributed.get_backend(), 'ranks': list(ranks)}))\n"
        "d.destroy_global_process_group()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERL_")}
    env.update(HF_HUB_OFFLINE="1", **backend_env("cpu"))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"patched": True, "backend": "gloo", "ranks": [0, 0, 1]}


def test_label_only_data(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    prompt = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]
    rows = [{"prompt": prompt, "reward_model": {"style": "rule", "ground_truth": g},
             "extra_info": {"criteria": "default", "index": i}} for i, g in enumerate(["-1", "3"])]
    src = tmp_path / "train.parquet"
    pq.write_table(pa.Table.from_pylist(rows), src)
    out = pq.read_table(build_label_only(src, tmp_path / "lo.parquet")).to_pylist()
    assert [r["messages"][-1] for r in out] == [{"role": "assistant", "content": "<answer>-1</answer>"},
                                                {"role": "assistant", "content": "<answer>3</answer>"}]
    assert out[0]["messages"][:2] == prompt


def test_enough_epochs_for_the_steps_asked_for(tmp_path):
    """verl's SFT trainer ends with its last epoch, saving nothing, even before total_training_steps."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from recipes.sft import run_sft

    messages = [{"role": "user", "content": "u"}, {"role": "assistant", "content": "<answer>1</answer>"}]
    src = tmp_path / "small.parquet"
    pq.write_table(pa.Table.from_pylist([{"messages": messages}] * 22), src)  # 5 batches of 4 per epoch
    for steps, epochs in ((5, 1), (6, 2), (200, 40)):
        cmd = run_sft("tiny", src, tmp_path / f"run{steps}", steps=steps, machine="cpu", dry_run=True)["command"]
        assert f"trainer.total_epochs={epochs}" in cmd and f"trainer.total_training_steps={steps}" in cmd
    cmd = run_sft("tiny", src, tmp_path / "run8", steps=8, machine="cpu", dry_run=True,
                  overrides=["data.train_batch_size=11"])["command"]  # 2 batches per epoch
    assert "trainer.total_epochs=4" in cmd


@pytest.mark.slow
def test_sft_warmup_runs_on_cpu_and_merges(tmp_path):
    out = tmp_path / "sft"
    cmd = [sys.executable, "-m", "recipes.sft", "--machine", "cpu", "--model", "tiny", "--steps", str(STEPS),
           "--out", str(out), "--threads", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]
    assert "plugin failed to load" not in (out / "train.log").read_text()

    losses = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "train/loss" in record["data"]:
            losses[record["step"]] = record["data"]["train/loss"]
    assert sorted(losses) == list(range(1, STEPS + 1))
    assert all(math.isfinite(v) for v in losses.values())
    assert losses[STEPS] < losses[1], losses  # lr 3e-3 on the random tiny model: loss falls every step
    assert (out / "checkpoints" / f"global_step_{STEPS}").is_dir()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf = out / "hf"
    model = AutoModelForCausalLM.from_pretrained(hf)
    tok = AutoTokenizer.from_pretrained(hf)
    assert model.dtype == torch.float32  # re-saved in the base model's dtype
    ids = tok.apply_chat_template([{"role": "user", "content": "Judge the relevance."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        gen = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert gen.shape[1] > ids.shape[1]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == STEPS and summary["hf_model"] == str(hf)
