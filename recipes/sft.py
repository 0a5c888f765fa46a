"""SFT warm-up (or the label-only SFT baseline) with verl's own SFT trainer.

    python -m recipes.sft [--machine auto|cpu|gpu] [--model tiny|smollm2|PATH] [--data DIR]
                          [--steps N] [--out DIR] [--label-only | --train-file PARQUET] [--seed N]
                          [--dry-run] [HYDRA_OVERRIDE ...]

It runs ``torchrun --nproc_per_node 1 -m verl.trainer.sft_trainer`` with the recipe
``recipes/sft_warmup.yaml`` and the machine's settings, then merges the last checkpoint
into a Hugging Face folder ``<out>/hf`` with ``python -m verl.model_merger merge``.

* default data: the benchmark's ``sft_train.parquet`` (criteria-guided reasoning traces).
* ``--label-only``: the "SFT label-only" baseline: the RL ``train.parquet`` prompts with the
  answer alone (``<answer>L</answer>``), written to ``<out>/data/label_only_train.parquet``.
* ``--train-file PARQUET``: any SFT parquet with a ``messages`` column (e.g. the distillation
  set written by ``recipes.distill``).
* ``--seed N``: the order the rows are trained in. verl 0.9.1's SFT trainer shuffles with a
  ``DistributedSampler`` whose seed no config key reaches (it is always 0; ``trainer.seed`` is
  read by nothing in the SFT trainer), and the model starts from its pretrained weights, so the
  data order is the only thing a seed can change: the rows of the training file are permuted
  with N into ``<out>/data/<name>.seed<N>.parquet`` before the run. ``trainer.seed`` and
  ``engine.seed`` (used by verl's ``engine.full_determinism``) are set to N as well.

``run_sft`` is the same run as a function, for other recipes (``recipes.distill``).

Run folder: ``train.log``, ``metrics.jsonl`` (verl's file logger), ``command.sh``,
``checkpoints/global_step_N``, ``hf/`` (the merged model), ``summary.json``.
Overrides given after the options are passed to verl last, so they win.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path

from recipes.presets import SFT_SCALE, group_override, sft_scale_for
from recipes.runner import (fresh_metrics_log, last_checkpoint, merge_checkpoint, read_metrics, run_logged,
                            write_command)

RECIPES = Path(__file__).resolve().parent
REPO = RECIPES.parent
CONFIG_NAME = "sft_warmup"

def size_overrides(model_name: str) -> list[str]:
    """The SFT preset of a model_zoo backbone (``recipes/sft_scale/<name>.yaml``: the tiny and mini
    models need a large learning rate and small batches); none for a folder or another model."""
    name = sft_scale_for(model_name)
    return [group_override(SFT_SCALE, name)] if name else []


def build_label_only(train_parquet: Path, dst: Path) -> Path:
    """The RL prompts with the label-only answer ``<answer>L</answer>`` as the assistant turn."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_prep.traces import label_only_response

    rows = pq.read_table(train_parquet).to_pylist()
    messages, extra = [], []
    for row in rows:
        info = dict(row.get("extra_info") or {})
        answer = label_only_response(int(row["reward_model"]["ground_truth"]), info.get("criteria") or None)
        messages.append([{"role": m["role"], "content": m["content"]} for m in row["prompt"]]
                        + [{"role": "assistant", "content": answer}])
        extra.append(info)
    dst.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"messages": messages, "extra_info": extra}), dst)
    return dst


def build_command(model: Path, train_file: Path, out: Path, steps: int | None, preset_overrides: list[str],
                  backend: list[str], user: list[str], experiment: str) -> list[str]:
    overrides = [
        f"model.path={model}",
        f"data.train_files={train_file}",
        f"trainer.default_local_dir={out / 'checkpoints'}",
        f"trainer.experiment_name={experiment}",
        *([f"trainer.total_training_steps={steps}"] if steps else []),
        *preset_overrides,
        *backend,
        *user,
    ]
    torchrun = Path(sys.executable).with_name("torchrun")
    launcher = [str(torchrun)] if torchrun.exists() else [sys.executable, "-m", "torch.distributed.run"]
    return [*launcher, "--standalone", "--nnodes", "1", "--nproc_per_node", "1", "-m", "verl.trainer.sft_trainer",
            "--config-path", str(RECIPES), "--config-name", CONFIG_NAME, *overrides]


