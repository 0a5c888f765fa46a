"""verl plugin: registers SAM's estimator, reward manager, trainer mode and start-up check.

verl imports this module in every process that imports verl (entry point in
group ``verl.plugins``; or ``VERL_USE_EXTERNAL_MODULES=sam_advantage.plugin``).
Each registration waits until verl imports the module it extends: the estimator
comes with ``core_algos``, the reward manager with verl's reward-manager package,
the trainer mode with the v1 trainer package. Importing those eagerly costs about
2 s of CPU in every one of a run's processes, most of which (the rollout server,
the agent loop, TransferQueue) never use them. verl swallows plugin import errors
at debug level, so each registration is asserted and a failure raises from the
import that triggered it.
"""

from __future__ import annotations

import importlib
import logging
import sys
from types import ModuleType
from typing import Callable

from verl_backend._import_hooks import when_imported

logger = logging.getLogger(__name__)


def _estimator_registered(core_algos: ModuleType) -> bool:
    from sam_advantage.config import ESTIMATOR
    from sam_advantage.estimator import compute_sam_outcome_advantage

    return core_algos.ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR) is compute_sam_outcome_advantage


def _reward_manager_registered(reward_managers: ModuleType) -> bool:
    from sam_advantage.config import REWARD_MANAGER
    from sam_advantage.reward_manager import SamStepRewardManager

    return reward_managers.registry.REWARD_MANAGER.get(REWARD_MANAGER) is SamStepRewardManager


def _trainer_mode_registered(v1: ModuleType) -> bool:
    from sam_advantage.config import TRAINER_MODE
    from sam_advantage.trainer import SamPPOTrainer

    return v1.trainer_base.TRAINER_REGISTRY.get(TRAINER_MODE) is SamPPOTrainer


# verl module -> (our module that registers into it when imported, the check)
REGISTRATIONS: dict[str, tuple[str, Callable[[ModuleType], bool]]] = {
    "verl.trainer.ppo.core_algos": ("sam_advantage.estimator", _estimator_registered),
    "verl.experimental.reward_loop.reward_manager": ("sam_advantage.reward_manager", _reward_manager_registered),
    "verl.trainer.ppo.v1": ("sam_advantage.trainer", _trainer_mode_registered),
}


def _register_into(verl_module: ModuleType) -> None:
    ours, registered = REGISTRATIONS[verl_module.__name__]
    if ours in sys.modules:
        # Imported already, or being imported (it imported this verl module): its
        # decorators register it as its definitions run.
        return
    importlib.import_module(ours)
    if not registered(verl_module):
        raise RuntimeError(f"sam_advantage plugin: {ours} did not register into {verl_module.__name__}")


def register() -> None:
    from sam_advantage import startup_check

    # The driver's Hydra needs its search-path plugin before it composes: registered now (cheap).
    startup_check.register()
    if not startup_check.registered():
        raise RuntimeError("sam_advantage plugin: registration failed for the start-up check (Hydra search path plugin)")
    for verl_module in REGISTRATIONS:
        when_imported(verl_module, _register_into)


try:
    register()
except Exception:
    logger.exception("sam_advantage plugin failed to load")
    raise
