"""Every place this project reads verl internals that verl does not offer as a public hook.

``patches.py`` holds what the project *changes* in verl; this module holds what it *reads* or
relies on: private registries, a trainer attribute whose value switches code paths, the
TransferQueue layout of reward extras. Each is written against verl 0.9.1 (``WRITTEN_AGAINST``)
and listed in ``COUPLINGS`` with the check that it still holds; ``broken_couplings()`` runs the
checks and ``tests/test_verl_compat.py`` fails, naming the coupling, when a verl upgrade breaks
one. Callers import from here, never from the verl internals themselves.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterator

WRITTEN_AGAINST = "0.9.1"


# --- the couplings ------------------------------------------------------------------------


def reward_extra_infos(batch) -> list[dict]:
    """Each response's reward extras (``reward_extra_info``) of a v1 trainer batch.

    verl 0.9.1's v1 trainer keeps them in TransferQueue under the field ``extra_fields``, one
    mapping (or a NonTensorData holding one) per response, in the batch's row order.
    """
    import transfer_queue as tq

    data = tq.kv_batch_get(keys=batch.keys, partition_id=batch.partition_id, select_fields=["extra_fields"])
    infos = []
    for value in list(data["extra_fields"]):
        fields = getattr(value, "data", value)
        infos.append(fields.get("reward_extra_info", {}) if isinstance(fields, dict) else {})
    return infos


class SyncCodePaths:
    """Mixin for a trainer registered under its own ``trainer.v1.trainer_mode`` name that must run
    verl's synchronous code paths.

    verl 0.9.1's ``PPOTrainer`` (v1 ``trainer_base``) stores the configured mode in ``self.trainer_mode`` and takes
    its async paths (replay buffer, refill, parameter sync) whenever it is not ``"sync"``; so the
    attribute reads ``"sync"`` here and the registered name only selects the class.
    """

    @property
    def trainer_mode(self) -> str:
        return "sync"

    @trainer_mode.setter
    def trainer_mode(self, value: str) -> None:
        pass  # PPOTrainer.__init__ assigns the configured name


class EstimatorInputs:
    """Extra inputs for a registered advantage estimator, handed over in the caller's thread.

    verl 0.9.1 calls a registered estimator (other than its own GDPO) with ``token_level_rewards``,
    ``response_mask``, ``config`` and ``index`` only (``ray_trainer.compute_advantage``), in the
    thread of the trainer's ``_compute_advantage``. Whatever else an estimator needs (SAM: each
    response's step data) is set here by the trainer around that one call and read by the
    estimator; outside the ``provide`` block there is nothing to read.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def provide(self, inputs: Any) -> Iterator[Any]:
        self._local.inputs = inputs
        try:
            yield inputs
        finally:
            self._local.inputs = None

    def current(self) -> Any:
        """The inputs of the call in progress in this thread; None outside a ``provide`` block."""
        return getattr(self._local, "inputs", None)


def registered_replica(registry, name: str):
    """The loader registered under ``name`` in verl's ``RolloutReplicaRegistry`` (its public
    ``get`` would call the loader; the private ``_registry`` dict only looks it up)."""
    return registry._registry.get(name)


def resolved_platform(platform_manager):
    """The platform verl has already resolved in this process (None when not yet)."""
    return platform_manager._current_platform


# --- the checks ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Coupling:
    name: str
    used_by: str
    holds: Callable[[], bool]


def _attr(module: str, path: str) -> Any:
    """``module.path`` (the module itself for an empty path)."""
    obj: Any = importlib.import_module(module)
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part)
    return obj


def _source_has(module: str, path: str, *snippets: str) -> bool:
    source = inspect.getsource(_attr(module, path))
    return all(s in source for s in snippets)


def _params(module: str, path: str) -> set[str]:
    return set(inspect.signature(_attr(module, path)).parameters)


