"""verl plugin: registers SAM's estimator, reward manager, trainer mode and start-up check.

verl imports this module in every process that imports verl (entry point in
group ``verl.plugins``; or ``VERL_USE_EXTERNAL_MODULES=sam_advantage.plugin``).
verl swallows plugin import errors at debug level, so the registrations are
asserted here and a failure is logged loudly before it is raised.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def register() -> None:
    from verl.experimental.reward_loop.reward_manager.registry import REWARD_MANAGER
    from verl.trainer.ppo.core_algos import ADV_ESTIMATOR_REGISTRY
    from verl.trainer.ppo.v1.trainer_base import TRAINER_REGISTRY

    from sam_advantage import estimator, reward_manager, startup_check, trainer
    from sam_advantage.config import ESTIMATOR, TRAINER_MODE
    from sam_advantage.config import REWARD_MANAGER as MANAGER_NAME

    checks = {
        f"advantage estimator '{ESTIMATOR}'": ADV_ESTIMATOR_REGISTRY.get(ESTIMATOR)
        is estimator.compute_sam_outcome_advantage,
        f"reward manager '{MANAGER_NAME}'": REWARD_MANAGER.get(MANAGER_NAME)
        is reward_manager.SamStepRewardManager,
        f"trainer mode '{TRAINER_MODE}'": TRAINER_REGISTRY.get(TRAINER_MODE) is trainer.SamPPOTrainer,
    }
    startup_check.register()
    checks["start-up check (Hydra search path plugin)"] = startup_check.registered()
    broken = [name for name, ok in checks.items() if not ok]
    if broken:
        raise RuntimeError(f"sam_advantage plugin: registration failed for {broken}")


try:
    register()
except Exception:
    logger.exception("sam_advantage plugin failed to load")
    raise
