"""verl_backend: CPU platform, hf rollout, patches and overrides.

The plugin tests run in subprocesses: verl loads plugins once per process, at import.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from verl_backend import overrides
from verl_backend.hf_engine import HFGenerateEngine, SamplingKey
from verl_backend.patches import SUPPORTED_VERL_VERSION, require_supported_verl

PLUGIN_ENV_KEYS = ("VERL_PLATFORM", "VERL_USE_EXTERNAL_MODULES", "VERL_ENGINE_DEVICE")


# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_path():
    model_zoo = pytest.importorskip("model_zoo")
    return str(model_zoo.resolve_model("tiny"))


@pytest.fixture(scope="module")
def tokenizer(tiny_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_path)


def load_model(path, seed=None):
    """The tiny model in float32 (exact comparisons); ``seed`` re-initialises its weights."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if seed is None:
        return AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, attn_implementation="sdpa")
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(path)
    return AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa")


def make_engine(model, tokenizer, **kwargs):
    kwargs.setdefault("batch_wait_s", 0.05)
    return HFGenerateEngine(
        model, stop_token_ids=[tokenizer.eos_token_id], pad_token_id=tokenizer.pad_token_id, **kwargs
    )


@pytest.fixture(scope="module")
def prompts(tokenizer):
    """Chat prompts of different lengths (exercises left padding)."""
    texts = ["cheap hotel paris", "a note about running shoes for flat feet and long runs", "苹果", "x " * 12]
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=True,
                                      return_dict=False)
        for t in texts
    ]


GREEDY = SamplingKey.from_params({"temperature": 0})


async def gather_generate(engine, prompts, key, max_tokens, want_log_probs=False):
    return await asyncio.gather(*(engine.generate(p, key, max_tokens, want_log_probs) for p in prompts))


# --- sampling settings -------------------------------------------------------------------------


def test_sampling_key_follows_vllm_conventions():
    assert SamplingKey.from_params({"temperature": 0, "top_k": 5, "top_p": 0.5}) == SamplingKey(0.0, 1.0, 0, 1.0)
    assert SamplingKey.from_params({"temperature": 0.7, "top_k": -1, "top_p": 0.9}) == SamplingKey(0.7, 0.9, 0, 1.0)
    assert SamplingKey.from_params({}).greedy is False
    assert GREEDY.greedy


# --- batching ---------------------------------------------------------------------------------------


def test_concurrent_requests_share_one_generate_call(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer)
    many = prompts * 4  # 16 requests
    asyncio.run(gather_generate(engine, many, GREEDY, 6))
    assert engine.stats.generate_calls == 1
    assert engine.stats.batch_sizes == [len(many)]


def test_sequential_requests_and_mixed_settings_are_separate_calls(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer, batch_wait_s=0.0)

    async def scenario():
        for p in prompts[:3]:
            await engine.generate(p, GREEDY, 4)
        sampled = SamplingKey.from_params({"temperature": 1.0})
        await asyncio.gather(*(engine.generate(p, GREEDY if i % 2 else sampled, 4) for i, p in enumerate(prompts)))

    asyncio.run(scenario())
    assert engine.stats.batch_sizes == [1, 1, 1, 2, 2]


def test_max_batch_size_splits_batches(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer, max_batch_size=3)
    asyncio.run(gather_generate(engine, prompts * 2, GREEDY, 4))
    assert sorted(engine.stats.batch_sizes) == [2, 3, 3]


@pytest.mark.parametrize("samples_per_prompt, batches", [(3, [6]), (1, [2, 4])])
def test_a_pause_inside_a_group_does_not_cut_the_batch(tiny_path, tokenizer, prompts, samples_per_prompt, batches):
    engine = make_engine(load_model(tiny_path), tokenizer, batch_wait_s=2.0, arrival_gap_s=0.02,
                         samples_per_prompt=samples_per_prompt)
    a, b = prompts[0], prompts[1]

    async def scenario():
        first = [asyncio.create_task(engine.generate(a, GREEDY, 3)) for _ in range(2)]
        await asyncio.sleep(0.2)  # ten quiet gaps, with prompt a's third sample still to come
        rest = [engine.generate(p, GREEDY, 3) for p in (a, b, b, b)]
        return await asyncio.gather(*first, *rest)

    asyncio.run(scenario())
    assert engine.stats.batch_sizes == batches


