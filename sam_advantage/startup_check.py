"""The SAM start-up check of `python -m verl.trainer.main_ppo`, in the driver.

verl 0.9.1 validates its own config in the driver but offers plugins no hook
there: a mis-wired SAM run (say ``algorithm.adv_estimator=sam`` with verl's
stock ``sync`` trainer mode) would build every worker inside Ray and only fail
at its first advantage step. Hydra does offer one: job callbacks. The plugin
registers `SamSearchPathPlugin`, which puts ``hydra/env/default.yaml`` (Hydra's
slot for site settings, empty in Hydra itself) first on the search path; that
file declares `SamStartupCheck`, which runs `validate_run_config` on the
composed config before verl's ``main`` (and so before Ray) starts.
"""

from __future__ import annotations

from typing import Any

from hydra.core.plugins import Plugins
from hydra.experimental.callback import Callback
from hydra.plugins.search_path_plugin import SearchPathPlugin
from omegaconf import DictConfig, OmegaConf

from sam_advantage.config import SamConfigError, validate_run_config

SEARCH_PATH = "pkg://sam_advantage.hydra_env"


def is_ppo_config(config: DictConfig) -> bool:
    """Only verl's PPO-family configs are checked; other Hydra apps pass through."""
    return all(OmegaConf.select(config, key) is not None
               for key in ("algorithm.adv_estimator", "trainer.v1", "reward.reward_manager"))


class SamStartupCheck(Callback):
    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        if not is_ppo_config(config):
            return
        try:
            validate_run_config(config)
        except SamConfigError as exc:
            # Hydra turns exceptions raised in callbacks into warnings and runs
            # the job anyway; SystemExit is not an Exception, so the run stops.
            raise SystemExit(f"Config error: {exc}") from None


class SamSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path) -> None:
        search_path.prepend(provider="sam-advantage", path=SEARCH_PATH)


def register() -> None:
    Plugins.instance().register(SamSearchPathPlugin)


def registered() -> bool:
    return SamSearchPathPlugin in Plugins.instance().discover(SearchPathPlugin)
