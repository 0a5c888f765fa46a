"""Rebuild this folder's tables and figure from its data (run from the repository root):

    .venv/bin/python results/experiments/teacher-errors/make_tables.py

Writes comparisons.md / comparisons.json (``evaluation.compare``: A - B with paired intervals over
the pairs and a t interval over the seeds), label_shift.md (per gold label recall, the share of each
predicted label, greedy accuracy per reasoning step; seeds averaged) and learning_curves.png.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from evaluation.compare import compare, load_predictions, markdown
from evaluation.curves import plot_seed_bands

HERE = Path(__file__).resolve().parent
SPLITS = ("test_random", "test_longtail")
SEEDS = (1, 2, 3)
METHODS = {"grpo_sam": "GRPO + SAM", "grpo": "GRPO"}
LABELS = ("3", "2", "1", "0", "-1")
STEPS = ("query_analysis", "subject_match", "need", "constraints")


LONG = "t2000x80"  # the 80-step runs, seed 1 only


def evals(method: str, split: str, tag: str = "t2000") -> list[Path]:
    if method == "warmup":
        return [HERE / "predictions" / f"eval-warmup-t2000-{split}.jsonl"]
    seeds = (1,) if tag == LONG else SEEDS
    return [HERE / "predictions" / f"eval-{method}-{tag}-s{s}-rl-{split}.jsonl" for s in seeds]


def comparisons() -> None:
    text, figures = [], {}
    for split in SPLITS:
        text.append(f"## {split}\n")
        for key, a, b in (("sam_vs_grpo", "grpo_sam", "grpo"), ("sam_vs_warmup", "grpo_sam", "warmup"),
                          ("grpo_vs_warmup", "grpo", "warmup")):
            result = compare([load_predictions(f) for f in evals(a, split)],
                             [load_predictions(f) for f in evals(b, split)])
            result["a"] = [Path(f).name for f in result["a"]]
            result["b"] = [Path(f).name for f in result["b"]]
            result["pairs_not_shared"] = {Path(f).name: n for f, n in result["pairs_not_shared"].items()}
            figures[f"{split}/{key}"] = result
            text.append(markdown(result, METHODS.get(a, "warm-up"), METHODS.get(b, "warm-up")))
    if all(f.exists() for m in METHODS for split in SPLITS for f in evals(m, split, LONG)):
        text.append("# 80 steps, seed 1 (the same runs, twice as long)\n")
        for split in SPLITS:
            text.append(f"## {split}, 80 steps\n")
            for key, (a, ta), (b, tb) in (
                    ("sam80_vs_grpo80", ("grpo_sam", LONG), ("grpo", LONG)),
                    ("sam80_vs_warmup", ("grpo_sam", LONG), ("warmup", LONG)),
                    ("grpo80_vs_warmup", ("grpo", LONG), ("warmup", LONG)),
                    ("sam80_vs_sam40", ("grpo_sam", LONG), ("grpo_sam", "t2000")),
                    ("grpo80_vs_grpo40", ("grpo", LONG), ("grpo", "t2000"))):
                fa, fb = evals(a, split, ta), evals(b, split, tb)[:1]  # seed 1 of the 40-step runs
                result = compare([load_predictions(f) for f in fa], [load_predictions(f) for f in fb])
                for side in ("a", "b"):
                    result[side] = [Path(f).name for f in result[side]]
                result["pairs_not_shared"] = {Path(f).name: n for f, n in result["pairs_not_shared"].items()}
                figures[f"{split}/{key}"] = result
                name = {LONG: " (80 steps)", "t2000": " (40 steps)"}
                text.append(markdown(result, METHODS.get(a, "warm-up") + (name[ta] if a != "warmup" else ""),
                                     METHODS.get(b, "warm-up") + (name[tb] if b != "warmup" else "")))
    write(HERE / "comparisons.md", "\n".join(text))
    write(HERE / "comparisons.json", json.dumps(figures, indent=1) + "\n")


def label_shift() -> None:
    lines = ["# Where the labels go (greedy, 1000 pairs per split; RL rows: mean over 3 seeds)", ""]
    for split in SPLITS:
        lines += [f"## {split}", "", "| model | accuracy | macro-F1 | recall 3 / 2 / 1 / 0 / -1 | predicted share "
                  "3 / 2 / 1 / 0 / -1 | step accuracy: query / subject / need / constraints |",
                  "|---|---:|---:|---|---|---|"]
        for method in ("warmup", "grpo", "grpo_sam"):
            ms = [json.loads((HERE / "metrics" / (f.stem + ".json")).read_text()) for f in evals(method, split)]

            def mean(get) -> float:
                return statistics.fmean(get(m) for m in ms)
            recall = [mean(lambda m, g=g: 100 * m["per_class"][g]["recall"]) for g in LABELS]
            share = [mean(lambda m, g=g: 100 * m["per_class"][g]["predicted"] / m["n"]) for g in LABELS]
            steps = [mean(lambda m, k=k: 100 * m["per_step_accuracy"][k]["acc"]) for k in STEPS]
            name = METHODS.get(method, "warm-up")
            lines.append(f"| {name} | {mean(lambda m: 100 * m['accuracy']):.1f} | {mean(lambda m: m['macro_f1']):.3f} | "
                         + " / ".join(f"{x:.1f}" for x in recall) + " | " + " / ".join(f"{x:.1f}" for x in share)
                         + " | " + " / ".join(f"{x:.1f}" for x in steps) + " |")
        lines.append("")
    write(HERE / "label_shift.md", "\n".join(lines))


def by_case() -> None:
    """Accuracy per construction case: did RL correct the cases the teacher got wrong?"""
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark

    # the launcher's benchmark: default sizes, seed 0 (the case is not written to the parquet)
    splits = generate_benchmark(BenchmarkConfig(criteria="compact", sft_size=0, progress=False))
    lines = ["# Accuracy per construction case (greedy; RL: mean ± sd over 3 seeds)", "",
             "The teacher wrote `unrelated` in 60% of the `sibling` traces and `related` in 60% of the "
             "`keyword_collision` ones.", ""]
    for split in SPLITS:
        rows = {r["id"]: r for r in splits[split]}
        scores = {m: [load_predictions(f) for f in evals(m, split)] for m in ("warmup", "grpo", "grpo_sam")}
        gold = {json.loads(line)["id"]: json.loads(line)["gold"] for line in evals("warmup", split)[0].open()}
        wrong = [i for i, g in gold.items() if i not in rows or rows[i]["label"] != g]
        if wrong:
            raise SystemExit(f"the regenerated benchmark differs from the evaluated one at {wrong[0]}")
        cases = sorted({rows[i]["case"] for i in gold}, key=lambda c: (-sum(rows[i]["case"] == c for i in gold), c))
        lines += [f"## {split}", "", "| case | gold labels | pairs | warm-up | GRPO | GRPO + SAM |",
                  "|---|---|---:|---:|---:|---:|"]
        for case in cases:
            ids = [i for i in gold if rows[i]["case"] == case]
            labels = "/".join(str(g) for g in sorted({gold[i] for i in ids}, reverse=True))
            cells = []
            for m in ("warmup", "grpo", "grpo_sam"):
                acc = [100 * statistics.fmean(r.correct[i] for i in ids) for r in scores[m]]
                cells.append(f"{statistics.fmean(acc):.1f}" + (f" ± {statistics.stdev(acc):.1f}" if len(acc) > 1 else ""))
            lines.append(f"| {case} | {labels} | {len(ids)} | " + " | ".join(cells) + " |")
        lines.append("")
    write(HERE / "by_case.md", "\n".join(lines))


def training_blocks() -> None:
    """Means of the sampled responses' metrics over blocks of 10 steps, and median timings, per run."""
    keys = (("relevance/acc", "sampled acc"), ("relevance/step_acc", "step acc"),
            ("relevance/format_error_rate", "format errors"), ("sam/masked_frac_pos", "SAM masked, A > 0"),
            ("sam/masked_frac_neg", "SAM masked, A < 0"))
    lines = ["# Training, in blocks of 10 steps (means over the steps of each block, percent)", "",
             "| run | steps | " + " | ".join(k[1] for k in keys) + " |", "|---|---|" + "---:|" * len(keys)]
    timing = ["", "| run | median step s | generation s | update s | response tokens |",
              "|---|---:|---:|---:|---:|"]
    for log in sorted((HERE / "training").glob("*-s[0-9].jsonl")):
        recs = [json.loads(line) for line in log.open()]
        recs = [r for r in recs if "timing_s/step" in r["data"]]  # training steps (not the step-0 validation)
        for start in range(0, len(recs), 10):
            block = recs[start:start + 10]
            cells = [f"{100 * statistics.fmean(r['data'][k] for r in block):.1f}" if k in block[0]["data"] else "-"
                     for k, _ in keys]
            lines.append(f"| {log.stem} | {block[0]['step']}-{block[-1]['step']} | " + " | ".join(cells) + " |")

        def med(key: str) -> float:
            return statistics.median(r["data"][key] for r in recs if key in r["data"])
        timing.append(f"| {log.stem} | {med('timing_s/step'):.1f} | {med('timing_s/gen'):.1f} | "
                      f"{med('timing_s/update_actor'):.1f} | {med('response_length/mean'):.0f} |")
    write(HERE / "training_blocks.md", "\n".join(lines + timing) + "\n")


def curves() -> None:
    runs = {m: sorted((HERE / "training").glob(f"{m}-t2000-s[0-9].jsonl")) for m in ("grpo", "grpo_sam")}
    plot_seed_bands(runs, HERE / "learning_curves.png", title="RL from the teacher-error warm-up, 3 seeds")
    long = {m: sorted((HERE / "training").glob(f"{m}-t2000x80-s[0-9].jsonl")) for m in ("grpo", "grpo_sam")}
    if all(long.values()):
        plot_seed_bands(long, HERE / "learning_curves_80_steps.png",
                        title="RL from the teacher-error warm-up, 80 steps, seed 1")


def write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


if __name__ == "__main__":
    comparisons()
    label_shift()
    by_case()
    training_blocks()
    curves()
    print(f"wrote comparisons.md, comparisons.json, label_shift.md, by_case.md, training_blocks.md and the learning curves in {HERE}")