def test_a_validation_burst_closes_after_the_quiet_gap(tiny_path, tokenizer, prompts):
    import time

    engine = make_engine(load_model(tiny_path), tokenizer, batch_wait_s=5.0, arrival_gap_s=0.02, samples_per_prompt=8)
    start = time.perf_counter()
    asyncio.run(gather_generate(engine, prompts, GREEDY, 2))  # each prompt once: nothing to wait for
    assert engine.stats.batch_sizes == [len(prompts)] and time.perf_counter() - start < 2.5


def test_sample_groups_of_a_batch():
    from verl_backend.hf_engine import _Request, sample_groups

    request = lambda ids: _Request(list(ids), GREEDY, 4, False, None)  # noqa: E731
    a, b, c = request([1, 2]), request([3]), request([1, 2])
    d = request([3])
    assert sample_groups([a, b, c, d]) == ([0, 2, 1, 3], [a, b], 2)  # interleaved arrivals, grouped
    assert sample_groups([a, b, c]) == ([0, 1, 2], [a, b, c], 1)  # unequal groups: no sharing
    assert sample_groups([a, b]) == ([0, 1], [a, b], 1)


def test_samples_of_one_prompt_are_decoded_from_one_cached_prompt(tiny_path, tokenizer, prompts, monkeypatch):
    import verl_backend.hf_engine as engine_module

    engine = make_engine(load_model(tiny_path), tokenizer)
    calls = []
    real = engine_module.decode
    monkeypatch.setattr(engine_module, "decode", lambda *a, **k: calls.append((a[1].shape[0], k["samples"]))
                        or real(*a, **k))
    grouped = asyncio.run(gather_generate(engine, prompts * 3, GREEDY, 10, want_log_probs=True))
    assert calls == [(len(prompts), 3)]  # one call, each prompt once
    alone = [asyncio.run(make_engine(engine.model, tokenizer).generate(p, GREEDY, 10, True)) for p in prompts]
    for i, completion in enumerate(grouped):  # every request gets its own prompt's continuation
        assert completion.token_ids == alone[i % len(prompts)].token_ids
        assert completion.log_probs == pytest.approx(alone[i % len(prompts)].log_probs, abs=1e-4)


# --- outputs ------------------------------------------------------------------------------------------


def test_greedy_is_deterministic_and_padding_does_not_change_it(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer)
    batched = asyncio.run(gather_generate(engine, prompts, GREEDY, 12))
    again = asyncio.run(gather_generate(make_engine(engine.model, tokenizer), prompts, GREEDY, 12))
    alone = [asyncio.run(make_engine(engine.model, tokenizer).generate(p, GREEDY, 12)) for p in prompts]
    assert [c.token_ids for c in batched] == [c.token_ids for c in again] == [c.token_ids for c in alone]
    assert all(c.stop_reason == "completed" for c in batched)


def test_max_tokens_is_honoured_per_request(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer)

    async def scenario():
        limits = (1, 3, 7, 0)
        return await asyncio.gather(*(engine.generate(p, GREEDY, n) for p, n in zip(prompts, limits, strict=True)))

    out = asyncio.run(scenario())
    assert [len(c.token_ids) for c in out] == [1, 3, 7, 0]
    assert engine.stats.batch_sizes == [3]  # max_tokens=0 never reaches the model


def test_output_ends_at_the_first_stop_token(tiny_path, tokenizer, prompts):
    model = load_model(tiny_path)
    everything_stops = HFGenerateEngine(model, stop_token_ids=range(model.config.vocab_size), pad_token_id=0)
    out = asyncio.run(gather_generate(everything_stops, prompts, GREEDY, 8))
    assert all(len(c.token_ids) == 1 for c in out)


