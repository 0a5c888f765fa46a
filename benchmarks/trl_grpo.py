"""TRL's `GRPOTrainer` on the project's task: the baseline side of `bench_vs_trl.py`.

    python benchmarks/trl_grpo.py --model DIR --data TRAIN.parquet --steps N --prompts P --n G
                                  --max-new-tokens T --lr LR --events OUT.jsonl

The same model folder, chat prompts, reward (`reward.compute_score`) and sizes as the
project's CPU preset: P prompts x G responses a step, one policy update per batch, no
KL term, temperature 1. Each step's begin and end go to ``--events`` as wall-clock
timestamps, so the caller measures start-up and step times the same way for both sides.
TRL is a benchmark-only dependency in its own environment (``bash scripts/setup_bench.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def load_prompts(path: Path, rows: int):
    """The RL parquet's prompts, labels and extra_info as a `datasets.Dataset` for TRL."""
    import datasets
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["prompt", "reward_model", "extra_info"]).slice(0, rows).to_pylist()
    return datasets.Dataset.from_list([
        {"prompt": r["prompt"], "ground_truth": r["reward_model"]["ground_truth"],
         "extra_info": json.dumps(r["extra_info"])} for r in table])


def relevance_reward(prompts, completions, ground_truth, extra_info, **_) -> list[float]:
    from reward import compute_score

    scores = []
    for completion, label, info in zip(completions, ground_truth, extra_info):
        text = completion[-1]["content"] if isinstance(completion, list) else completion
        scores.append(float(compute_score("grm_relevance", text, label, json.loads(info))["score"]))
    return scores


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, type=Path)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--prompts", type=int, default=4)
    p.add_argument("--n", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--events", required=True, type=Path)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    events = args.events.open("w")

    class StepClock(TrainerCallback):
        def on_step_begin(self, targs, state, control, **kw):
            events.write(json.dumps({"event": "begin", "step": state.global_step + 1, "t": time.time()}) + "\n")
            events.flush()

        def on_step_end(self, targs, state, control, **kw):
            events.write(json.dumps({"event": "end", "step": state.global_step, "t": time.time()}) + "\n")
            events.flush()

    responses = args.prompts * args.n
    config = GRPOConfig(
        output_dir=str(args.out or args.events.parent / "trl-out"),
        use_cpu=True, bf16=False, seed=args.seed,
        per_device_train_batch_size=responses, num_generations=args.n, generation_batch_size=responses,
        num_iterations=1, max_steps=args.steps, max_completion_length=args.max_new_tokens,
        learning_rate=args.lr, beta=0.0, temperature=1.0, top_p=1.0,
        # the project's CPU path runs without activation checkpointing: the same here
        gradient_checkpointing=False,
        lr_scheduler_type="constant",  # verl's default: no decay over the run
        logging_steps=1, report_to="none", save_strategy="no", dataloader_num_workers=0,
    )
    trainer = GRPOTrainer(model=args.model, reward_funcs=relevance_reward,
                          train_dataset=load_prompts(args.data, args.prompts * (args.steps + 1)),
                          args=config, callbacks=[StepClock()])
    trainer.train()
    events.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
