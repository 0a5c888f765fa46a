"""What ``python -m verl.trainer.main_ppo`` needs on each kind of machine.

* ``vllm``: a GPU machine with vLLM: verl's defaults, nothing changed.
* ``gpu``:  GPUs without vLLM: the ``hf`` rollout on verl's own NVIDIA platform.
* ``cpu``:  no GPU: the ``hf`` rollout on the ``cpu`` platform (``VERL_PLATFORM=cpu``).

``backend_env`` gives the environment (it must be set before verl is imported,
also in the launching process); ``backend_overrides`` the Hydra overrides of ``main_ppo``,
``sft_backend_overrides`` those of verl's SFT trainer.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Literal

from verl_backend import PLATFORM_NAME, ROLLOUT_NAME

Machine = Literal["cpu", "gpu", "vllm"]
MACHINES = ("cpu", "gpu", "vllm")
PLUGIN_MODULE = "verl_backend.plugin"

# Logical CPUs announced to Ray on CPU machines: with the real 2 cores, TransferQueue's
# actors and verl's workers cannot all be scheduled and the run hangs.
CPU_RAY_NUM_CPUS = 32

# Where a CPU step's time went (docs/measurements.md, "Training on CPU: where the time goes").
CPU_SPEED_OVERRIDES = [
    # fp32 compute, rollout and actor: bf16 matmuls on CPUs without bf16 units (AVX2, most
    # AVX-512) are emulated and several times slower; verl's defaults are bf16 for both.
    "actor_rollout_ref.rollout.dtype=float32",
    *(f"+actor_rollout_ref.{role}.fsdp_config.mixed_precision.{k}=fp32"
      for role in ("actor", "ref") for k in ("param_dtype", "reduce_dtype", "buffer_dtype")),
    # verl torch.compiles its entropy kernel: an inductor C++ build on the first step, on 2 cores.
    "actor_rollout_ref.actor.use_torch_compile=false",
    "actor_rollout_ref.actor.fsdp_config.use_torch_compile=false",
    "actor_rollout_ref.ref.fsdp_config.use_torch_compile=false",
    # Activation checkpointing trades a second forward pass for memory small models do not need.
    "actor_rollout_ref.model.enable_gradient_checkpointing=false",
    # Old log-probs from the rollout (verl's bypass mode) instead of a second forward pass of the
    # actor: the HF rollout samples with the actor's own weights in fp32, so they are the same
    # numbers. The actor's loss is still PPO-clip (loss_mode bypass_mode, loss_type ppo_clip),
    # and it logs the rollout/actor agreement every step (actor/rollout_corr/*).
    "algorithm.rollout_correction.bypass_mode=true",
    "actor_rollout_ref.actor.policy_loss.loss_mode=bypass_mode",
    "actor_rollout_ref.actor.calculate_entropy=true",  # the recompute pass logged it; now the update does
    # A step's 128 requests reach the hf rollout over a few hundred ms on 2 busy cores, with pauses
    # longer than the default 10 ms gap that closes a batch: a batch cut in two decodes twice,
    # and a group cut apart loses its shared prompt (the batch log's `batches` showed [7, 121]).
    "+actor_rollout_ref.rollout.engine_kwargs.hf.batch_wait_ms=5000",
    "+actor_rollout_ref.rollout.engine_kwargs.hf.arrival_gap_ms=100",
    # Ray prestarts one Python worker per declared CPU (32 here, see CPU_RAY_NUM_CPUS) and runs
    # a dashboard: processes that cost start-up time and memory and are never used.
    "+ray_kwargs.ray_init.include_dashboard=false",
    "+ray_kwargs.ray_init._system_config.prestart_worker_first_driver=false",
    "+ray_kwargs.ray_init._system_config.enable_worker_prestart=false",
]


def detect_machine() -> Machine:
    """``vllm`` if a GPU and vLLM are there, ``gpu`` if only a GPU is, else ``cpu``."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return "vllm" if importlib.util.find_spec("vllm") is not None else "gpu"


def _check(machine: str, n_gpus: int) -> None:
    if machine not in MACHINES:
        raise ValueError(f"machine must be one of {MACHINES}, got {machine!r}")
    if n_gpus < 1:
        raise ValueError(f"n_gpus must be >= 1, got {n_gpus}")


def _external_modules() -> str:
    """``VERL_USE_EXTERNAL_MODULES`` with our plugin first.

    verl imports these modules before its entry-point plugins, so the CPU platform
    exists before any other plugin resolves the platform while it is imported.
    """
    current = [m for m in os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(",") if m and m != PLUGIN_MODULE]
    return ",".join([PLUGIN_MODULE, *current])


def backend_env(machine: Machine) -> dict[str, str]:
    """Environment variables for the launching process (Ray workers inherit them)."""
    _check(machine, 1)
    if machine == "cpu":
        return {
            "VERL_PLATFORM": PLATFORM_NAME,
            "VERL_USE_EXTERNAL_MODULES": _external_modules(),
            # verl's FSDP engine with the LM head on response positions only (verl_backend.cpu_engine).
            "VERL_ENGINE_DEVICE": PLATFORM_NAME,
            "TQ_NUM_THREADS": _transfer_queue_threads(),
        }
    return {}


