"""Classification and step metrics as pure functions over lists of labels.

Conventions (the project's definitions, used by every table):

* A prediction that could not be read (``pred`` is ``None`` or the reward's
  ``NO_PRED`` = -99) is a wrong answer for accuracy.
* The confusion matrix has one row per gold label, in ``labels`` order
  (default 3, 2, 1, 0, -1), and one column per predicted label plus a last
  "none" column for unreadable predictions, so every example is counted once.
* Per class c: precision = matrix[c][c] / (predictions of c), recall =
  matrix[c][c] / (gold c, the full row including "none"), so an unreadable
  prediction is a miss for the recall of its gold class and is nobody's false
  positive. A 0/0 precision, recall or F1 is 0 (scikit-learn's zero_division=0).
* Macro-F1 is the mean F1 over the classes that occur, in gold or predicted
  (a class absent from both has no defined F1); on a test set covering all five
  classes that is the plain mean over the five.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from data_prep.criteria import load_criteria
from reward.contracts import NO_PRED  # compute_score's `pred` when no label was read

# The default criteria's label scale, most relevant first (callers pass another criteria's).
LABELS: tuple[int, ...] = tuple(sorted(load_criteria().label_values, reverse=True))
NONE = "none"  # the confusion-matrix column of unreadable predictions


def _is_label(pred: Any, labels: Sequence[int]) -> bool:
    return pred is not None and pred != NO_PRED and pred in labels


def accuracy(golds: Sequence[int], preds: Sequence[int | None]) -> float:
    """Fraction of exact matches; an unreadable prediction is wrong. 0.0 for no examples."""
    _check_lengths(golds, preds)
    if not golds:
        return 0.0
    return sum(1 for g, p in zip(golds, preds) if p is not None and p == g) / len(golds)


def confusion_matrix(
    golds: Sequence[int], preds: Sequence[int | None], labels: Sequence[int] = LABELS
) -> list[list[int]]:
    """Rows: gold in ``labels`` order. Columns: predicted in ``labels`` order, then "none".

    A prediction outside ``labels`` (unreadable, -99, None) goes to "none"; a gold
    outside ``labels`` is a data error and raises.
    """
    _check_lengths(golds, preds)
    index = {lab: i for i, lab in enumerate(labels)}
    matrix = [[0] * (len(labels) + 1) for _ in labels]
    for g, p in zip(golds, preds):
        if g not in index:
            raise ValueError(f"gold label {g!r} is not one of {list(labels)}")
        col = index[p] if _is_label(p, labels) else len(labels)
        matrix[index[g]][col] += 1
    return matrix


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def per_class(matrix: Sequence[Sequence[int]], labels: Sequence[int] = LABELS) -> dict[int, dict[str, Any]]:
    """Precision, recall, F1, support (gold count) and predicted count per class."""
    out: dict[int, dict[str, Any]] = {}
    for i, lab in enumerate(labels):
        tp = matrix[i][i]
        support = sum(matrix[i])  # includes the "none" column: a miss for recall
        predicted = sum(row[i] for row in matrix)
        precision = _ratio(tp, predicted)
        recall = _ratio(tp, support)
        out[lab] = {
            "precision": precision,
            "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "support": support,
            "predicted": predicted,
        }
    return out


def macro_f1(matrix: Sequence[Sequence[int]], labels: Sequence[int] = LABELS) -> float:
    """Mean F1 over classes present in gold or predictions (see the module docstring)."""
    classes = per_class(matrix, labels)
    present = [c["f1"] for c in classes.values() if c["support"] or c["predicted"]]
    return sum(present) / len(present) if present else 0.0


def step_accuracy(num_correct: Iterable[int], num_verifiable: Iterable[int]) -> float | None:
    """sum(correct) / sum(verifiable), the reward's batch aggregate; None when nothing is verifiable."""
    correct, verifiable = sum(num_correct), sum(num_verifiable)
    return correct / verifiable if verifiable else None


def per_step_accuracy(
    examples: Iterable[Iterable[tuple[str, bool, bool]]],
) -> dict[str, dict[str, Any]]:
    """Per step name: correct / verifiable over the examples, steps in first-seen order.

    Each example is a sequence of ``(step name, verifiable, correct)``; an
    absent step with gold is verifiable and not correct, as in the reward.
    """
    counts: dict[str, list[int]] = {}
    for steps in examples:
        for name, verifiable, correct in steps:
            c = counts.setdefault(name, [0, 0])
            if verifiable:
                c[1] += 1
                c[0] += bool(correct)
    return {name: {"correct": c, "verifiable": v, "acc": c / v if v else None}
            for name, (c, v) in counts.items()}


def mean(values: Iterable[float]) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def classification_report(
    golds: Sequence[int], preds: Sequence[int | None], labels: Sequence[int] = LABELS
) -> dict[str, Any]:
    """Accuracy, macro-F1, per-class scores and the confusion matrix in one JSON-ready dict."""
    matrix = confusion_matrix(golds, preds, labels)
    return {
        "accuracy": accuracy(golds, preds),
        "macro_f1": macro_f1(matrix, labels),
        "no_label_rate": _ratio(sum(row[-1] for row in matrix), len(golds)),
        "per_class": {str(lab): scores for lab, scores in per_class(matrix, labels).items()},
        "confusion_matrix": {
            "rows": [str(lab) for lab in labels],
            "columns": [str(lab) for lab in labels] + [NONE],
            "matrix": matrix,
        },
    }


def _check_lengths(golds: Sequence, preds: Sequence) -> None:
    if len(golds) != len(preds):
        raise ValueError(f"{len(golds)} gold labels but {len(preds)} predictions")


def format_error_counts(errors: Iterable[str]) -> dict[str, int]:
    """Counts of the reward's format_error codes, most frequent first ("" = well-formed is left out)."""
    counts: dict[str, int] = {}
    for err in errors:
        if err:
            counts[err] = counts.get(err, 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


__all__ = [
    "LABELS", "NONE", "NO_PRED", "accuracy", "classification_report", "confusion_matrix",
    "format_error_counts", "macro_f1", "mean", "per_class", "per_step_accuracy", "step_accuracy",
]
