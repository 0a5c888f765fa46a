"""Distillation: the RL-trained teacher labels an unlabelled pool; a student learns to write the label.

    python -m recipes.distill --teacher PATH --pool PARQUET --student tiny|smollm2|PATH --out DIR
                              [--max-pool N] [--steps N] [--seed N] [--machine auto|cpu|gpu]
                              [--batch-size N] [--max-new-tokens N] [--backend auto|hf|vllm]
                              [--accept-malformed] [--stage all|label|train] [HYDRA_OVERRIDE ...]

1. Label: the teacher writes its criteria-guided judgement for every pool prompt (greedy,
   ``evaluation.generation``: vLLM on a GPU when installed, else Hugging Face ``generate``), and
   the project's reward parser reads the label under the row's criteria (``extra_info``).
   A response is kept when it is well-formed (the reward's definition: every step tag, a
   verdict per step, one answer with a label); ``--accept-malformed`` keeps any response whose
   answer tag holds a label. Every other row goes to ``rejected.jsonl`` with the parser's
   format error as the reason: no row is dropped silently.
2. Data: the kept rows' prompts with the teacher's label as the whole assistant turn
   (``<answer>L</answer>``, as in ``recipes.sft --label-only``; the gold label, when the pool has
   one, is not used) in ``data/distill_train.parquet``.
3. Student: verl's SFT trainer through ``recipes.sft.run_sft``, merged to ``student/hf``.
   Evaluate it with ``python -m evaluation --mode classify``.

Output folder:
    labels_summary.json          pool rows, labelled, rejected (per reason), teacher label counts,
                                 teacher speed, agreement with the gold label where the pool has one
    rejected.jsonl               {"row", "id", "reason", "truncated", "response"} per rejected row
    data/teacher_labels.jsonl    {"row", "id", "label", "format_error", "truncated", "response"}
                                 per labelled row
    data/distill_train.parquet   ``messages`` + ``extra_info``, for verl's SFT trainer
    student/                     the recipes.sft run folder; student/hf is the student
    summary.json                 teacher, student, label counts, the SFT summary, wall time

``--stage label`` stops after step 2; ``--stage train`` trains a student on the labels an earlier
``--stage label`` (or ``all``) left in the folder. With ``--stage all`` the labelling runs in a
child process, so the teacher's memory (GPU memory held by vLLM above all) is free before the
student's trainer starts. Hydra overrides after the options go to verl's SFT trainer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from evaluation.arguments import positive_int
from reward.contracts import row_id

RECIPES = Path(__file__).resolve().parent
REPO = RECIPES.parent
DEFAULT_MAX_NEW_TOKENS = 1024
STAGES = ("all", "label", "train")
DATA_DIR, TRAIN_FILE, LABELS_FILE = "data", "distill_train.parquet", "teacher_labels.jsonl"
REJECTED_FILE, LABELS_SUMMARY = "rejected.jsonl", "labels_summary.json"


class NoLabelsError(RuntimeError):
    """The teacher gave no usable label on the whole pool: there is nothing to train a student on."""


# -- the pure part: teacher responses -> SFT rows -------------------------------------------------


@dataclass
class DistillSet:
    sft_rows: list[dict] = field(default_factory=list)  # {"messages", "extra_info"}
    labelled: list[dict] = field(default_factory=list)  # {"row", "id", "label", "format_error", "response"}
    rejected: list[dict] = field(default_factory=list)  # {"row", "id", "reason", "response"}

    def counts(self) -> dict[str, Any]:
        labels = Counter(r["label"] for r in self.labelled)
        return {
            "pool_rows": len(self.labelled) + len(self.rejected),
            "labelled": len(self.labelled),
            "rejected": len(self.rejected),
            "labelled_malformed": sum(1 for r in self.labelled if r["format_error"]),
            "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in self.rejected).items())),
            "teacher_labels": {str(k): labels[k] for k in sorted(labels, reverse=True)},
        }


def build_distill_set(pool_rows: Sequence[Mapping[str, Any]], teacher_texts: Sequence[str],
                      accept_malformed: bool = False) -> DistillSet:
    """Read the teacher's label from each response and build the label-only SFT rows.

    ``pool_rows`` are RL-parquet rows (``prompt``, ``extra_info``); ``teacher_texts[i]`` is the
    teacher's response to row i. The label is read by the reward parser of the row's criteria.
    A row is kept when its response is well-formed, or (``accept_malformed``) when its answer tag
    holds a label; its assistant turn is ``label_only_response(teacher label, criteria)``.
    Rejected rows carry the parser's format error as the reason.
    """
    from data_prep.traces import label_only_response
    from evaluation.scoring import row_criteria
    from reward import get_parser

    if len(pool_rows) != len(teacher_texts):
        raise ValueError(f"{len(pool_rows)} pool rows but {len(teacher_texts)} teacher responses")
    out = DistillSet()
    for i, (row, text) in enumerate(zip(pool_rows, teacher_texts)):
        info = dict(row.get("extra_info") or {})
        parsed = get_parser(row_criteria(row)).parse(text or "")
        pair_id = row_id(row, i)
        if parsed.pred is None or (parsed.error and not accept_malformed):
            out.rejected.append({"row": i, "id": pair_id, "reason": parsed.error, "response": text})
            continue
        answer = label_only_response(parsed.pred, info.get("criteria") or None)
        prompt = [{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
        out.sft_rows.append({"messages": prompt + [{"role": "assistant", "content": answer}],
                             "extra_info": info})
        out.labelled.append({"row": i, "id": pair_id, "label": parsed.pred, "format_error": parsed.error,
                             "response": text})
    return out


def gold_agreement(pool_rows: Sequence[Mapping[str, Any]], labelled: Sequence[Mapping[str, Any]]) -> dict:
    """How often the teacher's label is the gold one, on the labelled rows that have a gold label."""
    n = agree = 0
    for rec in labelled:
        truth = (pool_rows[rec["row"]].get("reward_model") or {}).get("ground_truth")
        try:
            gold = int(str(truth).strip())
        except ValueError:  # None or "" (an unlabelled row)
            continue
        n += 1
        agree += gold == rec["label"]
    return {"gold_rows": n, "teacher_acc_on_gold": round(agree / n, 4) if n else None}


