"""Distillation: the RL-trained teacher labels an unlabelled pool; a student learns to write the label.

    python -m recipes.distill --teacher PATH --pool PARQUET --student tiny|smollm2|PATH --out DIR
                              [--max-pool N] [--steps N] [--seed N] [--machine auto|cpu|gpu]
                              [--batch-size N] [--max-new-tokens N] [--backend auto|hf|vllm]
                              [--accept-malformed] [--stage all|label|train] [--soft-samples K]
                              [--student-kind lm|head] [--targets hard|soft] [--labels-dir DIR]
                              [--student-layers N]
                              [HYDRA_OVERRIDE ...]

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
   With ``--soft-samples K`` the teacher also samples K responses per row (temperature 1), and
   each labelled row gets ``probs``: its greedy label and the sampled labels counted alike.
3. Student, ``--student-kind``:
   * ``lm`` (default): verl's SFT trainer through ``recipes.sft.run_sft``, merged to
     ``student/hf``, on the teacher's labels. It serves in one forward pass over its label
     tokens (``python -m evaluation --mode score``, ``recipes.serve``), or ``--mode classify``.
   * ``head``: the backbone with a classification head (``recipes.classifier.train_head``) on
     the same prompts, ``--targets hard`` (the teacher's label, cross-entropy) or ``soft`` (its
     label distribution, the soft cross-entropy: a KL loss), saved to ``student/hf``.
     ``--student-layers N`` keeps the backbone's first N layers: a student that starts from
     the lower layers of a trained model (e.g. the warm-up) is smaller and faster than it.
   ``--stage train --labels-dir D`` trains on the labels another run wrote (one labelling of
   the pool serves every student of a teacher).

Output folder:
    labels_summary.json          pool rows, labelled, rejected (per reason), teacher label counts,
                                 teacher speed, agreement with the gold label where the pool has one
    rejected.jsonl               {"row", "id", "reason", "truncated", "response"} per rejected row
    data/teacher_labels.jsonl    {"row", "id", "label", "format_error", "truncated", "response"
                                 [, "probs"]} per labelled row
    data/distill_train.parquet   ``messages`` + ``extra_info``, for verl's SFT trainer
    student/                     the recipes.sft run folder (or the head's); student/hf is the student
    summary.json                 teacher, student, its kind and targets, label counts, the
                                 training summary, wall time

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

from evaluation.arguments import non_negative_int, positive_int
from reward.contracts import row_id

RECIPES = Path(__file__).resolve().parent
REPO = RECIPES.parent
DEFAULT_MAX_NEW_TOKENS = 1024
STAGES = ("all", "label", "train")
STUDENT_KINDS, TARGETS = ("lm", "head"), ("hard", "soft")
HEAD_STEPS = 200  # recipes.classifier's default
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


def soft_distribution(greedy: int, sampled: Sequence[int | None]) -> list[float]:
    """The teacher's label distribution over `LABELS` (in that order): its greedy label and the
    labels of its sampled responses counted alike; a sample without a readable label is left out."""
    from evaluation.metrics import LABELS

    draws = [greedy, *(label for label in sampled if label is not None)]
    return [draws.count(v) / len(draws) for v in LABELS]


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
               accept_malformed: bool = False, progress: bool = True, soft_samples: int = 0,
               seed: int = 0) -> dict:
    """Label the pool with the teacher and write the distillation data; the labels summary.

    ``soft_samples`` K > 0 also samples K responses per pool row (temperature 1, seeded): each
    labelled row then carries ``probs``, its label distribution (`soft_distribution`), the soft
    targets of a ``--targets soft`` student.
    """
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
    sample_s = 0.0
    if soft_samples > 0 and dset.labelled:
        sample_s = _add_soft_targets(gen, rows, prompt_ids, dset, soft_samples, max_new_tokens, seed, progress)
    stats = {
        "teacher": str(teacher_path), "pool": str(Path(pool).resolve()), "backend": gen.backend,
        "device": gen.device, "max_new_tokens": max_new_tokens, "accept_malformed": accept_malformed,
        "teacher_truncated": sum(o.truncated for o in outputs),
        "teacher_load_s": round(gen.load_seconds, 2), "teacher_generate_s": round(seconds, 2),
        "teacher_pairs_per_s": round(len(rows) / seconds, 3) if seconds > 0 else None,
        "soft_samples": soft_samples, "teacher_sample_s": round(sample_s, 2),
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


def _add_soft_targets(gen, rows, prompt_ids, dset: DistillSet, k: int, max_new_tokens: int, seed: int,
                      progress: bool) -> float:
    """Sample ``k`` responses for every labelled row and attach its ``probs``; the seconds taken."""
    from evaluation.generation import SamplingConfig
    from evaluation.scoring import row_criteria
    from reward import get_parser

    start = time.perf_counter()
    samples = gen.generate([prompt_ids[rec["row"]] for rec in dset.labelled],
                           SamplingConfig(max_new_tokens=max_new_tokens, temperature=1.0, seed=seed),
                           progress=progress, samples=k)
    for n, rec in enumerate(dset.labelled):
        parser = get_parser(row_criteria(rows[rec["row"]]))
        parsed = [parser.parse(o.text or "") for o in samples[n * k:(n + 1) * k]]
        sampled = [p.pred if not p.error else None for p in parsed]  # well-formed, as the greedy labels
        rec["probs"] = soft_distribution(rec["label"], sampled)
    return time.perf_counter() - start


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
    p.add_argument("--soft-samples", type=non_negative_int, default=0, metavar="K",
                   help="also sample K responses per pool row (temperature 1): the teacher's label "
                        "distribution, the targets of --targets soft (default 0: greedy labels only)")
    p.add_argument("--student-kind", default="lm", choices=STUDENT_KINDS,
                   help="lm: a language model that writes <answer>L</answer> (verl's SFT trainer); head: the "
                        "backbone with a classification head (recipes.classifier's trainer)")
    p.add_argument("--targets", default="hard", choices=TARGETS,
                   help="hard: the teacher's greedy label; soft: its label distribution, with a KL loss "
                        "(--student-kind head; labels written with --soft-samples)")
    p.add_argument("--student-layers", type=positive_int, default=None, metavar="N",
                   help="--student-kind head: keep the student backbone's first N layers (default: all)")
    p.add_argument("--labels-dir", default=None,
                   help="--stage train: the folder whose labels to train on (default: --out), e.g. another "
                        "student's run on the same teacher")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU only: torch threads (default: $OMP_NUM_THREADS, else 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while labelling")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for the student's SFT trainer, applied last")
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.targets == "soft" and args.student_kind != "head":
        p.error("--targets soft needs --student-kind head (verl's SFT trainer has no KL loss)")
    if args.targets == "soft" and args.stage != "train" and args.soft_samples < 1:
        p.error("--targets soft needs the teacher's label distribution: --soft-samples K (K >= 1)")
    if args.student_layers is not None and args.student_kind != "head":
        p.error("--student-layers needs --student-kind head")
    if args.labels_dir and args.stage != "train":
        p.error("--labels-dir is read by --stage train (the labels of an earlier run)")
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
                  "accept_malformed": args.accept_malformed, "progress": not args.no_progress,
                  "soft_samples": args.soft_samples, "seed": args.seed or 0}
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

    labels_dir = Path(args.labels_dir).resolve() if args.labels_dir else out
    train_file = labels_dir / DATA_DIR / TRAIN_FILE
    summary_path = labels_dir / LABELS_SUMMARY
    if not train_file.exists() or not summary_path.exists():
        print(f"error: no distillation data in {labels_dir} (run --stage label first)", file=sys.stderr)
        return 2
    labels = json.loads(summary_path.read_text())
    if args.student_kind == "head":
        return train_head_student(args, machine, labels_dir, labels, out, start)

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
        "student_kind": "lm", "targets": "hard", "labels": _labels_digest(labels),
        "sft": sft,
        "wall_s": round(time.perf_counter() - start, 1),
        "exit_code": sft["exit_code"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: summary[k] for k in ("student_hf", "labels", "wall_s")}, indent=2))
    return sft["exit_code"]


def _labels_digest(labels: Mapping[str, Any]) -> dict:
    return {k: labels[k] for k in ("pool_rows", "labelled", "rejected", "labelled_malformed", "rejected_by_reason",
                                   "teacher_labels", "teacher_pairs_per_s", "teacher_acc_on_gold", "soft_samples")
            if k in labels}


def head_targets(labelled: Sequence[Mapping[str, Any]], targets: str, where: Path) -> list[list[float]]:
    """Per labelled row: the one-hot of the teacher's label (hard), or its ``probs`` (soft)."""
    from recipes.classifier import one_hot

    if targets == "hard":
        return [one_hot(rec["label"]) for rec in labelled]
    missing = [rec["row"] for rec in labelled if not rec.get("probs")]
    if missing:
        raise ValueError(f"{where}: {len(missing)} labelled rows have no label distribution (first: pool row "
                         f"{missing[0]}); label the pool with --soft-samples K for --targets soft")
    return [list(rec["probs"]) for rec in labelled]


