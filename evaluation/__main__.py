"""CLI: ``python -m evaluation --model PATH --data PARQUET [--out DIR] ...``."""

from __future__ import annotations

import argparse
import sys

from evaluation.arguments import error_exit, offline_torch, positive_int
from evaluation.evaluator import DEFAULT_MAX_NEW_TOKENS
from evaluation.generation import BACKENDS, DEVICES, resolve_backend
from evaluation.scoring import MODES


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m evaluation",
        description="Evaluate a relevance model on a labelled verl parquet "
                    "(accuracy, macro-F1, confusion matrix, step accuracy, speed).")
    ap.add_argument("--model", required=True,
                    help="a Hugging Face model folder, or a built-in model name (tiny, smollm2)")
    ap.add_argument("--data", required=True, help="an RL parquet written by data_prep")
    ap.add_argument("--out", default=None, help="report folder (default: <cache>/eval/<model>__<data>)")
    ap.add_argument("--max-examples", type=positive_int, default=None, help="evaluate the first N rows only")
    ap.add_argument("--batch-size", type=positive_int, default=16, help="prompts per generate call (hf backend)")
    ap.add_argument("--max-new-tokens", type=positive_int, default=None,
                    help=f"default: {DEFAULT_MAX_NEW_TOKENS['generate']} (generate), "
                         f"{DEFAULT_MAX_NEW_TOKENS['classify']} (classify)")
    ap.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="auto: vllm when installed and on a GPU, else hf")
    ap.add_argument("--device", choices=DEVICES, default="auto")
    ap.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    ap.add_argument("--top-p", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mode", choices=MODES, default="generate",
                    help="generate: criteria-guided reasoning scored by the reward; "
                         "classify: a student that writes the label directly; "
                         "score: the same student read in one forward pass (label distribution, E[y])")
    ap.add_argument("--ranking", action=argparse.BooleanOptionalAction, default=None,
                    help="NDCG@5, NDCG@10 and MRR over the rows grouped by query "
                         "(default: on for the ranking splits rank_random, rank_longtail)")
    ap.add_argument("--threads", type=positive_int, default=None,
                    help="CPU threads for torch (default: torch's choice); 1 is often fastest "
                         "on a machine shared with other jobs")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    offline_torch(args.threads)
    from evaluation.evaluator import evaluate
    from evaluation.scoring import DataError
    from model_zoo import ModelZooError

    try:
        resolve_backend(args.backend, args.device)  # e.g. --device cuda on a machine without a GPU
    except RuntimeError as exc:
        return error_exit(exc)
    try:
        m = evaluate(args.model, args.data, args.out, max_examples=args.max_examples,
                     batch_size=args.batch_size, max_new_tokens=args.max_new_tokens,
                     backend=args.backend, device=args.device, temperature=args.temperature,
                     top_p=args.top_p, seed=args.seed, mode=args.mode, progress=not args.no_progress,
                     ranking=args.ranking)
    except (DataError, ModelZooError, OSError) as exc:  # OSError: the report folder cannot be written
        return error_exit(exc, args.out)

    def pct(v):
        return "n/a" if v is None else f"{100 * v:.2f}%"

    print(f"examples {m['n']}  accuracy {pct(m['accuracy'])}  macro-F1 {pct(m['macro_f1'])}  "
          f"step acc {pct(m['step_accuracy'])}  format errors {pct(m['format_error_rate'])}  "
          f"mean reward {m['mean_reward']:.4f}")
    if m.get("ranking"):
        r = m["ranking"]
        print(f"ranking over {r['queries']} queries: NDCG@5 {pct(r['ndcg@5'])}  NDCG@10 {pct(r['ndcg@10'])}  "
              f"MRR {pct(r['mrr'])}")
    if m["pairs_per_s"]:
        print(f"{m['backend']} on {m['device']}: {m['pairs_per_s']:.2f} pairs/s, "
              f"{1000 * m['latency_s_per_pair']:.1f} ms/pair")
    print(f"report: {m['out_dir']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