def test_top_k_one_and_tiny_top_p_sample_the_argmax(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer)
    greedy = asyncio.run(gather_generate(engine, prompts, GREEDY, 10))
    for params in ({"temperature": 1.5, "top_k": 1}, {"temperature": 1.5, "top_p": 1e-9}):
        sampled = asyncio.run(gather_generate(make_engine(engine.model, tokenizer), prompts,
                                              SamplingKey.from_params(params), 10))
        assert [c.token_ids for c in sampled] == [c.token_ids for c in greedy], params


def test_temperature_changes_the_samples(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer)
    torch.manual_seed(0)
    hot = asyncio.run(gather_generate(engine, prompts * 2, SamplingKey.from_params({"temperature": 5.0}), 10))
    greedy = asyncio.run(gather_generate(make_engine(engine.model, tokenizer), prompts * 2, GREEDY, 10))
    assert [c.token_ids for c in hot] != [c.token_ids for c in greedy]


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_log_probs_match_a_teacher_forced_forward(tiny_path, tokenizer, prompts, temperature):
    engine = make_engine(load_model(tiny_path), tokenizer)
    key = SamplingKey.from_params({"temperature": temperature})
    out = asyncio.run(gather_generate(engine, prompts, key, 9, want_log_probs=True))
    scale = temperature or 1.0  # verl's actor divides logits by the rollout temperature
    for prompt, completion in zip(prompts, out, strict=True):
        ids = torch.tensor([prompt + completion.token_ids])
        with torch.no_grad():
            logits = engine.model(ids).logits[0, len(prompt) - 1 : -1].float() / scale
        expected = torch.log_softmax(logits, -1).gather(-1, ids[0, len(prompt):, None]).squeeze(-1)
        assert len(completion.log_probs) == len(completion.token_ids) > 0
        assert torch.allclose(torch.tensor(completion.log_probs), expected, atol=1e-4)
    plain = asyncio.run(make_engine(engine.model, tokenizer).generate(prompts[0], key, 3))
    assert plain.log_probs is None


def test_abort_returns_partial_output_and_resume_serves_again(tiny_path, tokenizer, prompts):
    # A stop id that never occurs: only max_tokens or the abort can end the generation.
    engine = HFGenerateEngine(load_model(tiny_path), stop_token_ids=[10**9], pad_token_id=0, batch_wait_s=0.0)

    async def scenario():
        task = asyncio.create_task(engine.generate(prompts[0], GREEDY, 3000))
        await asyncio.sleep(0.5)
        await engine.abort_all()
        partial = await task
        engine.resume()
        after = await engine.generate(prompts[0], GREEDY, 4)
        return partial, after

    partial, after = asyncio.run(scenario())
    assert partial.stop_reason == "aborted" and 0 < len(partial.token_ids) < 3000
    assert after.stop_reason == "completed" and len(after.token_ids) == 4


# --- weight sync --------------------------------------------------------------------------------------


def test_weight_update_changes_what_the_rollout_generates(tiny_path, tokenizer, prompts):
    engine = make_engine(load_model(tiny_path), tokenizer)
    other = load_model(tiny_path, seed=1)
    original = {k: v.clone() for k, v in engine.model.state_dict().items()}

    def sync(state):
        engine.begin_weight_update()
        engine.load_weights(state.items())
        engine.finish_weight_update()

    def greedy():
        return [c.token_ids for c in asyncio.run(gather_generate(make_engine(engine.model, tokenizer), prompts,
                                                                 GREEDY, 10))]

    before = greedy()
    sync({k: v.to(torch.bfloat16) for k, v in other.state_dict().items()})  # cast like the adapter does
    after = greedy()
    other_own = [c.token_ids for c in asyncio.run(gather_generate(make_engine(other, tokenizer), prompts,
                                                                  GREEDY, 10))]
    sync(original)
    assert after != before
    assert after[0][:3] == other_own[0][:3]  # bf16 rounding may flip late near-ties only
    assert greedy() == before
    assert engine.stats.weight_syncs == 2


def test_weight_update_rejects_unknown_or_missing_tensors(tiny_path, tokenizer):
    engine = make_engine(load_model(tiny_path), tokenizer)
    state = dict(engine.model.state_dict())
    engine.begin_weight_update()
    engine.load_weights([(k, v) for k, v in state.items() if "layers.1." not in k])
    with pytest.raises(RuntimeError, match="not updated"):
        engine.finish_weight_update()
    engine.begin_weight_update()
    engine.load_weights([*state.items(), ("model.no_such.weight", torch.zeros(1))])
    with pytest.raises(RuntimeError, match="unknown"):
        engine.finish_weight_update()


