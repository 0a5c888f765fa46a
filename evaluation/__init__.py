"""Evaluate relevance models on a labelled verl parquet.

    python -m evaluation --model PATH --data test_random.parquet --out DIR
    python -m evaluation.curves --log run.jsonl --out curves.png

`evaluate` generates a response per pair (vLLM on a GPU when installed, Hugging
Face `generate` otherwise), scores it with the project's reward (criteria and
step gold from the row's ``extra_info``), and writes metrics.json, summary.md,
predictions.jsonl and confusion_matrix.png. Metric definitions are in
`evaluation.metrics`; the direct-label mode for distilled students is in
`evaluation.scoring`.
"""

import importlib

# Names are loaded on first use (PEP 562): `python -m evaluation.curves` must not
# find its own module already imported by the package, and `import evaluation`
# stays light.
_EXPORTS = {
    "plot_training_curves": "evaluation.curves",
    "evaluate": "evaluation.evaluator",
    "evaluate_responses": "evaluation.evaluator",
    "summarize": "evaluation.evaluator",
    "load_generator": "evaluation.generation",
    **{name: "evaluation.metrics" for name in (
        "LABELS", "accuracy", "classification_report", "confusion_matrix", "macro_f1",
        "per_class", "per_step_accuracy", "step_accuracy")},
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'evaluation' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