def _jsonl(path: Path, records: Sequence[Mapping[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")


def write_distill_data(out: Path, dset: DistillSet, stats: Mapping[str, Any] | None = None) -> dict:
    """rejected.jsonl, data/teacher_labels.jsonl, labels_summary.json and data/distill_train.parquet.

    Raises NoLabelsError (after writing everything but the parquet) when no row was labelled.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = Path(out)
    data = out / DATA_DIR
    data.mkdir(parents=True, exist_ok=True)
    train_file = data / TRAIN_FILE
    train_file.unlink(missing_ok=True)  # a re-run must not train on an earlier run's labels
    _jsonl(out / REJECTED_FILE, dset.rejected)
    _jsonl(data / LABELS_FILE, dset.labelled)
    summary = {**dset.counts(), **(stats or {}),
               "train_file": str(train_file) if dset.sft_rows else None}
    (out / LABELS_SUMMARY).write_text(json.dumps(summary, indent=2))
    if not dset.sft_rows:
        reasons = ", ".join(f"{k}: {v}" for k, v in summary["rejected_by_reason"].items())
        raise NoLabelsError(f"the teacher gave no readable label on any of the {summary['pool_rows']} pool "
                            f"rows ({reasons}); no student can be trained. See {out / REJECTED_FILE}")
    table = pa.table({"messages": [r["messages"] for r in dset.sft_rows],
                      "extra_info": [r["extra_info"] for r in dset.sft_rows]})
    pq.write_table(table, train_file)
    return summary


# -- the teacher ----------------------------------------------------------------------------------


def label_pool(teacher: str, pool: Path, out: Path, max_pool: int | None = None, machine: str = "auto",
               backend: str = "auto", batch_size: int = 16, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS,
               accept_malformed: bool = False, progress: bool = True) -> dict:
    """Label the pool with the teacher and write the distillation data; the labels summary."""
    from evaluation.generation import SamplingConfig, load_generator, render_prompts
    from evaluation.scoring import load_rows
    from model_zoo import resolve_model

    rows = load_rows(pool, max_pool)
    if not rows:
        raise ValueError(f"{pool}: the pool has no rows")
    teacher_path = resolve_model(teacher).resolve()
    device = {"cpu": "cpu", "gpu": "cuda"}.get(machine, "auto")
    gen = load_generator(str(teacher_path), backend=backend, device=device, batch_size=batch_size)
    print(f"teacher {teacher_path} ({gen.backend}, {gen.device}) loaded in {gen.load_seconds:.1f}s; "
          f"labelling {len(rows)} pool rows", flush=True)
    prompt_ids = render_prompts(gen.tokenizer, [row["prompt"] for row in rows])
    start = time.perf_counter()
    outputs = gen.generate(prompt_ids, SamplingConfig(max_new_tokens=max_new_tokens), progress=progress)
    seconds = time.perf_counter() - start

    dset = build_distill_set(rows, [o.text for o in outputs], accept_malformed=accept_malformed)
    for rec in (*dset.labelled, *dset.rejected):
        rec["truncated"] = outputs[rec["row"]].truncated
    stats = {
        "teacher": str(teacher_path), "pool": str(Path(pool).resolve()), "backend": gen.backend,
        "device": gen.device, "max_new_tokens": max_new_tokens, "accept_malformed": accept_malformed,
        "teacher_truncated": sum(o.truncated for o in outputs),
        "teacher_load_s": round(gen.load_seconds, 2), "teacher_generate_s": round(seconds, 2),
        "teacher_pairs_per_s": round(len(rows) / seconds, 3) if seconds > 0 else None,
        **gold_agreement(rows, dset.labelled),
    }
    try:
        summary = write_distill_data(out, dset, stats)
    finally:
        c = dset.counts()
        print(f"pool rows {c['pool_rows']}: labelled {c['labelled']}, rejected {c['rejected']} "
              f"{c['rejected_by_reason']}; teacher labels {c['teacher_labels']}; "
              f"{stats['teacher_pairs_per_s']} pairs/s", flush=True)
    return summary


def _label_in_child(kwargs: dict, env: Mapping[str, str]) -> int:
    """``label_pool(**kwargs)`` in a fresh Python process; its exit code (3: no labels)."""
    code = ("import json, sys\n"
            "from recipes.distill import NoLabelsError, label_pool\n"
            "try:\n"
            "    label_pool(**json.loads(sys.argv[1]))\n"
            "except NoLabelsError as exc:\n"
            "    print(f'error: {exc}', file=sys.stderr)\n"
            "    sys.exit(3)\n")
    return subprocess.run([sys.executable, "-c", code, json.dumps(kwargs)], env=env, cwd=REPO).returncode


# -- the CLI --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m recipes.distill", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", help="the teacher: a HF folder (or a model_zoo name); needed to label")
    p.add_argument("--pool", help="the unlabelled pool: an RL parquet (the benchmark's pool/pool.parquet)")
    p.add_argument("--student", default=None, help="tiny | smollm2 | a HF folder (default: tiny on CPU, "
                   "smollm2 on GPU)")
    p.add_argument("--out", required=True, help="run folder")
    p.add_argument("--max-pool", type=positive_int, default=None, help="label the first N pool rows only")
    p.add_argument("--steps", type=positive_int, default=None,
                   help="student SFT steps (default: recipes.sft's: 50 for tiny, else the recipe's epochs)")
    p.add_argument("--seed", type=int, default=None, help="the student's data order (see recipes.sft --seed)")
    p.add_argument("--machine", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--backend", default="auto", choices=("auto", "hf", "vllm"),
                   help="the teacher's generation backend (auto: vllm when installed and on a GPU)")
    p.add_argument("--batch-size", type=positive_int, default=16, help="teacher prompts per generate call (hf)")
    p.add_argument("--max-new-tokens", type=positive_int, default=DEFAULT_MAX_NEW_TOKENS,
                   help="the teacher's token limit per judgement")
    p.add_argument("--accept-malformed", action="store_true",
                   help="keep a label whose response is malformed elsewhere (a step missing, a bad verdict)")
    p.add_argument("--stage", default="all", choices=STAGES,
                   help="label: only label the pool; train: only train on an earlier stage's labels")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU only: torch threads (default: $OMP_NUM_THREADS, else 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while labelling")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for the student's SFT trainer, applied last")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.stage != "train":
        missing = [f"--{k}" for k in ("teacher", "pool") if not getattr(args, k)]
        if missing:
            p.error(f"{' and '.join(missing)} needed to label the pool (--stage {args.stage})")
        if not Path(args.pool).is_file():
            p.error(f"--pool {args.pool} does not exist")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only

    from verl_backend.overrides import detect_machine

    machine = detect_machine() if args.machine == "auto" else args.machine
    machine = "gpu" if machine == "vllm" else machine
    start = time.perf_counter()

    if args.stage != "train":
        kwargs = {"teacher": args.teacher, "pool": str(Path(args.pool).resolve()), "out": str(out),
                  "max_pool": args.max_pool, "machine": machine, "backend": args.backend,
                  "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
                  "accept_malformed": args.accept_malformed, "progress": not args.no_progress}
        env = dict(os.environ)
        if machine == "cpu":
            env["OMP_NUM_THREADS"] = str(args.threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
        if args.stage == "label":
            if machine == "cpu":
                import torch

                torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
            try:
                label_pool(**kwargs)
            except NoLabelsError as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 3
            return 0
        code = _label_in_child(kwargs, env)
        if code != 0:
            print(f"labelling the pool failed (exit code {code})", file=sys.stderr)
            return code

    train_file = out / DATA_DIR / TRAIN_FILE
    summary_path = out / LABELS_SUMMARY
    if not train_file.exists() or not summary_path.exists():
        print(f"error: no distillation data in {out} (run --stage label first)", file=sys.stderr)
        return 2
    labels = json.loads(summary_path.read_text())

    from recipes.sft import run_sft, train_batch_size

    student = args.student or ("tiny" if machine == "cpu" else "smollm2")
    batch = train_batch_size(student, args.overrides)
    if labels["labelled"] < batch:
        print(f"error: {labels['labelled']} labelled rows are fewer than the student's batch size {batch} "
              f"(verl drops incomplete batches); label a larger pool or pass data.train_batch_size=N "
              f"data.micro_batch_size_per_gpu=N", file=sys.stderr)
        return 2
    sft = run_sft(student, train_file, out / "student", steps=args.steps, machine=machine, seed=args.seed,
                  overrides=args.overrides, threads=args.threads, experiment="sft_distill")
    summary = {
        "teacher": labels.get("teacher"), "student": sft["model"], "student_hf": sft["hf_model"],
        "pool": labels.get("pool"), "stage": args.stage, "seed": args.seed,
        "labels": {k: labels[k] for k in ("pool_rows", "labelled", "rejected", "labelled_malformed",
                                          "rejected_by_reason", "teacher_labels", "teacher_pairs_per_s",
                                          "teacher_acc_on_gold") if k in labels},
        "sft": sft,
        "wall_s": round(time.perf_counter() - start, 1),
        "exit_code": sft["exit_code"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("student_hf", "labels", "wall_s")}, indent=2))
    return sft["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