_TRAINER = "verl.trainer.ppo.v1.trainer_base"
COUPLINGS: tuple[Coupling, ...] = (
    Coupling("v1 trainer switches code paths on self.trainer_mode == 'sync'", "SyncCodePaths",
             lambda: _source_has(_TRAINER, "PPOTrainer", "self.trainer_mode = self.config.trainer.v1.trainer_mode",
                                 'self.trainer_mode != "sync"')),
    Coupling("v1 sync trainer has _compute_advantage(batch, metrics) and _build_replay_buffer()",
             "sam_advantage.trainer.SamPPOTrainer",
             lambda: {"batch", "metrics"} <= _params("verl.trainer.ppo.v1.trainer_sync",
                                                    "PPOTrainerSync._compute_advantage")
             and callable(_attr("verl.trainer.ppo.v1.trainer_sync", "PPOTrainerSync._build_replay_buffer"))),
    Coupling("reward extras in TransferQueue field 'extra_fields', key 'reward_extra_info'; kv_batch_get "
             "takes select_fields", "reward_extra_infos",
             lambda: {"keys", "partition_id", "select_fields"} <= _params("transfer_queue", "kv_batch_get")
             and _source_has("verl.trainer.ppo.v1.agent_loop_tq", "",
                             'output.extra_fields["reward_extra_info"]')),
    Coupling("registered estimators get only token_level_rewards, response_mask, config and index, "
             "called in the trainer's thread", "EstimatorInputs",
             lambda: _source_has("verl.trainer.ppo.ray_trainer", "compute_advantage",
                                 '"token_level_rewards": data.batch["token_level_rewards"]',
                                 "advantages, returns = adv_estimator_fn(**adv_kwargs)")
             and _source_has(_TRAINER, "PPOTrainer._compute_advantage", "compute_advantage_for_multi_trajectories(")
             and not _source_has(_TRAINER, "PPOTrainer._compute_advantage", ".remote(")),
    Coupling("ReplayBuffer polls every self.poll_interval seconds in _wait_for_next_poll",
             "patches.set_replay_buffer_poll_interval",
             lambda: _source_has("verl.trainer.ppo.v1.replay_buffer", "ReplayBuffer._wait_for_next_poll",
                                 "self.poll_interval")),
    Coupling("RolloutReplicaRegistry keeps its loaders in the class dict _registry", "registered_replica",
             lambda: isinstance(_attr("verl.workers.rollout.replica", "RolloutReplicaRegistry._registry"), dict)),
    Coupling("platform_manager keeps the resolved platform in _current_platform", "resolved_platform",
             lambda: hasattr(importlib.import_module("verl.plugin.platform.platform_manager"), "_current_platform")),
    Coupling("rollout adapters are looked up in verl.workers.rollout.base._ROLLOUT_REGISTRY[(name, mode)]",
             "patches.register_rollout_adapter",
             lambda: isinstance(_attr("verl.workers.rollout.base", "_ROLLOUT_REGISTRY"), dict)
             and any(isinstance(k, tuple) and len(k) == 2
                     for k in _attr("verl.workers.rollout.base", "_ROLLOUT_REGISTRY"))),
    Coupling("engine_workers.initialize_global_process_group_ray(timeout_second, backend)",
             "patches._patch_process_group_backend",
             lambda: {"timeout_second", "backend"} <= _params("verl.workers.engine_workers",
                                                             "initialize_global_process_group_ray")),
    Coupling("the FSDP engine builds CPUOffloadPolicy from its transformer_impl module",
             "patches._patch_cpu_offload_policy",
             lambda: hasattr(importlib.import_module("verl.workers.engine.fsdp.transformer_impl"), "CPUOffloadPolicy")),
    Coupling("verl.utils.distributed.initialize_global_process_group(timeout_second)",
             "patches._patch_sft_process_group_backend",
             lambda: "timeout_second" in _params("verl.utils.distributed", "initialize_global_process_group")),
)


def broken_couplings() -> list[str]:
    """The couplings that no longer hold for the installed verl, each with who relies on it."""
    broken = []
    for coupling in COUPLINGS:
        try:
            ok = bool(coupling.holds())
        except (ImportError, AttributeError, TypeError, ValueError, OSError) as exc:
            ok, why = False, f"{type(exc).__name__}: {exc}"
        else:
            why = "the check failed"
        if not ok:
            broken.append(f"{coupling.name} (used by {coupling.used_by}; written against verl "
                          f"{WRITTEN_AGAINST}): {why}")
    return broken
