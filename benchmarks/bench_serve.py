"""Batch scoring as a user runs it: `python -m recipes.serve` over N query-note pairs, timed whole.

    python benchmarks/bench_serve.py --model DIR [DIR ...] [--pairs 4000] [--criteria compact]
                                     [--batch-size 32] [--threads 2]

Writes N raw pairs (test_random of a freshly generated benchmark, repeated to N rows with fresh
ids) as JSONL into a temporary folder and scores them with each model in turn, one process per
model, as a user would. Prints, per model, the rows scored, the pairs/s that ``recipes.serve``
reports (its whole loop: reading, validating, rendering, the forward passes, writing), of those the
forward passes' alone, and the wall time of the whole command (start-up and model load included), with the ratio of each
model's scoring rate to the first model's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def write_pairs(path: Path, n: int) -> None:
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark

    rows = generate_benchmark(BenchmarkConfig(seed=0, train_size=5, val_size=5, test_random_size=min(n, 2000),
                                              test_longtail_size=5, rank_queries=0, sft_size=0,
                                              progress=False))["test_random"]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            r = rows[i % len(rows)]
            f.write(json.dumps({"id": f"pair-{i}", "query": r["query"], "title": r["title"],
                                "content": r["content"], "tags": r["tags"]}, ensure_ascii=False) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", required=True, help="student folders (or model_zoo names)")
    ap.add_argument("--pairs", type=int, default=4000)
    ap.add_argument("--criteria", default="compact", help="the prompt the students were trained on")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "pairs.jsonl"
        write_pairs(pairs, args.pairs)
        for i, model in enumerate(args.model):
            out = Path(tmp) / f"m{i}" / "scores.jsonl"
            cmd = [sys.executable, "-m", "recipes.serve", "--model", model, "--input", str(pairs), "--out", str(out),
                   "--criteria", args.criteria, "--batch-size", str(args.batch_size), "--threads", str(args.threads),
                   "--device", "cpu", "--no-progress"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                                  env={**os.environ, "HF_HUB_OFFLINE": "1"})
            wall = time.perf_counter() - start
            if proc.returncode != 0:
                print(f"{model}: recipes.serve failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
                return 1
            summary = json.loads((out.parent / "summary.json").read_text())
            results.append({"model": model, "scored": summary["rows_scored"], "pairs_per_s": summary["pairs_per_s"],
                            "scoring": summary["scoring_pairs_per_s"], "wall_s": wall})
    base = results[0]["pairs_per_s"]
    print(f"{args.pairs} pairs, batch {args.batch_size}, {args.threads} thread(s), criteria {args.criteria}")
    print(f"{'model':60} {'scored':>7} {'pairs/s':>9} {'forward':>9} {'wall s':>8} {'ratio':>7}")
    for r in results:
        print(f"{r['model'][-60:]:60} {r['scored']:>7} {r['pairs_per_s']:>9.1f} {r['scoring']:>9.1f} "
              f"{r['wall_s']:>8.1f} {r['pairs_per_s'] / base:>6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
