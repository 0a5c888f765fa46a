"""Errors raised by model_zoo; all derive from ModelZooError."""

from __future__ import annotations


class ModelZooError(Exception):
    """Base class for model_zoo errors."""


class BuildError(ModelZooError, RuntimeError):
    """A model folder could not be built, or building would overwrite foreign files."""


class ModelPackageMissing(BuildError):
    """The package that ships a model's weights is not installed."""


class UnknownModel(ModelZooError, ValueError):
    """A name that is neither a built-in model nor an existing path."""


class NotAModelFolder(ModelZooError, ValueError):
    """An existing path that does not hold a Hugging Face model and its tokenizer."""
