"""The launchers' presets, as Hydra config groups of ``recipes/`` (read with ``hydra.compose``).

    machine/<name>.yaml    the batch layout a kind of machine runs well; ``launch.model``: its
                           default model                                 (+machine=cpu)
    scale/<name>.yaml      a model size's RL settings; ``launch``: the models it is for, the
                           default steps, validation rows, prompt variants  (+scale=mini)
    sft_scale/<name>.yaml  a model size's settings for verl's SFT trainer  (+sft_scale=mini)

Each file is ``@package _global_``: its keys are verl's own, over the recipe, so
``python -m verl.trainer.main_ppo --config-path recipes --config-name grpo_sam +machine=cpu
+scale=mini ...`` runs a preset without the launcher. The ``launch`` node is read here only.
The launchers put the groups on the command line; the run's own ``key=value`` overrides apply
after them (Hydra merges groups first), so a user's override always wins.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

RECIPES = Path(__file__).resolve().parent
MACHINE, SCALE, SFT_SCALE = "machine", "scale", "sft_scale"
# recipes.launch --machine vllm is a GPU machine whose rollout is vLLM (verl_backend.overrides)
_MACHINE_GROUP = {"cpu": "cpu", "gpu": "gpu", "vllm": "gpu"}


def group_override(group: str, name: str) -> str:
    """The command-line option that adds a preset to a recipe's defaults list."""
    return f"+{group}={name}"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (RECIPES / group).glob("*.yaml"))


@functools.lru_cache(maxsize=None)
def _compose(config_name: str):
    """A config of ``recipes/`` as Hydra composes it (a preset alone, or a recipe)."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        return compose(config_name=config_name)


def _compose_option(group: str, name: str):
    if name not in options(group):
        raise ValueError(f"no preset {group}/{name}: the choices are {options(group)} (recipes/{group}/*.yaml)")
    return _compose(f"{group}/{name}")


@dataclass(frozen=True)
class MachinePreset:
    name: str  # the option of the machine group
    model: str  # the default model on this machine

    @property
    def override(self) -> str:
        return group_override(MACHINE, self.name)


@dataclass(frozen=True)
class Scale:
    name: str
    models: tuple[str, ...]
    steps: int
    val_rows: int
    criteria: Mapping[str, str]  # recipe criteria -> the prompt variant the data is written with
    prompts_per_step: int  # data.train_batch_size: labelled prompts an RL step samples

    @property
    def override(self) -> str:
        return group_override(SCALE, self.name)

    def criteria_for(self, recipe_criteria: str) -> str:
        return self.criteria.get(recipe_criteria, recipe_criteria)


def machine_preset(machine: str) -> MachinePreset:
    """The preset of ``machine`` (cpu, gpu or vllm)."""
    if machine not in _MACHINE_GROUP:
        raise ValueError(f"machine must be one of {sorted(_MACHINE_GROUP)}, got {machine!r}")
    name = _MACHINE_GROUP[machine]
    return MachinePreset(name=name, model=str(_compose_option(MACHINE, name).launch.model))


def scale(name: str) -> Scale:
    cfg = _compose_option(SCALE, name)
    meta = cfg.launch
    return Scale(name=name, models=tuple(meta.models), steps=int(meta.steps), val_rows=int(meta.val_rows),
                 criteria=dict(meta.get("criteria") or {}), prompts_per_step=int(cfg.data.train_batch_size))


def scale_for(machine: str, model_name: str) -> Scale:
    """The RL settings of ``model_name`` (a model_zoo name or a path): the scale that lists it,
    else that of the machine's default model."""
    for name in options(SCALE):
        if str(model_name) in scale(name).models:
            return scale(name)
    default = machine_preset(machine).model
    if str(model_name) == default:
        raise ValueError(f"recipes/{SCALE}/*.yaml: no scale lists {default!r}, the default model of {machine}")
    return scale_for(machine, default)


def sft_scale_for(model_name: str) -> str | None:
    """The SFT preset of a model_zoo backbone by name (``tiny``, ``mini``); None for a folder or
    another model, which trains on the recipe's own settings."""
    name = str(model_name)
    return name if name in options(SFT_SCALE) else None


def sft_batch_size(model_name: str) -> int:
    """Rows per step of verl's SFT trainer for ``model_name``: its SFT preset's, else the recipe's."""
    name = sft_scale_for(model_name)
    preset = (_compose_option(SFT_SCALE, name).get("data") or {}) if name is not None else {}
    if "train_batch_size" in preset:
        return int(preset["train_batch_size"])
    return int(_compose("sft_warmup").data.train_batch_size)