# --- the verl-facing server -------------------------------------------------------------------------


def test_server_speaks_verls_token_interface(tiny_path):
    from verl.workers.config import HFModelConfig, RolloutConfig

    from verl_backend.hf_server import HFRolloutServer

    config = RolloutConfig(name="hf", prompt_length=64, response_length=5, dtype="float32",
                           engine_kwargs={"hf": {"batch_wait_ms": 20, "num_threads": 1}})
    server = HFRolloutServer(config, HFModelConfig(path=tiny_path), device="cpu")
    prompt = [3, 1, 20, 30, 40, 2]

    async def scenario():
        sampled = await server.generate(prompt, {"temperature": 1.0, "top_k": -1, "top_p": 1.0, "logprobs": True},
                                        request_id="a")
        short = await server.generate(prompt, {"temperature": 0, "logprobs": False, "max_tokens": 2}, "b")
        await server.begin_weight_update()
        await server.load_weights(list(server.engine.model.state_dict().items()))
        summary = await server.finish_weight_update(global_steps=3)
        after = await server.generate(prompt, {"temperature": 0}, "c")
        return sampled, short, summary, after

    sampled, short, summary, after = asyncio.run(scenario())
    assert len(sampled.token_ids) <= 5 and len(sampled.log_probs) == len(sampled.token_ids)
    assert len(short.token_ids) <= 2 and short.log_probs is None
    assert summary["sync"] == 1 and summary["global_steps"] == 3
    assert after.extra_fields["global_steps"] == 3
    assert server.get_stats()["requests"] == 3


def test_server_picks_the_trainer_workers_gpu_by_index(monkeypatch):
    from verl_backend.hf_server import cuda_index_of

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert cuda_index_of("3") == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert cuda_index_of("6") == 2
    with pytest.raises(RuntimeError, match="not visible"):
        cuda_index_of("1")


# --- plugin, platform, patches (fresh processes) ------------------------------------------------------


def run_python(*code: str, **env) -> subprocess.CompletedProcess:
    """Run code pieces (each dedented) in a fresh interpreter, without the backend's env vars unless given."""
    clean = {k: v for k, v in os.environ.items() if k not in PLUGIN_ENV_KEYS}
    clean.update({"HF_HUB_OFFLINE": "1", **env})
    source = "".join(textwrap.dedent(piece) for piece in code)
    return subprocess.run([sys.executable, "-c", source], env=clean, capture_output=True, text=True, timeout=300)


def last_json(proc: subprocess.CompletedProcess) -> dict:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


PROBE = """
    import json
    from verl.plugin.platform import PlatformRegistry, get_platform
    from verl.workers.rollout.base import get_rollout_class
    from verl.workers.rollout.replica import RolloutReplicaRegistry
    import verl.workers.engine_workers as ew
    import verl.workers.engine.fsdp.transformer_impl as ti
    from verl.workers.engine.base import EngineRegistry
    from verl_backend.patches import applied_patches
    result = {
        "platforms": list(PlatformRegistry.registered_names()),
        "patches": sorted(applied_patches()),
        "pg_patched": hasattr(ew.initialize_global_process_group_ray, "__wrapped__"),
        "offload_patched": hasattr(ti.CPUOffloadPolicy, "__wrapped__"),
        "adapter": get_rollout_class("hf").__name__,
        "replica": RolloutReplicaRegistry.get("hf").__name__,
    }
"""


def test_without_selection_nothing_is_patched_and_hf_is_only_registered():
    result = last_json(run_python(PROBE, "print(json.dumps(result))"))
    assert "cpu" not in result["platforms"]
    assert not result["pg_patched"] and not result["offload_patched"]
    assert result["patches"] == ["rollout_adapter:hf"]
    assert (result["adapter"], result["replica"]) == ("HFServerAdapter", "HFReplica")


