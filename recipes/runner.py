"""What the launchers share: run folder bookkeeping, a logged subprocess, checkpoint merging."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

# verl 0.9.1's checkpoint layout: <dir>/global_step_N/{actor/, data.pt}, written in that order,
# then <dir>/latest_checkpointed_iteration.txt (rewritten in place, not atomically).
CHECKPOINT_TRACKER = "latest_checkpointed_iteration.txt"
CHECKPOINT_STEP_PREFIX = "global_step_"
CHECKPOINT_LAST_FILE = "data.pt"
# Records of the attempts before a resume, up to the step resumed from (see resume_metrics_log).
METRICS_HISTORY = "metrics.history.jsonl"


def keep_earlier(path: Path) -> Path:
    """Move an earlier attempt's ``path`` (name.ext) aside as name.N.ext; return ``path``."""
    if path.exists():
        n = 1
        while path.with_name(f"{path.stem}.{n}{path.suffix}").exists():
            n += 1
        path.rename(path.with_name(f"{path.stem}.{n}{path.suffix}"))
    return path


def fresh_metrics_log(out: Path) -> Path:
    """``out/metrics.jsonl``; an earlier one (a run started over) is kept as metrics.N.jsonl,
    because verl's file logger truncates its file."""
    return keep_earlier(out / "metrics.jsonl")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def merged_metrics(out: Path) -> list[dict]:
    """The run's records over all its attempts: the history kept at the last resume, then what
    the current attempt logged after it. A record of the current log at a step the history already
    covers is a repeat (a resume cut off while it merged) and is left out."""
    history = read_metrics(out / METRICS_HISTORY)
    current = read_metrics(out / "metrics.jsonl")
    last = max((r["step"] for r in history), default=None)
    return history + [r for r in current if last is None or r["step"] > last]


def resume_metrics_log(out: Path, resume_from: int | None) -> Path:
    """``out/metrics.jsonl`` for the next attempt of the run in ``out``.

    verl's file logger truncates its file, so an attempt that resumes at step ``resume_from``
    first keeps the records up to that step (the steps after it are trained again) in
    metrics.history.jsonl; `finish_metrics_log` puts the log back together. Without a
    checkpoint to resume from, the run starts over and its old log is kept as metrics.N.jsonl.
    """
    if resume_from is None:
        if (out / METRICS_HISTORY).exists():
            _write_atomic(out / "metrics.jsonl", _jsonl(merged_metrics(out)))
            (out / METRICS_HISTORY).unlink()
        return fresh_metrics_log(out)
    kept = [r for r in merged_metrics(out) if r["step"] <= resume_from]
    _write_atomic(out / METRICS_HISTORY, _jsonl(kept))
    (out / "metrics.jsonl").unlink(missing_ok=True)
    return out / "metrics.jsonl"


def finish_metrics_log(out: Path) -> Path:
    """Fold the history of a resumed run into ``out/metrics.jsonl``: one log, each step once."""
    if (out / METRICS_HISTORY).exists():
        _write_atomic(out / "metrics.jsonl", _jsonl(merged_metrics(out)))
        (out / METRICS_HISTORY).unlink()
    return out / "metrics.jsonl"


def _complete_checkpoint(folder: Path) -> bool:
    """verl writes the data loader state last: a folder whose state loads holds a whole checkpoint."""
    import torch

    try:
        torch.load(folder / CHECKPOINT_LAST_FILE, weights_only=False)
        return True
    except Exception:  # missing, cut off or unreadable: all mean the save did not finish
        return False


def resume_point(ckpt_dir: Path) -> int | None:
    """The step a rerun in ``ckpt_dir``'s run resumes from (None: from scratch), after making
    sure that verl's resume will pick a complete checkpoint.

    verl resumes from the step its tracker names. The tracker is written after the checkpoint,
    so a checkpoint cut off while being written is not named; but the tracker itself is
    rewritten in place, and a kill at that moment leaves it empty, which verl cannot read.
    Then the newest complete checkpoint is named instead (the tracker replaced atomically), or
    the tracker is removed when there is none.
    """
    tracker = ckpt_dir / CHECKPOINT_TRACKER
    if not tracker.exists():
        return None
    text = tracker.read_text().strip()
    if text.isdigit() and _complete_checkpoint(ckpt_dir / f"{CHECKPOINT_STEP_PREFIX}{int(text)}"):
        return int(text)
    steps = sorted((int(p.name[len(CHECKPOINT_STEP_PREFIX):]) for p in ckpt_dir.glob(f"{CHECKPOINT_STEP_PREFIX}*")
                    if p.name[len(CHECKPOINT_STEP_PREFIX):].isdigit()), reverse=True)
    for step in steps:
        if _complete_checkpoint(ckpt_dir / f"{CHECKPOINT_STEP_PREFIX}{step}"):
            print(f"checkpoint tracker {tracker} read {text!r}: resuming from the newest complete "
                  f"checkpoint, step {step}", flush=True)
            _write_atomic(tracker, str(step))
            return step
    print(f"checkpoint tracker {tracker} read {text!r} and no checkpoint is complete: starting over",
          flush=True)
    tracker.unlink()
    return None


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
    tracker = ckpt_dir / CHECKPOINT_TRACKER
    if not tracker.exists():
        raise FileNotFoundError(f"no checkpoint tracker in {ckpt_dir}")
    step = int(tracker.read_text().strip())
    path = ckpt_dir / f"{CHECKPOINT_STEP_PREFIX}{step}"
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
