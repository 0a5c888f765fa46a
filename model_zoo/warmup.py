"""`tiny-sft`: the tiny model after a short supervised warm-up on reasoning traces.

A randomly initialised model never writes the criteria-guided step format, so
an RL run with it has no steps for SAM to mask. A few hundred supervised steps
on the benchmark's warm-up traces (plain torch, about a minute on 2 CPU cores)
teach it the format, not the task: that is what fast end-to-end checks need.
Measured: loss 8.0 -> 0.54 over 1200 steps; at temperature 1 about a third of
its responses are well-formed and a few percent get the label right, so GRPO
groups have reward variance and SAM has steps to mask.
Real warm-ups of real models go through verl's SFT trainer (see recipes/).
"""

from __future__ import annotations

import math
import os
import random
from pathlib import Path
from typing import Sequence

from model_zoo._atomic import build_once

WARMUP_VERSION = 1


def _examples(tokenizer, messages_list: Sequence[Sequence[dict]], max_len: int) -> list[tuple[list[int], int]]:
    """(ids, response start) per conversation; the loss covers the assistant turn only."""
    out = []
    for messages in messages_list:
        prompt = tokenizer.apply_chat_template(list(messages[:-1]), add_generation_prompt=True, tokenize=False)
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        answer_ids = tokenizer(messages[-1]["content"], add_special_tokens=False)["input_ids"]
        ids = (prompt_ids + answer_ids + [tokenizer.eos_token_id])[-max_len:]
        start = max(0, len(ids) - len(answer_ids) - 1)
        out.append((ids, start))
    return out


def warmup_cosine(optim, steps: int):
    """Linear warm-up over 20 steps, then cosine to zero at ``steps``."""
    import torch

    return torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min(1.0, (s + 1) / 20) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))


