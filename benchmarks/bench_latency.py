"""Serving latency, teacher vs student, in one run on one machine: pairs/s, p50 / p99 ms per pair.

* teacher: the reasoning model, greedy criteria-guided judgements (`evaluation.generation`);
* student (generate): the label-only student writing ``<answer>L</answer>`` (up to 8 tokens);
* student (one pass): the same student read at its label tokens (`evaluation.label_scorer`), or a
  classification-head student read by its head (it has no generate row).

``--student`` takes several folders: each is timed the same way, against the same teacher.

Each at every ``--batch-sizes`` (default 1 and 32) on the same benchmark pairs (test_random of a
freshly generated benchmark unless ``--data`` names an RL parquet), via
`evaluation.latency.measure_latency`; the speed-up is over the teacher at the same batch size.

    python benchmarks/bench_latency.py [--teacher tiny-sft] [--student tiny-label [DIR ...]] [--pairs 64]
        [--teacher-pairs 32] [--batch-sizes 1 32] [--max-new-tokens 1024] [--threads 1]
        [--device cpu|cuda] [--data PARQUET] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def load_prompts(data: str | None, n: int) -> list[list[dict]]:
    if data:
        from evaluation.scoring import load_rows

        return [row["prompt"] for row in load_rows(data, n)]
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.prompt import render_prompt

    rows = generate_benchmark(BenchmarkConfig(seed=0, train_size=5, val_size=5, test_random_size=n,
                                              test_longtail_size=5, rank_queries=0, sft_size=0,
                                              progress=False))["test_random"]
    return [render_prompt(r["query"], r["title"], r["content"], r["tags"]) for r in rows]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", default="tiny-sft")
    ap.add_argument("--student", nargs="+", default=["tiny-label"],
                    help="students: model_zoo names or folders (a label-only LM or a classification head)")
    ap.add_argument("--pairs", type=int, default=64, help="pairs timed for the student")
    ap.add_argument("--teacher-pairs", type=int, default=32, help="pairs timed for the teacher (the slow one)")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--max-new-tokens", type=int, default=1024, help="the teacher's limit per judgement")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--data", default=None, help="an RL parquet (default: a generated test_random)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import torch

    from evaluation.generation import SamplingConfig, load_generator, render_prompts
    from evaluation.label_scorer import is_classifier_folder, load_scorer
    from evaluation.latency import generate_fn, measure_latency
    from model_zoo import resolve_model

    torch.set_num_threads(args.threads)
    chats = load_prompts(args.data, max(args.pairs, args.teacher_pairs))
    biggest = max(args.batch_sizes)
    teacher = load_generator(str(resolve_model(args.teacher)), "hf", args.device, biggest)
    students = [str(resolve_model(s)) for s in args.student]
    student_gens = {p: load_generator(p, "hf", args.device, biggest) for p in students
                    if not is_classifier_folder(p)}
    named = len(students) > 1
    rows = []
    for bs in args.batch_sizes:
        t_ids = render_prompts(teacher.tokenizer, chats)[:args.teacher_pairs]
        runs = {"teacher (reasoning, generate)": measure_latency(
            generate_fn(teacher, SamplingConfig(max_new_tokens=args.max_new_tokens)), t_ids, bs)}
        for path, given in zip(students, args.student):
            tag = f" {given}" if named else ""
            scorer = load_scorer(path, args.device, bs)  # a fresh prefix cache per batch size
            ids = render_prompts(scorer.tokenizer, chats)[:args.pairs]
            if path in student_gens:
                runs[f"student{tag} (label, generate)"] = measure_latency(
                    generate_fn(student_gens[path], SamplingConfig(max_new_tokens=8)), ids, bs)
            kind = "head" if is_classifier_folder(path) else "label"
            runs[f"student{tag} ({kind}, one pass)"] = measure_latency(scorer.score, ids, bs)
        base = runs["teacher (reasoning, generate)"]["pairs_per_s"]
        for name, r in runs.items():
            rows.append({"model": name, **r, "speedup": r["pairs_per_s"] / base})
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} thread(s), "
          f"device {args.device}; teacher {args.teacher}, students {' '.join(args.student)}")
    width = max(32, *(len(r["model"]) for r in rows))
    print(f"{'model':{width}} {'batch':>5} {'pairs':>5} {'pairs/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'speed-up':>9}")
    for r in rows:
        print(f"{r['model']:{width}} {r['batch_size']:>5} {r['pairs']:>5} {r['pairs_per_s']:>9.2f} "
              f"{r['p50_ms']:>9.2f} {r['p99_ms']:>9.2f} {r['speedup']:>8.1f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
