"""What the launchers share: run folder bookkeeping, a logged subprocess, checkpoint merging."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path


def fresh_metrics_log(out: Path) -> Path:
    """``out/metrics.jsonl``; an earlier one (a resumed run) is kept as metrics.N.jsonl,
    because verl's file logger truncates its file."""
    metrics_log = out / "metrics.jsonl"
    if metrics_log.exists():
        n = 1
        while (out / f"metrics.{n}.jsonl").exists():
            n += 1
        metrics_log.rename(out / f"metrics.{n}.jsonl")
    return metrics_log


def read_metrics(path: Path) -> list[dict]:
    """The records of verl's file logger (``metrics.jsonl``); none when it is missing."""
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut off by an interrupted run
    return rows


def write_command(out: Path, env_add: dict[str, str], cmd: list[str]) -> None:
    """``out/command.sh``: the environment and command, to rerun by hand."""
    (out / "command.sh").write_text(
        "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env_add.items()) + shlex.join(cmd) + "\n")


def run_logged(cmd: list[str], env: dict[str, str], log_path: Path, cwd: Path) -> int:
    """Run ``cmd``, streaming its output to the console and to ``log_path``; the exit code."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1)
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        return proc.wait()


def last_checkpoint(ckpt_dir: Path) -> Path:
    """The newest ``global_step_N`` folder verl wrote under ``ckpt_dir``."""
    tracker = ckpt_dir / "latest_checkpointed_iteration.txt"
    if not tracker.exists():
        raise FileNotFoundError(f"no checkpoint tracker in {ckpt_dir}")
    step = int(tracker.read_text().strip())
    path = ckpt_dir / f"global_step_{step}"
    if not path.is_dir():
        raise FileNotFoundError(path)
    return path


def merge_checkpoint(ckpt: Path, target: Path, env: dict[str, str], base_model: Path | None = None,
                     cwd: Path | None = None) -> Path:
    """verl's FSDP checkpoint -> a Hugging Face folder.

    verl's merger writes bf16 weights; when the base model is stored in another dtype,
    the merged folder is re-saved in that dtype (the bf16 rounding stays).
    """
    cmd = [sys.executable, "-m", "verl.model_merger", "merge", "--backend", "fsdp",
           "--local_dir", str(ckpt), "--target_dir", str(target)]
    subprocess.run(cmd, env=env, cwd=cwd, check=True)
    if base_model is not None:
        base_dtype = json.loads((base_model / "config.json").read_text()).get("dtype")
        merged_dtype = json.loads((target / "config.json").read_text()).get("dtype")
        if base_dtype and merged_dtype and base_dtype != merged_dtype:
            import torch
            from transformers import AutoModelForCausalLM

            model = AutoModelForCausalLM.from_pretrained(target, dtype=getattr(torch, base_dtype))
            model.save_pretrained(target)
    return target
