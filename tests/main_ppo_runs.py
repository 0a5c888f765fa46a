"""Run verl's stock `python -m verl.trainer.main_ppo` for the end-to-end tests and read its metrics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def run_main_ppo(args: list[str], env: dict[str, str], folder: Path, timeout: int) -> tuple[dict[int, dict], str]:
    """Run main_ppo in ``folder`` with the file logger on; (metrics per step, the log text).

    Fails the test with the log's tail when the run fails or the plugin did not load.
    """
    metrics_file = folder / "metrics.jsonl"
    run_env = {**os.environ, **env, "HF_HUB_OFFLINE": "1", "VERL_FILE_LOGGER_PATH": str(metrics_file),
               "RAY_DEDUP_LOGS": "0", "TOKENIZERS_PARALLELISM": "false"}
    log = folder / "main_ppo.log"
    with open(log, "w") as out:
        proc = subprocess.run([sys.executable, "-m", "verl.trainer.main_ppo", *args], env=run_env, cwd=folder,
                              stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
    text = log.read_text()
    assert proc.returncode == 0, text[-5000:]
    assert "plugin failed to load" not in text
    steps = {rec["step"]: rec["data"] for rec in map(json.loads, metrics_file.read_text().splitlines())}
    return steps, text
