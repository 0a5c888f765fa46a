"""What the launchers share: run folder bookkeeping and a logged subprocess."""

from __future__ import annotations

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
