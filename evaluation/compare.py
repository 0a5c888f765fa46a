"""Compare two methods evaluated on the same pairs: paired intervals over pairs and over seeds.

    python -m evaluation.compare --a runs/sam-s1/eval runs/sam-s2/eval --b runs/grpo-s1/eval runs/grpo-s2/eval

Each folder is one ``python -m evaluation`` report (its ``predictions.jsonl``, or that file
itself), one per seed.
Two metrics, both read per pair: accuracy (the final label is correct) and step accuracy
(correct / verifiable steps, summed over pairs as in ``metrics.step_accuracy``, so the figure
equals the report's; not compared when an evaluation has no verifiable step, as for a model that
writes the label alone or reasons free-form). Two intervals, which answer different questions:

- *over pairs*: seeds are averaged per pair, then the pairs are resampled (a paired bootstrap,
  ``evaluation.stats``). It says how sure the difference is on this pair distribution for
  these trained models; it does not include how much a retrained model would differ.
- *over seeds*: when A and B have the same number of folders, the i-th of A is paired with the
  i-th of B (same seed, same warm-up, same data order) and a Student t interval is taken over
  the per-seed differences. With few seeds it is wide; it is the one that says whether the
  method, retrained, wins. A single B folder (e.g. the warm-up) is paired with every A.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from evaluation.arguments import error_exit
from evaluation.report import PREDICTIONS_FILE
from evaluation.stats import Interval, paired_bootstrap, paired_mean_difference

METRICS = ("accuracy", "step_accuracy")
# Two-sided 95% Student t quantiles by degrees of freedom (scipy is not a dependency).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
        10: 2.228, 15: 2.131, 20: 2.086, 30: 2.042, 60: 2.000, 120: 1.980}


@dataclass(frozen=True)
class PairScores:
    """One evaluation's per-pair counts, in pair-id order."""
    folder: str
    correct: dict[str, float]  # id -> 1.0 / 0.0
    step_correct: dict[str, float]  # id -> correct verifiable steps
    step_verifiable: dict[str, float]  # id -> verifiable steps


def load_predictions(folder: str | Path) -> PairScores:
    """Read a report's predictions (its folder, or the JSONL file itself); a missing file or
    field raises ValueError naming it."""
    path = Path(folder)
    if not path.is_file():
        path = path / PREDICTIONS_FILE
    if not path.is_file():
        raise ValueError(f"{path}: no such file; pass folders written by `python -m evaluation --out DIR` "
                         "or their predictions.jsonl")
    correct, sc, sv = {}, {}, {}
    with path.open(encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, 1):
            try:
                row = json.loads(line)
                pid = str(row["id"])
                correct[pid] = float(bool(row["correct"]))
                sc[pid], sv[pid] = float(row["num_correct"]), float(row["num_verifiable"])
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{line_no}: not a prediction record ({exc})") from None
            except KeyError as exc:
                raise ValueError(f"{path}:{line_no}: field {exc} missing; re-run the evaluation "
                                 "with this version of the project") from None
    if not correct:
        raise ValueError(f"{path}: no predictions")
    return PairScores(str(folder), correct, sc, sv)


def common_ids(runs: Sequence[PairScores]) -> list[str]:
    ids = set(runs[0].correct)
    for r in runs[1:]:
        ids &= set(r.correct)
    return sorted(ids)


