"""Write an evaluation's files: metrics.json, summary.md, predictions.jsonl, confusion_matrix.png."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

METRICS_FILE = "metrics.json"
SUMMARY_FILE = "summary.md"
PREDICTIONS_FILE = "predictions.jsonl"
CONFUSION_FILE = "confusion_matrix.png"


def _atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file, then rename: a reader never sees half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_report(metrics: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                 out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic_write(out / METRICS_FILE, json.dumps(metrics, indent=2, ensure_ascii=False) + "\n")
    _atomic_write(out / SUMMARY_FILE, summary_markdown(metrics))
    _atomic_write(out / PREDICTIONS_FILE,
                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    plot_confusion_matrix(metrics, out / CONFUSION_FILE)
    return out


# -- summary.md ---------------------------------------------------------------------


def _fmt(value: Any, pct: bool = False, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{100 * value:.2f}%" if pct else f"{value:.{digits}g}"
    return str(value)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else 1000 * seconds


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def summary_markdown(m: Mapping[str, Any]) -> str:
    parts = [f"# Evaluation: {Path(str(m['model'])).name} on {Path(str(m['data'])).name}\n"]
    parts.append(_table(["setting", "value"], [
        ("model", f"`{m['model']}`"), ("data", f"`{m['data']}`"), ("mode", m["mode"]),
        *((name.replace("_", " "), _fmt(m.get(name)))
          for name in ("backend", "device", "batch_size", "max_new_tokens", "temperature")),
    ]))
    parts.append("## Metrics\n")
    parts.append(_table(["metric", "value"], [
        ("examples", m["n"]),
        ("accuracy", _fmt(m["accuracy"], pct=True)),
        ("macro-F1", _fmt(m["macro_f1"], pct=True)),
        ("step accuracy", _fmt(m["step_accuracy"], pct=True)),
        ("format-error rate", _fmt(m["format_error_rate"], pct=True)),
        ("no-label rate", _fmt(m["no_label_rate"], pct=True)),
        ("mean reward", _fmt(m["mean_reward"])),
        ("consistency rate", _fmt(m.get("consistency_rate"), pct=True)),
        ("latency per pair (ms)", _fmt(_ms(m.get("latency_s_per_pair")), digits=5)),
        ("pairs/s", _fmt(m["pairs_per_s"], digits=5)),
        ("mean response tokens", _fmt(m.get("mean_response_tokens"), digits=5)),
        ("truncated rate", _fmt(m.get("truncated_rate"), pct=True)),
    ]))
    if m.get("ranking"):
        r = m["ranking"]
        parts.append(f"## Ranking ({r['queries']} queries, {_fmt(r['candidates_per_query'])} candidates each)\n")
        parts.append(_table(["metric", "value"], [
            ("NDCG@5", _fmt(r["ndcg@5"], pct=True)), ("NDCG@10", _fmt(r["ndcg@10"], pct=True)),
            (f"MRR (relevant: level >= {r['relevant_min']})", _fmt(r["mrr"], pct=True))]))
    parts.append("## Per class\n")
    parts.append(_table(["label", "precision", "recall", "F1", "support", "predicted"], [
        (lab, _fmt(c["precision"], pct=True), _fmt(c["recall"], pct=True), _fmt(c["f1"], pct=True),
         c["support"], c["predicted"]) for lab, c in m["per_class"].items()
    ]))
    cm = m["confusion_matrix"]
    parts.append("## Confusion matrix (rows: gold, columns: predicted)\n")
    parts.append(_table(["gold \\ pred", *cm["columns"]],
                        [(lab, *row) for lab, row in zip(cm["rows"], cm["matrix"])]))
    if m.get("per_step_accuracy"):
        parts.append("## Per step\n")
        parts.append(_table(["step", "accuracy", "correct", "verifiable"], [
            (name, _fmt(s["acc"], pct=True), s["correct"], s["verifiable"])
            for name, s in m["per_step_accuracy"].items()
        ]))
    if m.get("format_errors"):
        parts.append("## Format errors\n")
        parts.append(_table(["error", "count"], list(m["format_errors"].items())))
    return "\n".join(parts)


# -- confusion_matrix.png ---------------------------------------------------------------


def plot_confusion_matrix(metrics: Mapping[str, Any], out_png: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt
    import numpy as np

    cm = metrics["confusion_matrix"]
    matrix = np.asarray(cm["matrix"], dtype=float)
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    # Colour by row share, so a rare gold class reads as clearly as a common one.
    shares = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1, aspect="auto")
    fig.colorbar(image, ax=ax, label="share of the gold row")
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            ax.text(j, i, f"{int(matrix[i, j])}", ha="center", va="center",
                    color="white" if shares[i, j] > 0.5 else "black", fontsize=10)
    ax.set_xticks(range(len(cm["columns"])), cm["columns"])
    ax.set_yticks(range(len(cm["rows"])), cm["rows"])
    ax.set_xlabel("predicted label")
    ax.set_ylabel("gold label")
    ax.set_title(f"accuracy {100 * metrics['accuracy']:.1f}%, macro-F1 {100 * metrics['macro_f1']:.1f}%"
                 f" (n={metrics['n']})", fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
