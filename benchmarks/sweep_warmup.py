"""One point of the CPU miniature's warm-up sweep: build a warm-up, evaluate it greedily.

    python benchmarks/sweep_warmup.py --steps 1000 --traces 2000 [--lr 3e-3] [--base mini]
                                      [--criteria compact] [--threads 2] [--pairs 300]
                                      [--out DIR]

Builds ``--base`` (a model_zoo name) warmed up on ``--traces`` benchmark traces of ``--criteria``
for ``--steps`` steps of 8 (model_zoo.warmup, plain torch), then evaluates it on the first
``--pairs`` pairs of test_random and test_longtail of that criteria's benchmark, greedy, 256 new
tokens, batch 64. Prints the build time, each split's accuracy, macro-F1, format-error rate and
pairs/s, and writes them to ``<out>/sweep.json``. docs/results.md has the sweep it made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--traces", type=int, required=True)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--base", default="mini")
    ap.add_argument("--criteria", default="compact", help="criteria name or YAML path (prompt and trace style)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=300, help="pairs per test split")
    ap.add_argument("--out", default=None, help="default: runs/sweep/<settings>")
    args = ap.parse_args(argv)

    from evaluation import evaluate, load_generator
    from model_zoo.warmup import build_tiny_sft
    from recipes.launch import default_data_dir, ensure_benchmark

    name = f"{args.base}-{Path(args.criteria).stem}-{args.steps}x8-{args.traces}-lr{args.lr:g}"
    out = Path(args.out or REPO / "runs" / "sweep" / name)
    start = time.perf_counter()
    model = build_tiny_sft(out / "model", steps=args.steps, num_traces=args.traces, batch_size=8, lr=args.lr,
                           criteria=args.criteria, base=args.base, threads=args.threads)
    result = {"settings": vars(args), "build_s": round(time.perf_counter() - start, 1)}
    print(f"{name}: built in {result['build_s']} s (a cached build takes ~0 s)", flush=True)
    data = ensure_benchmark(default_data_dir(args.criteria), criteria=args.criteria)
    generator = load_generator(str(model), "hf", "cpu", 64)
    for split in ("test_random", "test_longtail"):
        m = evaluate(generator, data / f"{split}.parquet", out / "eval" / split, max_examples=args.pairs,
                     mode="generate", progress=False, max_new_tokens=256)
        result[split] = {k: m.get(k) for k in ("n", "accuracy", "macro_f1", "format_error_rate", "pairs_per_s")}
        print(f"{split}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                                       for k, v in result[split].items()), flush=True)
    (out / "sweep.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