def test_verl_platform_cpu_selects_the_cpu_platform_and_patches():
    code = """
    import os, socket, torch
    from verl.utils.device import get_device_name, get_nccl_backend, get_torch_device, get_device_id
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0", WORLD_SIZE="1")
    ew.initialize_global_process_group_ray(timeout_second=60)
    t = torch.ones(2); torch.distributed.all_reduce(t)
    dev = get_torch_device(); dev.empty_cache(); dev.synchronize()
    result.update(
        platform=type(get_platform()).__name__, device=get_device_name(), backend=get_nccl_backend(),
        dist_backend=torch.distributed.get_backend(), device_id=str(get_device_id()),
        pin_memory=ti.CPUOffloadPolicy(pin_memory=True).pin_memory, mem=dev.mem_get_info()[1] > 0,
        engine_device=os.environ.get("VERL_ENGINE_DEVICE"),
        engine=EngineRegistry.get_engine_cls("language_model", "fsdp2").__name__,
    )
    print(json.dumps(result))
    """
    proc = run_python(PROBE, code, **overrides.backend_env("cpu"))
    result = last_json(proc)
    assert "plugin failed to load" not in proc.stderr
    assert result["platform"] == "CPUPlatform" and result["device"] == "cpu"
    assert result["backend"] == result["dist_backend"] == "gloo"
    assert result["device_id"] == "cpu" and result["mem"]
    assert result["pg_patched"] and result["offload_patched"] and result["pin_memory"] is False
    # verl's FSDP engine with the LM head on response positions, registered when verl imports it
    assert result["engine_device"] == "cpu" and result["engine"] == "CPULMHeadEngine"


def test_version_guard():
    require_supported_verl(SUPPORTED_VERL_VERSION)
    with pytest.raises(RuntimeError, match=r"verl==0\.9\.1 only"):
        require_supported_verl("0.10.0")


def test_wrong_verl_version_fails_loudly_and_patches_nothing():
    code = """
    import importlib.metadata as md
    real = md.version
    md.version = lambda name: "0.10.0" if name == "verl" else real(name)
    import json
    import verl
    from verl.plugin.platform import PlatformRegistry
    import verl.workers.engine_workers as ew
    print(json.dumps({"platforms": list(PlatformRegistry.registered_names()),
                      "pg_patched": hasattr(ew.initialize_global_process_group_ray, "__wrapped__")}))
    """
    proc = run_python(code, VERL_PLATFORM="cpu")
    result = last_json(proc)
    assert "cpu" not in result["platforms"] and not result["pg_patched"]
    assert "verl_backend plugin failed to load" in proc.stderr
    assert "supports verl==0.9.1 only" in proc.stderr


# --- overrides ----------------------------------------------------------------------------------------


def test_overrides_per_machine(monkeypatch):
    monkeypatch.delenv("VERL_USE_EXTERNAL_MODULES", raising=False)
    assert overrides.backend_overrides("vllm") == [] and overrides.backend_env("vllm") == {}
    gpu = overrides.backend_overrides("gpu", n_gpus=2)
    assert "actor_rollout_ref.rollout.name=hf" in gpu and "trainer.n_gpus_per_node=2" in gpu
    assert not any("ray_kwargs" in o or "trainer.device" in o for o in gpu)
    assert overrides.backend_env("gpu") == {}
    cpu = overrides.backend_overrides("cpu", n_gpus=2)
    for expected in ("actor_rollout_ref.rollout.name=hf", "+ray_kwargs.ray_init.num_gpus=2",
                     "trainer.n_gpus_per_node=2", "ray_kwargs.ray_init.num_cpus=32",
                     "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
                     "actor_rollout_ref.actor.strategy=fsdp2",
                     "+actor_rollout_ref.model.override_config.attn_implementation=sdpa"):
        assert expected in cpu
    assert "+ray_kwargs.ray_init.runtime_env.env_vars.VERL_PLATFORM='cpu'" in cpu  # a string for Ray
    # the CPU speed settings apply on the cpu machine only: GPU runs keep verl's defaults
    assert set(overrides.CPU_SPEED_OVERRIDES) <= set(cpu)
    assert not set(overrides.CPU_SPEED_OVERRIDES) & set(gpu)
    env = overrides.backend_env("cpu")
    assert env["VERL_PLATFORM"] == "cpu" and env["VERL_ENGINE_DEVICE"] == "cpu"
    # TransferQueue's thread count: its default capped at the cores (no warning per call), or the user's
    import psutil

    monkeypatch.delenv("TQ_NUM_THREADS", raising=False)
    assert int(overrides.backend_env("cpu")["TQ_NUM_THREADS"]) == min(8, psutil.cpu_count(logical=False) or 1)
    monkeypatch.setenv("TQ_NUM_THREADS", "3")
    assert overrides.backend_env("cpu")["TQ_NUM_THREADS"] == "3"
    monkeypatch.setenv("VERL_USE_EXTERNAL_MODULES", "a.b,verl_backend.plugin")
    assert overrides.backend_env("cpu")["VERL_USE_EXTERNAL_MODULES"] == "verl_backend.plugin,a.b"
    assert "+ray_kwargs.ray_init.runtime_env.env_vars.VERL_USE_EXTERNAL_MODULES='verl_backend.plugin,a.b'" in (
        overrides.backend_overrides("cpu"))
    with pytest.raises(ValueError):
        overrides.backend_overrides("tpu")