def optimizer_step(loss, model, optim, sched) -> float:
    """Backward, clip the gradient norm at 1, step the optimiser and the schedule; the loss value."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optim.step()
    sched.step()
    optim.zero_grad()
    return loss.item()


def supervised_warmup(model_dir: str | os.PathLike, messages_list: Sequence[Sequence[dict]], out_dir: Path,
                      steps: int = 300, batch_size: int = 8, lr: float = 3e-3, max_len: int = 1024,
                      seed: int = 0, threads: int = 1, on_step=None) -> dict:
    """Fine-tune ``model_dir`` on chat conversations (assistant-only loss) and save to ``out_dir``.

    ``on_step(step, model, tokenizer)``, if given, is called after each optimiser step (checkpoints
    of a sweep).
    """
    import torch
    from tqdm import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # One thread: on a busy 2-core machine two torch threads spin against each
    # other and run several times slower than one.
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.train()
    examples = _examples(tokenizer, messages_list, max_len)
    optim = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    sched = warmup_cosine(optim, steps)
    losses = []
    for step in tqdm(range(1, steps + 1), desc="warm-up", mininterval=2.0):
        batch = rng.sample(examples, min(batch_size, len(examples)))
        # Left padding puts every response at the end of its row, so logits are
        # computed only for the last `keep` positions (the prompt is the bulk of
        # each sequence and needs no logits: that is most of the cost saved).
        width = max(len(ids) for ids, _ in batch)
        keep = max(len(ids) - start for ids, start in batch) + 1
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        labels = torch.full((len(batch), width), -100)
        for row, (ids, start) in enumerate(batch):
            offset = width - len(ids)
            input_ids[row, offset:] = torch.tensor(ids)
            attention[row, offset:] = 1
            labels[row, offset + start:] = torch.tensor(ids[start:])
        position_ids = (attention.cumsum(-1) - 1).clamp(min=0)
        logits = model(input_ids=input_ids, attention_mask=attention, position_ids=position_ids,
                       logits_to_keep=keep).logits
        # logits[:, j] predicts token width - keep + j + 1
        targets = labels[:, width - keep + 1:]
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)
        losses.append(optimizer_step(loss, model, optim, sched))
        if on_step is not None:
            on_step(step, model, tokenizer)
    torch.set_num_threads(previous_threads)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    tail = losses[-20:]
    return {"warmup_steps": steps, "first_loss": losses[0], "final_loss": sum(tail) / len(tail)}


def build_tiny_sft(out_dir: str | os.PathLike, steps: int = 1200, num_traces: int = 512, seed: int = 0,
                   batch_size: int = 4, lr: float = 6e-3, criteria: str = "default", base: str = "tiny",
                   threads: int = 1, on_step=None, teacher: str = "") -> Path:
    """Build (or reuse) a model_zoo model (``base``) warmed up on the benchmark's English traces.

    ``criteria`` picks the prompt and trace format: ``default`` (criteria-guided
    steps), ``free_form`` (the free-form reasoning ablation's warm-up), or a
    variant such as ``compact``. ``on_step`` goes to `supervised_warmup` (it is not called
    when the build is reused from the cache). ``teacher`` is a `data_prep.teacher.TeacherErrors`
    spec: the mistakes of the teacher whose traces the warm-up imitates ("" for none).
    """
    from data_prep.teacher import TeacherErrors
    from model_zoo import resolve_model

    base_dir = resolve_model(base)
    spec = {"kind": f"{base}-sft", "version": WARMUP_VERSION, "steps": steps, "num_traces": num_traces,
            "seed": seed, "batch_size": batch_size, "lr": lr, "base": str(base_dir.name)}
    if criteria != "default":  # keeps the spec (and so the cached build) of the default model unchanged
        spec["criteria"] = criteria
    errors = TeacherErrors.parse(teacher, seed=seed)
    if errors:  # likewise: a build by the annotating teacher keeps its spec
        spec["teacher"] = errors.spec

    def build(tmp: Path) -> dict:
        from data_prep.benchmark import BenchmarkConfig, generate_benchmark
        from data_prep.prompt import render_prompt

        cfg = BenchmarkConfig(seed=seed, train_size=max(num_traces, 100), val_size=5, test_random_size=5,
                              test_longtail_size=5, sft_size=num_traces)
        from data_prep.traces import build_trace

        rows = [errors.view(r) for r in generate_benchmark(cfg)["train"] if r.get("reasoning")]
        conversations = [
            render_prompt(r["query"], r["title"], r["content"], r["tags"], criteria=criteria)
            + [{"role": "assistant", "content": r["reasoning"] if criteria == "default" and "teacher_mistake" not in r
                                         else build_trace(r, criteria)}]
            for r in rows]
        return supervised_warmup(base_dir, conversations, tmp, steps=steps, batch_size=batch_size, lr=lr,
                                 seed=seed, threads=threads, on_step=on_step)

    return build_once(out_dir, spec, build)


def build_tiny_label(out_dir: str | os.PathLike, steps: int = 300, num_rows: int = 512, seed: int = 0,
                     batch_size: int = 8, lr: float = 6e-3) -> Path:
    """Build (or reuse) the tiny model trained to write the gold label alone (``<answer>L</answer>``).

    A stand-in for a distilled student in fast checks of label-only scoring (one-pass scorer,
    serving): it answers in the trained format, whatever its accuracy.
    """
    from model_zoo import resolve_model

    base = resolve_model("tiny")
    spec = {"kind": "tiny-label", "version": WARMUP_VERSION, "steps": steps, "num_rows": num_rows,
            "seed": seed, "batch_size": batch_size, "lr": lr, "base": str(base.name)}

    def build(tmp: Path) -> dict:
        from data_prep.benchmark import BenchmarkConfig, generate_benchmark
        from data_prep.prompt import render_prompt
        from data_prep.traces import label_only_response

        cfg = BenchmarkConfig(seed=seed, train_size=num_rows, val_size=5, test_random_size=5,
                              test_longtail_size=5, sft_size=0, progress=False)
        conversations = [
            render_prompt(r["query"], r["title"], r["content"], r["tags"])
            + [{"role": "assistant", "content": label_only_response(r["label"])}]
            for r in generate_benchmark(cfg)["train"]]
        return supervised_warmup(base, conversations, tmp, steps=steps, batch_size=batch_size, lr=lr, seed=seed)

    return build_once(out_dir, spec, build)



def build_mini_sft(out_dir: str | os.PathLike, criteria: str = "compact", steps: int = 2000,
                   num_traces: int = 20000, lr: float = 3e-3, teacher: str | None = None) -> Path:
    """Build (or reuse) the CPU miniature's warm-up: the ~1M-parameter ``mini`` model on 20000
    compact-prompt traces of the lenient teacher (`data_prep.teacher.LENIENT`), 2000 steps of 8:
    it writes the steps and has learned part of the task, and answers as leniently as its
    teacher (about 10 minutes on 2 cores; the sweep behind the sizes is in docs/results.md)."""
    from data_prep.teacher import LENIENT

    return build_tiny_sft(out_dir, steps=steps, num_traces=num_traces, batch_size=8, lr=lr, criteria=criteria,
                          base="mini", threads=2, teacher=LENIENT if teacher is None else teacher)
