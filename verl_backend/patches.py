"""Every change this package makes to verl internals, in one place.

verl 0.9.1 offers public registries for platforms and rollout replicas; the
rest below has no public hook, so it is patched here, for verl 0.9.1 only
(``require_supported_verl``), and only when the backend is selected:

* CPU platform (``VERL_PLATFORM=cpu``), see ``apply_cpu_patches``:
  1. ``engine_workers.initialize_global_process_group_ray`` builds the backend
     string ``"cpu:gloo,<device>:<backend>"``, which torch rejects when the
     device is ``cpu`` ("Duplicate device type cpu"). We pass plain ``gloo``.
  2. The FSDP2 engine creates ``CPUOffloadPolicy(pin_memory=True)`` for the
     reference model; pinning needs a CUDA device. We force ``pin_memory=False``.
  3. The SFT trainer (``verl.trainer.sft_trainer``, launched by torchrun) starts
     its process group with ``verl.utils.distributed.initialize_global_process_group``,
     which hard-codes the same ``"cpu:gloo,<device>:<backend>"`` string as (1). We
     start it with plain ``gloo`` and return what the original returns.
* The replay buffer's poll interval (the ``sam`` trainer mode, every machine): verl's
  v1 trainer builds its ``ReplayBuffer`` with the constructor's default of 2 s and
  no config key; ``set_replay_buffer_poll_interval`` sets it on the built buffer.
* HF rollout (``rollout.name=hf``): the weight-sync adapter is looked up in the
  private ``verl.workers.rollout.base._ROLLOUT_REGISTRY`` (no public register
  function exists), see ``register_rollout_adapter``. Adding a key is inert
  unless a config names that rollout.

Patches are applied to the consumer modules right after verl imports them
(``_import_hooks.when_imported``), so importing the plugin stays cheap. What the project only
reads of verl internals is in ``compat.py``, whose checks cover these patches' targets too.
"""

from __future__ import annotations

import importlib.metadata
import logging
from types import ModuleType

from verl_backend._import_hooks import when_imported

logger = logging.getLogger(__name__)

SUPPORTED_VERL_VERSION = "0.9.1"

_applied: set[str] = set()


def installed_verl_version() -> str:
    return importlib.metadata.version("verl")


def require_supported_verl(version: str | None = None) -> None:
    """Raise a clear error unless the installed verl is the one these patches were written for."""
    version = version or installed_verl_version()
    if version != SUPPORTED_VERL_VERSION:
        raise RuntimeError(
            f"verl_backend supports verl=={SUPPORTED_VERL_VERSION} only (it patches verl internals), "
            f"but verl=={version} is installed. Install verl=={SUPPORTED_VERL_VERSION} or do not select "
            "the CPU platform / the 'hf' rollout."
        )


def applied_patches() -> frozenset[str]:
    """Names of the patches applied in this process (for tests and diagnostics)."""
    return frozenset(_applied)


# --- CPU platform -------------------------------------------------------------------------


def _patch_process_group_backend(engine_workers: ModuleType) -> None:
    original = engine_workers.initialize_global_process_group_ray

    def initialize_global_process_group_ray(timeout_second=None, backend=None):
        # On CPU, verl's default "cpu:gloo,cpu:gloo" is rejected by torch; gloo covers it.
        return original(timeout_second=timeout_second, backend=backend or "gloo")

    initialize_global_process_group_ray.__wrapped__ = original
    engine_workers.initialize_global_process_group_ray = initialize_global_process_group_ray
    _applied.add("process_group_backend")


def _patch_cpu_offload_policy(transformer_impl: ModuleType) -> None:
    policy_cls = transformer_impl.CPUOffloadPolicy

    def cpu_offload_policy(*args, pin_memory: bool = True, **kwargs):
        # Pinned host memory needs a CUDA device; on CPU the offload is a no-op copy anyway.
        return policy_cls(*args, pin_memory=False, **kwargs)

    cpu_offload_policy.__wrapped__ = policy_cls
    transformer_impl.CPUOffloadPolicy = cpu_offload_policy
    _applied.add("cpu_offload_policy")


def _patch_sft_process_group_backend(distributed: ModuleType) -> None:
    original = distributed.initialize_global_process_group

    def initialize_global_process_group(timeout_second=36000):
        # Same as verl 0.9.1's function but with backend "gloo": its "cpu:gloo,cpu:gloo" is
        # rejected by torch ("Duplicate device type cpu"). set_device is a no-op on CPU.
        import os
        from datetime import timedelta

        import torch.distributed

        torch.distributed.init_process_group(
            backend="gloo",
            timeout=timedelta(seconds=timeout_second),
            init_method=os.environ.get("DIST_INIT_METHOD", None),
        )
        return int(os.environ["LOCAL_RANK"]), int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])

    initialize_global_process_group.__wrapped__ = original
    distributed.initialize_global_process_group = initialize_global_process_group
    _applied.add("sft_process_group_backend")


def apply_cpu_patches() -> None:
    """Patches needed by the CPU platform (idempotent)."""
    require_supported_verl()
    if "cpu" in _applied:
        return
    _applied.add("cpu")
    when_imported("verl.workers.engine_workers", _patch_process_group_backend)
    when_imported("verl.workers.engine.fsdp.transformer_impl", _patch_cpu_offload_policy)
    when_imported("verl.utils.distributed", _patch_sft_process_group_backend)


# --- HF rollout -----------------------------------------------------------------------------


def register_rollout_adapter(name: str, adapter_fqn: str) -> None:
    """Make ``get_rollout_class(name, "async")`` return our weight-sync adapter."""

    def register(base: ModuleType) -> None:
        try:
            require_supported_verl()
        except RuntimeError as e:
            # Not fatal here: runs that never name this rollout must keep working.
            logger.error("the %r rollout is unavailable: %s", name, e)
            return
        base._ROLLOUT_REGISTRY[(name, "async")] = adapter_fqn
        _applied.add(f"rollout_adapter:{name}")

    when_imported("verl.workers.rollout.base", register)


# --- Trainer -------------------------------------------------------------------------------


def set_replay_buffer_poll_interval(buffer, seconds: float) -> None:
    """Set how often verl's v1 ``ReplayBuffer`` polls TransferQueue for finished rollouts.

    verl 0.9.1 reads ``buffer.poll_interval`` in its sampling loop
    (``ReplayBuffer._wait_for_next_poll``); an unknown buffer fails loudly.
    """
    require_supported_verl()
    if not hasattr(buffer, "poll_interval") or not hasattr(buffer, "_wait_for_next_poll"):
        raise RuntimeError(f"{type(buffer).__name__} has no poll_interval: this is not verl "
                           f"{SUPPORTED_VERL_VERSION}'s ReplayBuffer; set trainer.v1.sam.poll_interval_s "
                           "only with the built-in sampler")
    buffer.poll_interval = float(seconds)
    _applied.add("replay_buffer_poll_interval")