def test_cpu_speed_overrides_compose_into_verls_config():
    """Every CPU speed override is a key verl reads, with the value it needs, in the composed config."""
    from hydra import compose, initialize_config_dir
    from verl.utils.config import omega_conf_to_dataclass

    recipes = Path(__file__).resolve().parents[1] / "recipes"
    with initialize_config_dir(config_dir=str(recipes), version_base=None):
        cfg = compose(config_name="grpo_sam", overrides=overrides.backend_overrides("cpu") + [
            "actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu=8"])
    arr = cfg.actor_rollout_ref
    assert arr.rollout.dtype == "float32"
    for role in (arr.actor, arr.ref):
        assert dict(role.fsdp_config.mixed_precision) == dict.fromkeys(
            ("param_dtype", "reduce_dtype", "buffer_dtype"), "fp32")
        assert role.fsdp_config.use_torch_compile is False
    assert arr.model.enable_gradient_checkpointing is False
    assert cfg.algorithm.rollout_correction.bypass_mode is True
    actor = omega_conf_to_dataclass(arr.actor)
    # verl's bypass loss is PPO-clip with no IS weights and no rejection: the vanilla loss
    assert actor.policy_loss.loss_mode == "bypass_mode" and actor.calculate_entropy is True
    assert actor.policy_loss.rollout_correction.loss_type == "ppo_clip"
    assert actor.policy_loss.rollout_correction.rollout_rs is None
    assert cfg.ray_kwargs.ray_init.include_dashboard is False
    assert dict(cfg.ray_kwargs.ray_init._system_config) == {
        "prestart_worker_first_driver": False, "enable_worker_prestart": False}


def test_bypass_loss_equals_the_vanilla_ppo_loss():
    """With old log-probs from the rollout, verl's bypass_mode loss is its vanilla PPO-clip loss."""
    from verl.trainer.ppo.core_algos import get_policy_loss_fn
    from verl.workers.config import ActorConfig, PolicyLossConfig

    torch.manual_seed(0)
    old, new = torch.randn(4, 16) * 0.1 - 2, torch.randn(4, 16) * 0.1 - 2
    adv, mask = torch.randn(4, 16), (torch.rand(4, 16) > 0.2).float()
    config = ActorConfig(strategy="fsdp2", ppo_micro_batch_size_per_gpu=1, rollout_n=1,
                         policy_loss=PolicyLossConfig(loss_mode="bypass_mode"))
    bypass, metrics = get_policy_loss_fn("bypass_mode")(old, new, adv, mask, "token-mean", config)
    vanilla, _ = get_policy_loss_fn("vanilla")(old, new, adv, mask, "token-mean", config)
    assert torch.allclose(bypass, vanilla)
    assert "rollout_corr/kl" in metrics and "rollout_corr/log_ppl_abs_diff" in metrics


