"""Training curves from verl's file logger (``trainer.logger=[file]``).

The log is JSONL, one line per step: ``{"step": int, "data": {metric: value}}``.
Each panel plots the first matching group of keys; panels whose keys are all
absent are skipped, so the same call works for GRPO and GRPO + SAM runs.

    python -m evaluation.curves --log run.jsonl --out curves.png
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import sys
from pathlib import Path

# (panel title, alternatives): each alternative is a list of key patterns
# (fnmatch); the first alternative with any present key is plotted, all its
# matches as lines of the panel.
PANELS: tuple[tuple[str, tuple[tuple[str, ...], ...]], ...] = (
    ("train reward", (("critic/score/mean",), ("critic/rewards/mean",))),
    ("validation accuracy", (("val-core/*/acc/mean@1",), ("val-core/*",))),
    ("relevance accuracy (train)", (("relevance/acc",),)),
    ("format-error rate (train)", (("relevance/format_error_rate",),)),
    ("SAM masked fraction, A > 0", (("sam/masked_frac_pos",),)),
    ("SAM masked fraction, A < 0", (("sam/masked_frac_neg",),)),
    ("step accuracy (train)", (("sam/step_acc",), ("relevance/step_acc",))),
    ("response length", (("response_length/mean",),)),
    ("seconds per step", (("timing_s/step",),)),
)
MAX_LINES = 8  # a panel with more matching keys shows the first ones only


def read_log(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """Metric -> [(step, value)], numbers only; unreadable lines are skipped.

    A run that was killed mid-write leaves a partial last line; the curves of
    everything before it are still worth plotting.
    """
    series: dict[str, list[tuple[int, float]]] = {}
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                entry = json.loads(line)
                step, data = int(entry["step"]), entry["data"]
            except (ValueError, TypeError, KeyError):
                continue
            if not isinstance(data, dict):
                continue
            for key, value in data.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    continue
                if math.isfinite(value):
                    series.setdefault(key, []).append((step, float(value)))
    return series


def select_panels(series: dict[str, list]) -> list[tuple[str, list[str]]]:
    """The panels with data: (title, keys to plot)."""
    chosen = []
    for title, alternatives in PANELS:
        for patterns in alternatives:
            keys = sorted(k for k in series if any(fnmatch.fnmatchcase(k, p) for p in patterns))
            if keys:
                chosen.append((title, keys[:MAX_LINES]))
                break
    return chosen


def plot_training_curves(metrics_jsonl: str | Path, out_png: str | Path) -> dict[str, list[str]]:
    """Plot the key curves of a verl file-logger JSONL into one PNG; returns {panel: keys}.

    With no known metric in the log, the PNG says so (a pipeline step never
    fails for want of a figure) and the returned dict is empty.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = read_log(metrics_jsonl)
    panels = select_panels(series)
    ncols = min(3, max(1, len(panels)))
    nrows = max(1, math.ceil(len(panels) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.6 * ncols, 3.2 * nrows), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, (title, keys) in zip(flat, panels):
        for key in keys:
            points = sorted(series[key])
            ax.plot([p[0] for p in points], [p[1] for p in points],
                    marker="o" if len(points) < 20 else None, markersize=3, label=key)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in flat[len(panels):]:
        ax.axis("off")
    if not panels:
        flat[0].text(0.5, 0.5, f"no known metrics in\n{Path(metrics_jsonl).name}",
                     ha="center", va="center")
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return {title: keys for title, keys in panels}


# The learning-curve figure of the tables: (panel title, metric patterns), one line per method.
BAND_PANELS = (
    ("validation accuracy", ("val-core/*/acc/mean@1",)),
    ("mean training reward", ("critic/score/mean",)),
    ("SAM masked fraction, A > 0", ("sam/masked_frac_pos",)),
    ("SAM masked fraction, A < 0", ("sam/masked_frac_neg",)),
    # the reward's batch step accuracy: logged under GRPO and SAM alike, so the methods compare
    ("step accuracy (train, sampled)", ("relevance/step_acc", "sam/step_acc")),
    ("policy entropy", ("actor/entropy", "actor/entropy_loss")),
)


def seed_bands(logs: list[str | Path], patterns: tuple[str, ...]) -> list[tuple[int, float, float, float]]:
    """(step, mean, min, max) over the runs' values of the first key matching ``patterns``."""
    by_step: dict[int, list[float]] = {}
    for log in logs:
        series = read_log(log)
        key = next((k for k in sorted(series) if any(fnmatch.fnmatchcase(k, p) for p in patterns)), None)
        for step, value in series.get(key, []) if key else []:
            by_step.setdefault(step, []).append(value)
    return [(s, sum(v) / len(v), min(v), max(v)) for s, v in sorted(by_step.items())]


def plot_seed_bands(runs: dict[str, list[str | Path]], out_png: str | Path, title: str = "") -> list[str]:
    """One line per method (mean over its seeds' logs) with a min-max band; returns the panels drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    drawn = []
    fig, axes = plt.subplots(2, 3, figsize=(14, 7), squeeze=False)
    for ax, (panel, patterns) in zip([a for row in axes for a in row], BAND_PANELS):
        for i, (method, logs) in enumerate(runs.items()):
            points = seed_bands(logs, patterns)
            if not points:
                continue
            xs, color = [p[0] for p in points], f"C{i}"  # one colour per method in every panel
            ax.plot(xs, [p[1] for p in points], marker="o" if len(xs) < 12 else None, markersize=3,
                    color=color, label=f"{method} (n={len(logs)})")
            ax.fill_between(xs, [p[2] for p in points], [p[3] for p in points], color=color, alpha=0.2)
        if ax.lines:
            drawn.append(panel)
            ax.legend(fontsize=7)
        ax.set_title(panel, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    if title:  # the band's legend only where some method has more than one run
        several = any(len(logs) > 1 for logs in runs.values())
        fig.suptitle(title + (" (line: mean over seeds; band: min to max)" if several else ""), fontsize=10)
    fig.tight_layout()
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return drawn


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.curves",
                                 description="Plot training curves from a verl file-logger JSONL.")
    ap.add_argument("--log", required=True, help="the JSONL written by verl's file logger")
    ap.add_argument("--out", required=True, help="the PNG to write")
    args = ap.parse_args(argv)
    if not Path(args.log).is_file():
        ap.error(f"no such log file: {args.log}")
    panels = plot_training_curves(args.log, args.out)
    if not panels:
        print(f"warning: no known metrics in {args.log}", file=sys.stderr)
    for title, keys in panels.items():
        print(f"{title}: {', '.join(keys)}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