def summarize(metrics_log: Path, out: Path, wall_s: float, hf_dir: Path | None, extra: dict | None = None) -> dict:
    rows = [r for r in read_metrics(metrics_log) if "train/loss" in r.get("data", {})]
    losses = [r["data"]["train/loss"] for r in rows]
    tail = losses[-max(1, len(losses) // 5):] if losses else []
    summary = {
        "steps": len(rows),
        "wall_s": round(wall_s, 1),
        "first_loss": losses[0] if losses else None,
        "final_loss_mean": sum(tail) / len(tail) if tail else None,
        "hf_model": str(hf_dir) if hf_dir else None,
        "metrics_log": str(metrics_log),
        **(extra or {}),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def check_sft_file(path: Path) -> None:
    """A parquet verl's multi-turn SFT dataset can read: a ``messages`` column and at least one row."""
    import pyarrow.parquet as pq

    if not path.is_file():
        raise FileNotFoundError(f"SFT training file {path} does not exist")
    meta = pq.ParquetFile(path).metadata
    if "messages" not in meta.schema.to_arrow_schema().names:
        raise ValueError(f"{path} has no 'messages' column; verl's SFT trainer needs one")
    if meta.num_rows == 0:
        raise ValueError(f"{path} has no rows")


def shuffled_copy(src: Path, dst: Path, seed: int) -> Path:
    """``src`` with its rows permuted by ``seed`` (see ``--seed``)."""
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    order = np.random.default_rng(seed).permutation(table.num_rows)
    dst.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(order), dst)
    return dst


def train_batch_size(model_name: str, overrides: list[str] = ()) -> int:
    """The ``data.train_batch_size`` a run of ``model_name`` with ``overrides`` uses (the last one wins)."""
    from recipes.launch import compose_recipe  # the RL and SFT recipes compose the same way

    return int(compose_recipe(CONFIG_NAME, [*size_overrides(model_name), *overrides]).data.train_batch_size)


def default_steps(model_name: str, overrides: list[str] = ()) -> int | None:
    """The ``trainer.total_training_steps`` of a run (its preset's, or None: the recipe's epochs)."""
    from recipes.launch import compose_recipe

    steps = compose_recipe(CONFIG_NAME, [*size_overrides(model_name), *overrides]).trainer.total_training_steps
    return int(steps) if steps else None


def run_sft(model: str | Path, train_file: Path, out: Path, steps: int | None = None, machine: str = "auto",
            seed: int | None = None, overrides: list[str] = (), threads: int | None = None,
            experiment: str = "sft", dry_run: bool = False) -> dict:
    """Train ``model`` (tiny | smollm2 | a folder) on ``train_file`` with verl's SFT trainer.

    The run folder ``out`` gets train.log, metrics.jsonl, command.sh, checkpoints/, hf/ (the
    merged model) and summary.json. ``steps`` None: 50 for the tiny model, else the recipe's
    epochs. Returns the summary; its ``exit_code`` is the trainer's (0: trained and merged).
    """
    from model_zoo import resolve_model
    from verl_backend.overrides import backend_env, detect_machine, sft_backend_overrides

    machine = detect_machine() if machine == "auto" else machine
    machine = "gpu" if machine == "vllm" else machine
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    model_name = str(model)
    model_path = resolve_model(model_name).resolve()
    train_file = Path(train_file).resolve()
    check_sft_file(train_file)
    seed_overrides = []
    if seed is not None:
        train_file = shuffled_copy(train_file, out / "data" / f"{train_file.stem}.seed{seed}.parquet", seed)
        seed_overrides = [f"trainer.seed={seed}", f"engine.seed={seed}"]

    env_add = {}
    if machine == "cpu":
        threads = threads or int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
        env_add = {**backend_env("cpu"), "OMP_NUM_THREADS": str(threads)}
    steps = steps if steps is not None else default_steps(model_name, list(overrides))
    epoch_overrides = []
    if steps:
        # verl's SFT trainer stops at the end of its epochs even before total_training_steps, and
        # then saves no checkpoint: give it enough epochs for the steps asked for.
        import pyarrow.parquet as pq

        per_epoch = pq.ParquetFile(train_file).metadata.num_rows // train_batch_size(model_name, list(overrides))
        epoch_overrides = [f"trainer.total_epochs={max(1, -(-steps // max(1, per_epoch)))}"]
    cmd = build_command(model_path, train_file, out, steps,
                        [*size_overrides(model_name), *seed_overrides, *epoch_overrides],
                        sft_backend_overrides(machine), list(overrides), experiment=experiment)

    metrics_log = fresh_metrics_log(out)
    env = {**os.environ, **env_add, "VERL_FILE_LOGGER_PATH": str(metrics_log), "HF_HUB_OFFLINE": "1"}
    write_command(out, env_add, cmd)
    print(f"machine: {machine}; model: {model_path}; data: {train_file}; run folder: {out}", flush=True)
    info = {"machine": machine, "model": str(model_path), "train_file": str(train_file), "seed": seed}
    if dry_run:
        print(shlex.join(cmd))
        return {**info, "exit_code": 0, "dry_run": True, "command": cmd}

    start = time.perf_counter()
    code = run_logged(cmd, env, out / "train.log", cwd=REPO)
    hf_dir = None
    if code == 0:
        ckpt = last_checkpoint(out / "checkpoints")
        print(f"merging {ckpt} into {out / 'hf'} ...", flush=True)
        hf_dir = merge_checkpoint(ckpt, out / "hf", env, base_model=model_path, cwd=REPO)
    summary = summarize(metrics_log, out, time.perf_counter() - start, hf_dir, {**info, "exit_code": code})
    print(json.dumps(summary, indent=2))
    if code != 0:
        print(f"SFT failed with exit code {code}; see {out / 'train.log'}", file=sys.stderr)
    return summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.sft", description=__doc__.splitlines()[0])
    p.add_argument("--machine", default="auto", choices=("auto", "cpu", "gpu"),
                   help="cpu: the project's cpu platform; gpu: verl's own (vllm is not used by SFT)")
    p.add_argument("--model", default=None, help="tiny | smollm2 | a local HF folder (default: tiny on CPU, "
                   "smollm2 on GPU)")
    p.add_argument("--data", default=None, help="benchmark folder (default: <cache>/data/benchmark-en)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps (default: 50 for the tiny model, else the recipe's epochs)")
    p.add_argument("--out", default=None, help="run folder (default: runs/sft-<time>)")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--label-only", action="store_true",
                      help="train on <answer>L</answer> only, built from the RL train.parquet")
    data.add_argument("--train-file", default=None, metavar="PARQUET",
                      help="train on this SFT parquet (a 'messages' column) instead of the benchmark's")
    p.add_argument("--seed", type=int, default=None,
                   help="permute the training rows with this seed (verl's SFT sampler has a fixed seed)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU only: torch threads (default: $OMP_NUM_THREADS, else 1; on a shared machine more "
                   "threads than free cores make steps ~10x slower)")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for verl's SFT trainer, applied last")
    args = p.parse_args(argv)
    if args.train_file and args.data:
        p.error("--data has no effect with --train-file")
    if args.train_file:
        try:
            check_sft_file(Path(args.train_file))
        except (OSError, ValueError) as exc:
            p.error(str(exc))

    from model_zoo import cache_dir
    from verl_backend.overrides import detect_machine

    machine = detect_machine() if args.machine == "auto" else args.machine
    machine = "gpu" if machine == "vllm" else machine
    kind = "label_only" if args.label_only else "custom" if args.train_file else "reasoning"
    out = Path(args.out or REPO / "runs" / f"sft-{kind}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    model_name = args.model or ("tiny" if machine == "cpu" else "smollm2")

    if args.train_file:
        train_file = Path(args.train_file)
    else:
        data_dir = Path(args.data or cache_dir() / "data" / "benchmark-en").resolve()
        if not (data_dir / "sft_train.parquet").exists() or not (data_dir / "train.parquet").exists():
            from recipes.launch import ensure_benchmark

            ensure_benchmark(data_dir)
        if args.label_only:
            train_file = build_label_only(data_dir / "train.parquet", out / "data" / "label_only_train.parquet")
        else:
            train_file = data_dir / "sft_train.parquet"

    summary = run_sft(model_name, train_file, out, steps=args.steps, machine=machine, seed=args.seed,
                      overrides=args.overrides, threads=args.threads, experiment=f"sft_{kind}",
                      dry_run=args.dry_run)
    return summary["exit_code"]


if __name__ == "__main__":
    sys.exit(main())
