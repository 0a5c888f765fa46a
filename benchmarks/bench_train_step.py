"""Training step time on this machine: GRPO vs GRPO + SAM, measured in the same run.

    python benchmarks/bench_train_step.py [--steps 5] [--machine cpu] [--model tiny-sft]

Runs the launcher twice with the same seed and sizes, once per recipe, and
prints the mean step time (step 1, which includes warm-up, is left out), the
advantage time (`timing_s/adv`, where SAM runs), the reward time, the SAM
overhead as a share of the step, and the rollout's tokens/s. Target: SAM's
overhead under 2% of the step time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from a checkout: import the recipes


def run(config: str, args, out: Path) -> dict[int, dict]:
    cmd = [sys.executable, "-m", "recipes.launch", "--machine", args.machine, "--config", config,
           "--steps", str(args.steps), "--out", str(out), "trainer.test_freq=-1"]
    if args.model:
        cmd[3:3] = ["--model", args.model]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    steps: dict[int, dict] = {}
    for line in (out / "metrics.jsonl").read_text().splitlines():
        rec = json.loads(line)
        steps.setdefault(rec["step"], {}).update(rec["data"])
    return steps


def responses_per_step(machine: str, model: str | None) -> int:
    """Prompts x responses of a step, from the recipe composed with the run's presets."""
    from recipes.launch import compose_recipe
    from recipes.presets import machine_preset, scale_for

    preset = machine_preset(machine)
    cfg = compose_recipe("grpo_sam", [preset.override, scale_for(machine, model or preset.model).override])
    return int(cfg.data.train_batch_size) * int(cfg.actor_rollout_ref.rollout.n)


def mean(steps: dict[int, dict], key: str) -> float:
    values = [d[key] for s, d in steps.items() if s > 1 and key in d]
    return statistics.mean(values) if values else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--machine", default="cpu", choices=("cpu", "gpu", "vllm"))
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None, help="folder for the two runs (default: runs/bench-step-<time>)")
    args = p.parse_args()
    root = Path(args.out or REPO / "runs" / f"bench-step-{time.strftime('%Y%m%d-%H%M%S')}")
    results = {}
    for config in ("grpo", "grpo_sam"):
        print(f"running {config} for {args.steps} steps into {root / config} ...", flush=True)
        results[config] = run(config, args, root / config)
    print(f"{'':<10}{'step s':>9}{'adv s':>9}{'gen s':>9}{'tokens/s (gen)':>16}")
    for config, steps in results.items():
        gen = mean(steps, "timing_s/gen")
        tokens = mean(steps, "response_length/mean") * responses_per_step(args.machine, args.model)
        print(f"{config:<10}{mean(steps, 'timing_s/step'):>9.2f}{mean(steps, 'timing_s/adv'):>9.3f}"
              f"{gen:>9.2f}{tokens / gen if gen else float('nan'):>16.1f}")
    base, sam = results["grpo"], results["grpo_sam"]
    overhead = mean(sam, "timing_s/adv") - mean(base, "timing_s/adv")
    print(f"SAM advantage overhead: {overhead * 1e3:.1f} ms per step = "
          f"{100 * overhead / mean(sam, 'timing_s/step'):.2f}% of the step (target < 2%)")
    print(f"whole-step ratio grpo_sam / grpo: {mean(sam, 'timing_s/step') / mean(base, 'timing_s/step'):.3f} "
          "(noisy: generation lengths differ between runs)")


if __name__ == "__main__":
    main()
