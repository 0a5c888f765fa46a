"""verl plugin: imported by verl in every process that imports it.

Registers the ``hf`` rollout (lazily, when verl imports its rollout registries)
and, only with ``VERL_PLATFORM=cpu``, the CPU platform and its patches. verl
swallows plugin import errors at DEBUG level, so failures are logged here and
every registration is checked.
"""

from __future__ import annotations

import logging
import os
import sys
from types import ModuleType

from verl_backend import PLATFORM_NAME, ROLLOUT_NAME, compat, patches
from verl_backend._import_hooks import when_imported

logger = logging.getLogger("verl_backend")

ADAPTER_FQN = "verl_backend.hf_adapter.HFServerAdapter"


def cpu_platform_requested() -> bool:
    return os.environ.get("VERL_PLATFORM", "").strip().lower() == PLATFORM_NAME


def _register_cpu_platform() -> None:
    from verl.plugin.platform import platform_manager

    from verl_backend.platform_cpu import CPUPlatform

    patches.require_supported_verl()
    platform_manager.PlatformRegistry.register(platform=PLATFORM_NAME)(CPUPlatform)
    if platform_manager.PlatformRegistry.get(PLATFORM_NAME) is not CPUPlatform:
        raise RuntimeError("the CPU platform did not register")
    current = compat.resolved_platform(platform_manager)
    if current is not None and not isinstance(current, CPUPlatform):
        raise RuntimeError(
            f"verl resolved its platform ({type(current).__name__}) before verl_backend loaded; "
            "load verl_backend through verl's plugin hooks"
        )
    # verl picks its FSDP engine class by device: ours for "cpu" (verl_backend.cpu_engine).
    os.environ.setdefault("VERL_ENGINE_DEVICE", PLATFORM_NAME)
    when_imported("verl.workers.engine.fsdp.transformer_impl", _register_cpu_engines)
    patches.apply_cpu_patches()


def _register_cpu_engines(transformer_impl: ModuleType) -> None:
    from verl_backend import cpu_engine

    cpu_engine.register()


def _load_hf_replica():
    patches.require_supported_verl()
    from verl_backend.hf_replica import HFReplica

    return HFReplica


def _register_hf_replica(replica_module: ModuleType) -> None:
    registry = replica_module.RolloutReplicaRegistry
    registry.register(ROLLOUT_NAME, _load_hf_replica)
    if compat.registered_replica(registry, ROLLOUT_NAME) is not _load_hf_replica:
        raise RuntimeError(f"the {ROLLOUT_NAME!r} rollout replica did not register")


def _warn_if_loaded_late() -> None:
    # Entry-point plugins load in name order; one imported before us may already have
    # resolved the platform and failed on "Unknown platform 'cpu'".
    modules = os.environ.get("VERL_USE_EXTERNAL_MODULES", "").split(",")
    if __name__ not in modules:
        logger.warning(
            "VERL_PLATFORM=cpu without VERL_USE_EXTERNAL_MODULES=%s: other verl plugins may load before the "
            "CPU platform exists; use verl_backend.overrides.backend_env('cpu')", __name__,
        )


def activate() -> None:
    if cpu_platform_requested():
        _warn_if_loaded_late()
        _register_cpu_platform()
    when_imported("verl.workers.rollout.replica", _register_hf_replica)
    patches.register_rollout_adapter(ROLLOUT_NAME, ADAPTER_FQN)


try:
    activate()
except Exception as e:  # verl would hide this at DEBUG level
    logger.exception("verl_backend plugin failed to load")
    print(f"verl_backend plugin failed to load: {e!r}", file=sys.stderr, flush=True)
    raise