def train_head_student(args, machine: str, labels_dir: Path, labels: Mapping[str, Any], out: Path,
                       start: float) -> int:
    """A classification-head student on the pool prompts the teacher labelled (hard or soft targets)."""
    from evaluation.arguments import error_exit
    from evaluation.generation import load_tokenizer, render_prompts
    from evaluation.scoring import load_rows
    from model_zoo import ModelZooError, resolve_model
    from recipes.classifier import train_head, write_json_atomic

    labels_file = labels_dir / DATA_DIR / LABELS_FILE
    try:
        labelled = [json.loads(line) for line in labels_file.read_text(encoding="utf-8").splitlines() if line]
        targets = head_targets(labelled, args.targets, labels_file)
        pool = args.pool or labels.get("pool")
        if not pool or not Path(pool).is_file():
            raise ValueError(f"the pool the labels were written for ({pool}) is not there; pass --pool")
        rows = load_rows(Path(pool), max(rec["row"] for rec in labelled) + 1)
        base = resolve_model(args.student or "mini")
        tokenizer = load_tokenizer(str(base))
        prompts = render_prompts(tokenizer, [rows[rec["row"]]["prompt"] for rec in labelled])
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        student = out / "student"
        student.mkdir(parents=True, exist_ok=True)
        trained = train_head(base, prompts, targets, student, steps=args.steps or HEAD_STEPS, seed=args.seed or 0,
                             device="cuda" if machine == "gpu" else "cpu", progress=not args.no_progress,
                             tokenizer=tokenizer, layers=args.student_layers)
    except (ValueError, OSError, ModelZooError) as exc:
        return error_exit(exc, out)
    summary = {"teacher": labels.get("teacher"), "student": str(base), "student_hf": trained["hf_model"],
               "pool": str(pool), "stage": args.stage, "seed": args.seed, "student_kind": "head",
               "targets": args.targets, "labels_dir": str(labels_dir), "labels": _labels_digest(labels),
               "head": trained, "wall_s": round(time.perf_counter() - start, 1), "exit_code": 0}
    write_json_atomic(out / "summary.json", summary)
    print(json.dumps({k: summary[k] for k in ("student_hf", "targets", "wall_s")}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