def _transfer_queue_threads() -> str:
    """TransferQueue's torch threads per put/get: the user's ``TQ_NUM_THREADS``, else its default of
    8 capped at the physical cores. With fewer cores it caps the count itself, but logs a warning on
    every call (hundreds a run on 2 cores): the same count, without the warning."""
    if os.environ.get("TQ_NUM_THREADS"):
        return os.environ["TQ_NUM_THREADS"]
    import psutil

    return str(min(8, psutil.cpu_count(logical=False) or 1))


def _hydra_str(value: str) -> str:
    # Quoted, Hydra keeps it a string: no sweep on commas, no int/bool (Ray wants str env values).
    return f"'{value}'"


def backend_overrides(machine: Machine, n_gpus: int = 1) -> list[str]:
    """Hydra overrides for ``verl.trainer.main_ppo``; ``n_gpus`` = trainer GPUs per node (logical ones on CPU).

    Put them after the run's own overrides (the last value of a key wins); keys starting
    with ``+`` must not be given twice.
    """
    _check(machine, n_gpus)
    if machine == "vllm":
        return []
    hf_rollout = [
        f"actor_rollout_ref.rollout.name={ROLLOUT_NAME}",
        # One HF model copy per trainer worker.
        "actor_rollout_ref.rollout.tensor_model_parallel_size=1",
        "actor_rollout_ref.rollout.data_parallel_size=1",
        "actor_rollout_ref.rollout.pipeline_model_parallel_size=1",
        # No flash-attn without vLLM's stack: torch's SDPA, and no flash-attn varlen unpadding.
        "+actor_rollout_ref.model.override_config.attn_implementation=sdpa",
        "actor_rollout_ref.model.use_remove_padding=False",
    ]
    if machine == "gpu":
        return hf_rollout + [f"trainer.n_gpus_per_node={n_gpus}"]
    return hf_rollout + [
        "trainer.device=cpu",
        f"trainer.n_gpus_per_node={n_gpus}",
        "trainer.nnodes=1",
        # Logical GPUs, so verl's GPU placement groups can be built.
        f"+ray_kwargs.ray_init.num_gpus={n_gpus}",
        f"ray_kwargs.ray_init.num_cpus={CPU_RAY_NUM_CPUS}",
        "transfer_queue.backend.SimpleStorage.num_data_storage_units=1",
        # Fewer helper processes: each one imports verl (seconds of CPU and ~0.5 GB each).
        "actor_rollout_ref.rollout.agent.num_workers=1",
        "reward.num_workers=1",
        "data.dataloader_num_workers=0",
        # FSDP1 needs a GPU; FSDP2 runs over gloo.
        "actor_rollout_ref.actor.strategy=fsdp2",
        "actor_rollout_ref.ref.strategy=fsdp2",
        *CPU_SPEED_OVERRIDES,
        # Through Ray's runtime env too: workers of a Ray started elsewhere do not inherit our environment.
        *(f"+ray_kwargs.ray_init.runtime_env.env_vars.{k}={_hydra_str(v)}" for k, v in backend_env("cpu").items()),
    ]


# What verl's SFT trainer (``verl.trainer.sft_trainer``) needs on a machine without a GPU, with
# the project's cpu platform:
SFT_CPU_OVERRIDES = [
    "trainer.device=cpu",
    # FSDP1 needs a GPU; FSDP2 runs over gloo (the process group: verl_backend.patches).
    "engine.strategy=fsdp2",
    # No flash-attn: SDPA on padded batches.
    "+model.override_config.attn_implementation=sdpa",
    "model.use_remove_padding=false",
    # torch.compile of the entropy helper would need a C++ toolchain; it is not used by SFT.
    "engine.use_torch_compile=false",
    # bf16 autocast is slower than fp32 on most CPUs; keep the master weights' fp32.
    "+engine.mixed_precision={param_dtype:fp32,reduce_dtype:fp32,buffer_dtype:fp32}",
    # Each dataloader worker is another process on a machine with few cores.
    "data.num_workers=0",
]

SFT_GPU_OVERRIDES_NO_FLASH_ATTN = [
    "+model.override_config.attn_implementation=sdpa",
    "model.use_remove_padding=false",
]


def sft_backend_overrides(machine: Machine) -> list[str]:
    """Hydra overrides for verl's SFT trainer on ``machine`` (PPO's are ``backend_overrides``)."""
    _check(machine, 1)
    if machine == "cpu":
        return list(SFT_CPU_OVERRIDES)
    return [] if importlib.util.find_spec("flash_attn") is not None else list(SFT_GPU_OVERRIDES_NO_FLASH_ATTN)


def backend_launch(machine: Machine | None = None, n_gpus: int = 1) -> tuple[dict[str, str], list[str]]:
    """``(env, overrides)`` for ``machine`` (detected when None)."""
    machine = machine or detect_machine()
    return backend_env(machine), backend_overrides(machine, n_gpus)
