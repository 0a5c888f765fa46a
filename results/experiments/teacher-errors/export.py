"""Copy the compact part of the teacher-error experiment's runs into this folder.

    python results/experiments/teacher-errors/export.py RUNS_DIR

RUNS_DIR holds the runs made by the commands in README.md: ``<method>-<tag>-s<seed>/`` (training,
its ``metrics.jsonl`` and ``summary.json``) and ``eval-*/`` (``python -m evaluation`` reports).
Written here: ``predictions/<eval>.jsonl`` (per pair: id, gold, pred, correct, step counts, so
``python -m evaluation.compare`` runs on them), ``metrics/<eval>.json`` (each report's metrics
without the per-example part), ``training/<run>.jsonl`` (the verl file log, trimmed to the
relevance, SAM, reward, validation and timing keys) and ``training/<run>.summary.json``.
"""

from __future__ import annotations

import fnmatch
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
PRED_FIELDS = ("id", "gold", "pred", "correct", "format_ok", "num_verifiable", "num_correct")
TRAIN_KEYS = ("critic/score/mean", "val-core/*", "relevance/*", "sam/*", "response_length/mean",
              "timing_s/*", "actor/entropy_loss", "actor/pg_clipfrac", "actor/grad_norm")


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def main(runs: Path) -> None:
    for ev in sorted(runs.glob("eval-*")):
        if not (ev / "metrics.json").exists():
            print(f"{ev}: no metrics.json (evaluation not finished), left out")
            continue
        rows = [json.loads(line) for line in (ev / "predictions.jsonl").open()]
        write(HERE / "predictions" / f"{ev.name}.jsonl",
              "".join(json.dumps({k: r[k] for k in PRED_FIELDS}) + "\n" for r in rows))
        metrics = json.loads((ev / "metrics.json").read_text())
        write(HERE / "metrics" / f"{ev.name}.json", json.dumps(metrics, indent=1) + "\n")
    for log in sorted(runs.glob("*-s[0-9]/metrics.jsonl")):
        if not (log.parent / "summary.json").exists():
            print(f"{log.parent}: still training (no summary.json), left out")
            continue
        lines = []
        for line in log.open():
            rec = json.loads(line)
            data = {k: v for k, v in rec["data"].items() if any(fnmatch.fnmatch(k, p) for p in TRAIN_KEYS)}
            lines.append(json.dumps({"step": rec["step"], "data": data}) + "\n")
        write(HERE / "training" / f"{log.parent.name}.jsonl", "".join(lines))
        summary = json.loads((log.parent / "summary.json").read_text())
        summary = {k: v for k, v in summary.items() if k not in ("metrics_log", "hf_model")}
        write(HERE / "training" / f"{log.parent.name}.summary.json", json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
