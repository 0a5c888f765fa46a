"""The traditional relevance model: the backbone with a sequence-classification head, on gold labels.

    python -m recipes.classifier --model mini|PATH --data DIR|PARQUET --out DIR [--steps N]
                                 [--batch-size N] [--lr X] [--seed N] [--threads N]

The paper compares its generative model with a discriminative one: the same backbone reading
the query and the note, a linear head on top, trained on the labels alone. Here the head
(transformers' ``AutoModelForSequenceClassification``) reads the very prompt the generative
models read (the RL parquet's chat, rendered by the tokenizer's template with the generation
prompt) and classifies the five levels from the last prompt token; the loss is cross-entropy on
the gold label (``reward_model.ground_truth``). It sees ``steps x batch`` pairs of a seeded
shuffle of the training split, as SFT label-only sees ``steps x batch`` pairs of it.

Output folder: ``hf/`` (the model and its tokenizer; ``python -m evaluation --mode score`` reads
its head), ``summary.json`` last (pairs seen, labels, losses, wall time). Plain torch, not a verl
trainer: verl trains language models, and this model has no language-model loss.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from evaluation.arguments import error_exit, positive_int
from evaluation.metrics import LABELS


def positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {value}")
    return x


def training_pairs(train_file: Path, tokenizer, needed: int, seed: int) -> tuple[list[list[int]], list[int]]:
    """Prompt token ids (as evaluation renders them) and gold labels of the first ``needed`` rows of
    a seeded shuffle of the split (the whole split, in that order, if it is smaller); only those are
    rendered."""
    from evaluation.generation import render_prompts
    from evaluation.scoring import DataError, check_gold_labels, gold_label, load_rows

    rows = load_rows(train_file)
    if not rows:
        raise DataError(f"{train_file}: no rows to train on")
    check_gold_labels(rows, train_file)
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    picked = order[:needed]
    return (render_prompts(tokenizer, [rows[i]["prompt"] for i in picked]),
            [gold_label(rows[i], i + 1) for i in picked])


def one_hot(label: int) -> list[float]:
    return [1.0 if v == label else 0.0 for v in LABELS]


def keep_first_layers(model, layers: int) -> None:
    """Cut a decoder backbone to its first ``layers`` transformer layers, in place (a distilled
    student that starts from the lower layers of a trained model, as DistilBERT starts from
    BERT's); the config says the new depth, so the saved model loads as it is."""
    body = getattr(model, "base_model", model)
    stack = getattr(body, "layers", None)
    if stack is None:
        raise ValueError(f"{type(model).__name__}: no decoder layers to cut (expected base_model.layers)")
    if not 1 <= layers <= len(stack):
        raise ValueError(f"--student-layers {layers}: the backbone has {len(stack)} layers; keep 1 to {len(stack)}")
    body.layers = stack[:layers]
    model.config.num_hidden_layers = layers
    if getattr(model.config, "layer_types", None) is not None:
        model.config.layer_types = list(model.config.layer_types)[:layers]


def train_head(base: Path, prompts: list[list[int]], targets: list[list[float]], out: Path, steps: int = 200,
               batch_size: int = 8, lr: float = 3e-3, seed: int = 0, device: str = "cpu", progress: bool = True,
               tokenizer=None, layers: int | None = None) -> dict:
    """Train the backbone with a classification head on (prompt ids, label distribution) pairs,
    taken in order and cycled; the model goes to ``out/hf`` (renamed into place when saved).

    ``targets[i]`` is a distribution over `LABELS` (in that order) summing to 1. ``layers``: keep
    only the backbone's first layers (`keep_first_layers`).
    """
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification

    from evaluation.generation import load_tokenizer
    from evaluation.label_scorer import left_padded
    from model_zoo.warmup import optimizer_step, warmup_cosine

    if len(prompts) != len(targets) or not prompts:
        raise ValueError(f"{len(prompts)} prompts and {len(targets)} targets: need as many, and at least one")
    for i, t in enumerate(targets):
        if len(t) != len(LABELS) or min(t) < 0 or abs(sum(t) - 1.0) > 1e-4:
            raise ValueError(f"target {i}: {t} is not a distribution over the labels {list(LABELS)}")
    started = time.perf_counter()
    torch.manual_seed(seed)
    tokenizer = tokenizer or load_tokenizer(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(LABELS), id2label={i: str(v) for i, v in enumerate(LABELS)},
        label2id={str(v): i for i, v in enumerate(LABELS)}, pad_token_id=tokenizer.pad_token_id,
        dtype=torch.float32)
    if layers is not None:
        keep_first_layers(model, layers)
    model = model.to(device)
    model.train()
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = warmup_cosine(optim, steps)  # as model_zoo's warm-ups
    target_table = torch.tensor(targets, dtype=torch.float32)
    losses, seen = [], Counter()
    for step in tqdm(range(steps), desc="classifier", disable=not progress, mininterval=2.0):
        picked = [(step * batch_size + k) % len(prompts) for k in range(batch_size)]
        input_ids, mask, positions = left_padded([prompts[i] for i in picked], tokenizer.pad_token_id)
        logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device),
                       position_ids=positions.to(device)).logits
        # soft cross-entropy (probabilities as the target): KL to the targets plus their entropy
        loss = torch.nn.functional.cross_entropy(logits.float(), target_table[picked].to(device))
        losses.append(optimizer_step(loss, model, optim, sched))
        seen.update(picked)
    model.eval()
    tmp = out / f".hf.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    shutil.rmtree(out / "hf", ignore_errors=True)
    tmp.rename(out / "hf")
    tail = losses[-20:]
    mass = target_table[list(seen)].sum(0) if seen else torch.zeros(len(LABELS))
    return {"base_model": str(base), "layers": model.config.num_hidden_layers, "steps": steps,
            "batch_size": batch_size, "lr": lr, "seed": seed,
            "distinct_pairs_seen": len(seen),
            "target_mass": {str(v): round(float(m), 2) for v, m in zip(LABELS, mass)},
            "first_loss": losses[0], "final_loss": sum(tail) / len(tail),
            "loss_every_10_steps": [round(x, 4) for x in losses[::10]],
            "wall_s": round(time.perf_counter() - started, 1), "hf_model": str(out / "hf")}