def _columns(runs: Sequence[PairScores], ids: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair, the mean over seeds of correctness, correct steps and verifiable steps."""
    def mean_of(field: str) -> np.ndarray:
        return np.mean([[getattr(r, field)[i] for i in ids] for r in runs], axis=0)
    return mean_of("correct"), mean_of("step_correct"), mean_of("step_verifiable")


def metric_value(run: PairScores, ids: list[str], metric: str) -> float:
    acc, c, v = _columns([run], ids)
    return float(acc.mean()) if metric == "accuracy" else float(c.sum() / max(v.sum(), 1e-12))


def interval_over_pairs(a: Sequence[PairScores], b: Sequence[PairScores], ids: list[str], metric: str,
                        resamples: int = 10_000) -> Interval:
    """Paired bootstrap of A - B over the pairs, each side averaged over its seeds per pair."""
    acc_a, ca, va = _columns(a, ids)
    acc_b, cb, vb = _columns(b, ids)
    if metric == "accuracy":
        return paired_mean_difference(acc_a, acc_b, resamples=resamples)

    def ratio_diff(idx: np.ndarray) -> float:  # micro step accuracy recomputed on the resample
        return float(ca[idx].sum() / max(va[idx].sum(), 1e-12) - cb[idx].sum() / max(vb[idx].sum(), 1e-12))
    return paired_bootstrap(ratio_diff, len(ids), resamples=resamples)


def t_quantile(df: int) -> float:
    """The 95% two-sided t quantile, from the table (the next smaller df listed: conservative)."""
    if df < 1:
        raise ValueError(f"a t interval needs at least one degree of freedom, got {df}")
    return _T95[max(k for k in _T95 if k <= df)]


def interval_over_seeds(diffs: Sequence[float]) -> tuple[float, float, float] | None:
    """Mean of the per-seed differences and its 95% t interval; None with fewer than two seeds."""
    if len(diffs) < 2:
        return None
    mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
    half = t_quantile(len(diffs) - 1) * sd / math.sqrt(len(diffs))
    return mean, mean - half, mean + half


def compare(a: Sequence[PairScores], b: Sequence[PairScores], resamples: int = 10_000) -> dict:
    """Both intervals for every metric, with each side's per-seed values."""
    if len(b) not in (1, len(a)):
        raise ValueError(f"--b has {len(b)} folders: give one (paired with every A) or as many as --a ({len(a)})")
    ids = common_ids([*a, *b])
    if not ids:
        raise ValueError("the A and B evaluations share no pair id: evaluate them on the same split")
    result = {"pairs": len(ids), "pairs_not_shared": {r.folder: len(r.correct) - len(ids) for r in (*a, *b)},
              "a": [r.folder for r in a], "b": [r.folder for r in b], "metrics": {}}
    no_steps = [r.folder for r in (*a, *b) if not any(r.step_verifiable[i] for i in ids)]
    if no_steps:  # a model that writes the label alone (or free-form reasoning): no steps to compare
        result["not_compared"] = {"step_accuracy": f"no verifiable step in {', '.join(no_steps)}"}
    for metric in METRICS:
        if metric in result.get("not_compared", {}):
            continue
        va = [metric_value(r, ids, metric) for r in a]
        vb = [metric_value(r, ids, metric) for r in b]
        pairs = interval_over_pairs(a, b, ids, metric, resamples)
        seeds = interval_over_seeds([x - (vb[0] if len(vb) == 1 else vb[i]) for i, x in enumerate(va)])
        per_seed = ([interval_over_pairs([ra], [rb], ids, metric, resamples) for ra, rb in
                     zip(a, b if len(b) == len(a) else b * len(a))])
        result["metrics"][metric] = {
            "a": va, "b": vb, "over_pairs": [pairs.diff, pairs.low, pairs.high],
            "over_seeds": list(seeds) if seeds else None,
            "per_seed": [[iv.diff, iv.low, iv.high] for iv in per_seed]}
    return result


def _pct(x: float) -> str:
    return f"{100 * x:+.1f}"


def _mean_sd(values: list[float]) -> str:
    return f"{100 * statistics.fmean(values):.1f}" + (f" ± {100 * statistics.stdev(values):.1f}" if len(values) > 1 else "")


def markdown(result: dict, name_a: str = "A", name_b: str = "B") -> str:
    lines = [f"{name_a} - {name_b} on {result['pairs']} shared pairs "
             f"({len(result['a'])} vs {len(result['b'])} evaluations)", "",
             f"| metric | {name_a} (mean ± sd) | {name_b} | per seed, over pairs | over pairs (seeds pooled) | over seeds (t) |",
             "|---|---:|---:|---|---|---|"]
    for metric, m in result["metrics"].items():
        per_seed = "; ".join(f"{_pct(d)} [{_pct(lo)}, {_pct(hi)}]" for d, lo, hi in m["per_seed"])
        d, lo, hi = m["over_pairs"]
        seeds = m["over_seeds"]
        seeds_txt = f"{_pct(seeds[0])} [{_pct(seeds[1])}, {_pct(seeds[2])}]" if seeds else "n/a (one seed)"
        lines.append(f"| {metric.replace('_', ' ')} | {_mean_sd(m['a'])} | {_mean_sd(m['b'])} | {per_seed} | "
                     f"{_pct(d)} [{_pct(lo)}, {_pct(hi)}] | {seeds_txt} |")
    lines += [f"| {metric.replace('_', ' ')} | not compared: {why} | | | | |"
              for metric, why in result.get("not_compared", {}).items()]
    dropped = {f: n for f, n in result["pairs_not_shared"].items() if n}
    if dropped:
        lines += ["", "pairs left out (not in every evaluation): " + ", ".join(f"{f}: {n}" for f, n in dropped.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.compare", description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", nargs="+", required=True, help="evaluation folders of method A, one per seed")
    ap.add_argument("--b", nargs="+", required=True,
                    help="evaluation folders of method B: one per seed in A's order, or one for all")
    ap.add_argument("--name-a", default="A")
    ap.add_argument("--name-b", default="B")
    ap.add_argument("--json", default=None, help="also write the figures to this JSON file")
    ap.add_argument("--resamples", type=int, default=10_000)
    args = ap.parse_args(argv)
    try:
        result = compare([load_predictions(f) for f in args.a], [load_predictions(f) for f in args.b],
                         args.resamples)
    except ValueError as exc:
        return error_exit(exc)
    print(markdown(result, args.name_a, args.name_b), end="")
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n")
        tmp.replace(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
