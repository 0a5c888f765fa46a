"""The project's CPU training path against TRL's `GRPOTrainer`, on the same work, in one run.

    python benchmarks/bench_vs_trl.py [--steps 6] [--model tiny-sft] [--prompts 4] [--n 8]
                                      [--max-new-tokens 256] [--rounds 1] [--out DIR] [--only verl|trl]

Both sides get the same model folder, the same training prompts (the benchmark's
`train.parquet`), the same reward (`reward.compute_score`) and the same sizes: P prompts
x G responses of at most T new tokens a step, one update per batch, no KL, lr 1e-4,
temperature 1, no activation checkpointing. The project's side is the README's main
command (`python -m recipes.launch`, verl `main_ppo`); TRL's is `benchmarks/trl_grpo.py`, run
with the Python of a separate environment (`bash scripts/setup_bench.sh` makes `.venv-trl`:
TRL cannot be installed beside verl 0.9.1, see that script). They run one after the other (A B A B ... with
--rounds), each as a whole process tree, and the script prints per side:

* median step time over steps 2..N (step 1 warms up), and its min and max;
* start-up: from the command's start to the beginning of step 1, and step 1's own time
  (processes that verl starts lazily, at the first step, count there);
* wall time of the whole command, and peak RSS summed over all its processes
  (sampled every 0.25 s; shared pages count once per process, as `ps` shows them);

then the ratios project / TRL. Model building and benchmark generation are done
before the timed runs, so neither side pays for them.
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
sys.path.insert(0, str(REPO))  # run as a script from a checkout


def tree_rss(proc) -> int:
    import psutil

    total = 0
    try:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def run_measured(cmd: list[str], log: Path, poll_steps) -> dict:
    """Run ``cmd``; ``poll_steps()`` returns {step: (begin_t, end_t)} seen so far (wall clock)."""
    import psutil

    started = time.time()
    with log.open("w") as out:
        child = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        proc = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss(proc))
            time.sleep(0.25)
    wall = time.time() - started
    if child.returncode != 0:
        raise SystemExit(f"{cmd[1:4]} failed with exit code {child.returncode}; see {log}")
    steps = poll_steps()
    if 1 not in steps:
        raise SystemExit(f"no training step was recorded; see {log}")
    durations = [steps[s][1] - steps[s][0] for s in sorted(steps) if s > 1]
    return {"wall_s": wall, "startup_s": steps[1][0] - started, "steps": len(steps),
            "first_step_s": steps[1][1] - steps[1][0], "step_s": durations, "peak_rss_gib": peak / 2**30}


def verl_side(args, model: Path, out: Path) -> dict:
    metrics = out / "metrics.jsonl"
    cmd = [sys.executable, "-m", "recipes.launch", "--machine", "cpu", "--model", str(model),
           "--steps", str(args.steps), "--out", str(out), "--seed", "0",
           f"data.train_batch_size={args.prompts}", f"actor_rollout_ref.rollout.n={args.n}",
           f"actor_rollout_ref.actor.ppo_mini_batch_size={args.prompts}",
           f"data.max_response_length={args.max_new_tokens}", "actor_rollout_ref.actor.optim.lr=1e-4",
           # TRL validates neither before nor during training: start-up is the command to step 1 alone
           "trainer.test_freq=-1", "trainer.val_before_train=false"]

    def steps() -> dict:
        # verl logs a step when it ends; its own timer gives the duration, the file's end the order
        out_steps = {}
        for line in metrics.read_text().splitlines():
            rec = json.loads(line)
            if "timing_s/step" in rec["data"]:
                out_steps[rec["step"]] = rec["data"]["timing_s/step"]
        return out_steps

    out.mkdir(parents=True, exist_ok=True)
    arrivals: dict[int, float] = {}
    import threading

    done = threading.Event()

    def watch():  # when each step's record appears = the step's end
        while not done.is_set():
            if metrics.exists():
                for s in steps():
                    arrivals.setdefault(s, time.time())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        result = run_measured(cmd, out / "bench.log",
                              lambda: {s: (arrivals[s] - d, arrivals[s]) for s, d in steps().items() if s in arrivals})
    finally:
        done.set()
    # durations from verl's own timer (the arrival times only place step 1's start)
    timed = steps()
    result["step_s"] = [timed[s] for s in sorted(timed) if s > 1]
    result["first_step_s"] = timed[1]
    phases = {}
    for line in metrics.read_text().splitlines():
        rec = json.loads(line)
        if rec["step"] > 1:
            for k, v in rec["data"].items():
                if k.startswith("timing_s/") and isinstance(v, (int, float)):
                    phases.setdefault(k, []).append(v)
    result["phases"] = {k: statistics.median(v) for k, v in sorted(phases.items())}
    return result


def trl_side(args, model: Path, data: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    events = out / "events.jsonl"
    cmd = [str(args.trl_python), str(REPO / "benchmarks" / "trl_grpo.py"), "--model", str(model), "--data", str(data),
           "--steps", str(args.steps), "--prompts", str(args.prompts), "--n", str(args.n),
           "--max-new-tokens", str(args.max_new_tokens), "--events", str(events)]

    def steps() -> dict:
        begin, end = {}, {}
        for line in events.read_text().splitlines():
            e = json.loads(line)
            (begin if e["event"] == "begin" else end)[e["step"]] = e["t"]
        return {s: (begin[s], end[s]) for s in begin if s in end}

    return run_measured(cmd, out / "bench.log", steps)


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):7.2f} ({min(values):.2f}-{max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--model", default="tiny-sft")
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--rounds", type=int, default=1, help="A B pairs to run")
    p.add_argument("--only", choices=("verl", "trl"), default=None)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--trl-python", type=Path, default=REPO / ".venv-trl" / "bin" / "python",
                   help="Python of the TRL environment (default: .venv-trl, made by scripts/setup_bench.sh)")
    args = p.parse_args(argv)
    if args.steps < 2:
        p.error("--steps must be >= 2 (step 1 is warm-up)")
    if args.only != "verl" and not args.trl_python.is_file():
        p.error(f"no TRL environment at {args.trl_python}: run `bash scripts/setup_bench.sh` first")

    from model_zoo import cache_dir, resolve_model
    from recipes.launch import ensure_benchmark

    model = resolve_model(args.model).resolve()
    data = ensure_benchmark((cache_dir() / "data" / "benchmark-en").resolve()) / "train.parquet"
    root = (args.out or REPO / "runs" / f"bench-vs-trl-{time.strftime('%Y%m%d-%H%M%S')}").resolve()
    results: dict[str, list[dict]] = {"project (verl)": [], "TRL": []}
    for r in range(args.rounds):
        if args.only != "trl":
            print(f"round {r + 1}: project (verl main_ppo) ...", flush=True)
            results["project (verl)"].append(verl_side(args, model, root / f"verl-{r}"))
        if args.only != "verl":
            print(f"round {r + 1}: TRL GRPOTrainer ...", flush=True)
            results["TRL"].append(trl_side(args, model, data, root / f"trl-{r}"))
    (root / "results.json").write_text(json.dumps(results, indent=2))

    print(f"\n{args.prompts} prompts x {args.n} responses, <= {args.max_new_tokens} new tokens, "
          f"{args.steps} steps, model {model.name}; median (min-max) over steps 2..{args.steps} and rounds")
    print(f"{'':<16}{'step s':>22}{'start-up s':>22}{'step 1 s':>22}{'wall s':>22}{'peak RSS GiB':>22}")
    summary = {}
    for side, runs in results.items():
        if not runs:
            continue
        cols = {"step": [s for r in runs for s in r["step_s"]], "startup": [r["startup_s"] for r in runs],
                "first": [r["first_step_s"] for r in runs], "wall": [r["wall_s"] for r in runs],
                "rss": [r["peak_rss_gib"] for r in runs]}
        summary[side] = {k: statistics.median(v) for k, v in cols.items()}
        print(f"{side:<16}" + "".join(f"{fmt(v):>22}" for v in cols.values()))
    if len(summary) == 2:
        a, b = summary["project (verl)"], summary["TRL"]
        print(f"{'ratio verl/TRL':<16}" + "".join(f"{a[k] / b[k]:>22.2f}" for k in ("step", "startup", "first", "wall", "rss")))
    for run in results["project (verl)"]:
        print("project phases (median s, steps 2..N): "
              + ", ".join(f"{k.split('/', 1)[1]} {v:.2f}" for k, v in run["phases"].items()))
    print(f"runs and logs: {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
