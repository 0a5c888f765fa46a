"""The CPU miniature's warm-up sweep: build a warm-up, evaluate it (and checkpoints on the way).

    python benchmarks/sweep_warmup.py --steps 1000 --traces 2000 [--lr 3e-3] [--base mini]
                                      [--criteria compact] [--threads 2] [--pairs 300]
                                      [--splits test_random,test_longtail]
                                      [--checkpoints 1000,2000] [--group-probe 8 --probe-pairs 64]
                                      [--teacher sibling=unrelated:0.6] [--out DIR]

Builds ``--base`` (a model_zoo name) warmed up on ``--traces`` benchmark traces of ``--criteria``
for ``--steps`` steps of 8 (model_zoo.warmup, plain torch), then evaluates it on the first
``--pairs`` pairs of each of ``--splits`` of that criteria's benchmark, greedy, 256 new tokens,
batch 64. ``--checkpoints`` also saves and evaluates the model after those steps of the same run
(one learning-rate schedule, so a checkpoint is not the same as a shorter build). ``--teacher``
gives the traces a teacher's mistakes (`data_prep.teacher`: case=verdict:share, comma separated).

``--group-probe K`` measures what GRPO would have to learn from: K responses sampled at
``--temperature`` (the rollout's 1.0 by default) for each of the first ``--probe-pairs``
validation pairs, scored by the training reward. It prints the sampled accuracy, the share of
groups whose rewards differ (the only groups with a non-zero GRPO advantage), the share whose
correctness differs, and pass@K.

Prints the build time and each figure, and writes them to ``<out>/sweep.json``. docs/results.md
has the sweep it made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def group_probe(generator, data: Path, pairs: int, k: int, temperature: float, seed: int = 0) -> dict:
    """K sampled responses per pair, scored like the rollout: how many groups carry a GRPO signal."""
    from evaluation.evaluator import score_all
    from evaluation.generation import SamplingConfig, render_prompts
    from evaluation.scoring import load_rows

    rows = load_rows(data, pairs)
    prompt_ids = render_prompts(generator.tokenizer, [r["prompt"] for r in rows])
    repeated = [ids for ids in prompt_ids for _ in range(k)]
    cfg = SamplingConfig(max_new_tokens=256, temperature=temperature, seed=seed)
    start = time.perf_counter()
    texts = [g.text for g in generator.generate(repeated, cfg, progress=False)]
    seconds = time.perf_counter() - start
    records = score_all([r for r in rows for _ in range(k)], texts)
    groups = [records[i:i + k] for i in range(0, len(records), k)]
    return {
        "pairs": len(rows), "k": k, "temperature": temperature,
        "sampled_accuracy": sum(r["correct"] for r in records) / len(records),
        "sampled_format_ok": sum(r["format_ok"] for r in records) / len(records),
        "groups_with_reward_variance": sum(len({r["score"] for r in g}) > 1 for g in groups) / len(groups),
        "groups_with_mixed_correctness": sum(0 < sum(r["correct"] for r in g) < k for g in groups) / len(groups),
        "pass_at_k": sum(any(r["correct"] for r in g) for g in groups) / len(groups),
        "samples_per_s": len(records) / seconds,
    }


def _fmt(values: dict) -> str:
    return ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in values.items())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--traces", type=int, required=True)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--base", default="mini")
    ap.add_argument("--criteria", default="compact", help="criteria name or YAML path (prompt and trace style)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=300, help="pairs per evaluated split")
    ap.add_argument("--splits", default="test_random,test_longtail", help="comma-separated benchmark splits")
    ap.add_argument("--checkpoints", default="", help="comma-separated steps to save and evaluate on the way")
    ap.add_argument("--group-probe", type=int, default=0, metavar="K", help="responses per pair (0: no probe)")
    ap.add_argument("--probe-pairs", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=1.0, help="the group probe's sampling temperature")
    ap.add_argument("--teacher", default="", help="the warm-up teacher's mistakes, e.g. "
                    "'sibling=unrelated:0.6' (data_prep.teacher; default: none)")
    ap.add_argument("--out", default=None, help="default: runs/sweep/<settings>")
    args = ap.parse_args(argv)
    try:
        checkpoints = sorted({int(s) for s in args.checkpoints.split(",") if s.strip()})
    except ValueError:
        ap.error(f"--checkpoints takes comma-separated step numbers, got {args.checkpoints!r}")
    if any(not 0 < s < args.steps for s in checkpoints):
        ap.error(f"--checkpoints must lie between 1 and --steps - 1 ({args.steps - 1})")
    splits = [s.strip() for s in args.splits.split(",") if s.strip()]
    from data_prep.teacher import TeacherErrors
    try:
        TeacherErrors.parse(args.teacher)
    except ValueError as e:
        ap.error(str(e))

    from evaluation import evaluate, load_generator
    from model_zoo.warmup import build_tiny_sft
    from recipes.launch import default_data_dir, ensure_benchmark

    name = f"{args.base}-{Path(args.criteria).stem}-{args.steps}x8-{args.traces}-lr{args.lr:g}"
    if args.teacher:
        name += "-teacher-" + args.teacher.replace("=", "-").replace(":", "-").replace(",", "+")
    out = Path(args.out or REPO / "runs" / "sweep" / name)

    def save_checkpoint(step, model, tokenizer):
        if step in checkpoints:
            model.save_pretrained(out / f"step-{step}")
            tokenizer.save_pretrained(out / f"step-{step}")

    start = time.perf_counter()
    final = build_tiny_sft(out / "model", steps=args.steps, num_traces=args.traces, batch_size=8, lr=args.lr,
                           criteria=args.criteria, base=args.base, threads=args.threads, on_step=save_checkpoint,
                           teacher=args.teacher)
    result = {"settings": vars(args), "build_s": round(time.perf_counter() - start, 1), "points": {}}
    print(f"{name}: built in {result['build_s']} s (a cached build takes ~0 s)", flush=True)
    data = ensure_benchmark(default_data_dir(args.criteria), criteria=args.criteria)
    models = [(s, out / f"step-{s}") for s in checkpoints if (out / f"step-{s}").is_dir()] + [(args.steps, final)]
    for step, model in models:
        point = result["points"][str(step)] = {}
        generator = load_generator(str(model), "hf", "cpu", 64)
        for split in splits:
            m = evaluate(generator, data / f"{split}.parquet", out / "eval" / f"step-{step}" / split,
                         max_examples=args.pairs, mode="generate", progress=False, max_new_tokens=256)
            point[split] = {k: m.get(k) for k in ("n", "accuracy", "macro_f1", "format_error_rate", "pairs_per_s")}
            print(f"step {step} {split}: {_fmt(point[split])}", flush=True)
        if args.group_probe:
            point["group_probe"] = group_probe(generator, data / "val.parquet", args.probe_pairs, args.group_probe,
                                               args.temperature)
            print(f"step {step} group probe (val): {_fmt(point['group_probe'])}", flush=True)
        (out / "sweep.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