def train_classifier(base: Path, train_file: Path, out: Path, steps: int = 200, batch_size: int = 8,
                     lr: float = 3e-3, seed: int = 0, device: str = "cpu", progress: bool = True) -> dict:
    """The traditional relevance model: the head on the gold labels of ``train_file``."""
    from evaluation.generation import load_tokenizer

    tokenizer = load_tokenizer(str(base))
    prompts, labels = training_pairs(train_file, tokenizer, steps * batch_size, seed)
    summary = train_head(base, prompts, [one_hot(label) for label in labels], out, steps=steps,
                         batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress,
                         tokenizer=tokenizer)
    draws = Counter(labels[(k % len(labels))] for k in range(steps * batch_size))
    return {**summary, "train_file": str(train_file),
            "label_draws": {str(v): draws.get(v, 0) for v in LABELS}}


def write_json_atomic(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m recipes.classifier", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="backbone: a model_zoo name (mini, tiny, smollm2) or a local HF folder")
    p.add_argument("--data", required=True, help="a benchmark folder (its train.parquet) or an RL parquet")
    p.add_argument("--out", required=True, help="output folder (hf/ and summary.json)")
    p.add_argument("--steps", type=positive_int, default=200)
    p.add_argument("--batch-size", type=positive_int, default=8)
    p.add_argument("--lr", type=positive_float, default=3e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=positive_int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--machine", default="cpu", choices=("cpu", "gpu"), help="gpu: train on CUDA")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from evaluation.arguments import offline_torch
    from evaluation.generation import resolve_device
    from evaluation.scoring import DataError
    from model_zoo import ModelZooError, resolve_model

    offline_torch(args.threads)
    data = Path(args.data)
    train_file = data / "train.parquet" if data.is_dir() else data
    out = Path(args.out)
    try:
        device = resolve_device("cuda" if args.machine == "gpu" else "cpu")
        base = resolve_model(args.model)
        out.mkdir(parents=True, exist_ok=True)
        summary = train_classifier(base, train_file, out, steps=args.steps, batch_size=args.batch_size,
                                   lr=args.lr, seed=args.seed, device=device, progress=not args.no_progress)
    except (DataError, ModelZooError, OSError, RuntimeError) as exc:
        return error_exit(exc, out)
    write_json_atomic(out / "summary.json", summary)
    print(f"classifier: {summary['steps']} steps of {summary['batch_size']}, loss {summary['first_loss']:.3f} -> "
          f"{summary['final_loss']:.3f}, {summary['wall_s']} s; model in {summary['hf_model']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