def test_detect_machine(monkeypatch):
    import importlib.util

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert overrides.detect_machine() == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "vllm" else real_find_spec(n, *a))
    assert overrides.detect_machine() == "gpu"
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: object() if n == "vllm" else real_find_spec(n, *a))
    assert overrides.detect_machine() == "vllm"


# --- the cpu training engine -------------------------------------------------------------------


def _engine_micro_batch(prompt_lens, response_lens, temperature, vocab=3000, seed=0):
    """A micro-batch as verl's engine worker hands it over: nested (jagged) token ids."""
    from tensordict import TensorDict
    from verl.utils import tensordict_utils as tu
    from verl.utils.dataset.dataset_utils import DatasetPadMode

    gen = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(3, vocab, (p,), generator=gen) for p in prompt_lens]
    responses = [torch.randint(3, vocab, (r,), generator=gen) for r in response_lens]
    jagged = lambda ts: torch.nested.nested_tensor(ts, layout=torch.jagged)  # noqa: E731
    seqs = [torch.cat([p, r]) for p, r in zip(prompts, responses)]
    batch = TensorDict({
        "input_ids": jagged(seqs), "position_ids": jagged([torch.arange(len(s)) for s in seqs]),
        "prompts": jagged(prompts), "responses": jagged(responses),
        "temperature": torch.full((len(seqs),), temperature)}, batch_size=len(seqs))
    tu.assign_non_tensor(batch, use_remove_padding=False, calculate_entropy=True, pad_mode=DatasetPadMode.NO_PADDING)
    return batch


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_cpu_engine_logprobs_equal_verls_at_every_response_position(tiny_path, temperature):
    """The cpu engine's log-probs and entropy are verl's own, computed from far fewer logits."""
    from types import SimpleNamespace

    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead
    from verl.workers.utils.padding import no_padding_2_padding

    from verl_backend.cpu_engine import CPULMHeadEngine

    model = load_model(tiny_path)
    engine = CPULMHeadEngine.__new__(CPULMHeadEngine)  # the two methods under test need no FSDP set-up
    engine.pad_to_length = False
    engine.engine_config = SimpleNamespace(entropy_checkpointing=False)
    batch = _engine_micro_batch([37, 12, 25, 40], [9, 30, 1, 17], temperature)

    inputs, args = FSDPEngineWithLMHead.prepare_model_inputs(engine, batch)
    with torch.no_grad():
        full = model(**inputs)
        theirs = FSDPEngineWithLMHead.prepare_model_outputs(engine, full, args, batch, None)
        inputs, args = engine.prepare_model_inputs(batch)
        assert inputs["logits_to_keep"] == 40 + 17 - 12 + 1  # width - shortest prompt + 1
        tail = model(**inputs)
        assert tail.logits.shape[1] < full.logits.shape[1]
        ours = engine.prepare_model_outputs(tail, args, batch, None)
    for key in ("log_probs", "entropy"):
        a, b = no_padding_2_padding(ours[key], batch), no_padding_2_padding(theirs[key], batch)
        mask = torch.nested.to_padded_tensor(batch["responses"], padding=-1) >= 0
        assert torch.allclose(a[mask], b[mask], atol=1e-5), key


def test_cpu_engine_leaves_other_batches_to_verl(tiny_path):
    """SFT batches (no prompts) and remove-padding batches take verl's own code path."""
    from types import SimpleNamespace

    from verl.utils import tensordict_utils as tu

    from verl_backend.cpu_engine import KEPT, CPULMHeadEngine

    engine = CPULMHeadEngine.__new__(CPULMHeadEngine)
    engine.pad_to_length = False
    engine.engine_config = SimpleNamespace(entropy_checkpointing=False)
    batch = _engine_micro_batch([5, 8], [3, 4], 1.0)
    del batch["prompts"]
    inputs, args = engine.prepare_model_inputs(batch)
    assert "logits_to_keep" not in inputs and KEPT not in args
    batch = _engine_micro_batch([5, 8], [3, 4], 1.0)
    tu.assign_non_tensor(batch, use_fused_kernels=True)
    assert not __import__("verl_backend.cpu_engine", fromlist=["_plain_batch"])._plain_batch(batch)
