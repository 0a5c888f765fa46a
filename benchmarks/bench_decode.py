"""Greedy evaluation decoding: ``model_zoo.decode`` against ``model.generate``, same run.

Both decode the same benchmark prompts (the test_random split, rendered as the evaluation
renders them) in batches of ``--batch-size``, on the same model and threads, alternating
repeat by repeat so that load on a shared machine hits both alike. Prints each side's
median pairs/s, the ratio, and whether the two produced identical tokens (they must:
both are greedy on the same weights).

    python benchmarks/bench_decode.py [--model mini-sft] [--criteria compact] [--pairs 128]
        [--batch-size 64] [--max-new-tokens 256] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def prompts(tokenizer, criteria: str, n: int) -> list[list[int]]:
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.prompt import render_prompt
    from evaluation.generation import render_prompts

    cfg = BenchmarkConfig(seed=0, train_size=5, val_size=5, test_random_size=n, test_longtail_size=5,
                          sft_size=0, progress=False)
    rows = generate_benchmark(cfg)["test_random"][:n]
    return render_prompts(tokenizer, [render_prompt(r["query"], r["title"], r["content"], r["tags"],
                                                    criteria=criteria) for r in rows])


def load(model_name: str, threads: int):
    """(model in float32 without its own generation defaults, tokenizer, stop token ids)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    from evaluation.generation import load_tokenizer
    from model_zoo import resolve_model
    from model_zoo.stop_tokens import stop_token_ids

    torch.set_num_threads(threads)
    path = resolve_model(model_name)
    tokenizer = load_tokenizer(str(path))
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    stop_ids = set(stop_token_ids(tokenizer, model.config, model.generation_config))
    model.generation_config = GenerationConfig()
    return model, tokenizer, stop_ids


def run(decoder: str, model, tokenizer, stop_ids, ids: list[list[int]], batch_size: int, max_new: int):
    import torch

    from model_zoo.decode import decode

    out, start = [], time.perf_counter()
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
    for s in range(0, len(order), batch_size):
        chunk = order[s:s + batch_size]
        batch = tokenizer.pad({"input_ids": [ids[i] for i in chunk]}, return_tensors="pt")
        if decoder == "decode":
            tokens = decode(model, batch["input_ids"], batch["attention_mask"], max_new_tokens=max_new,
                            stop_token_ids=stop_ids, pad_token_id=tokenizer.pad_token_id).tokens
        else:
            with torch.inference_mode():
                seqs = model.generate(**batch, max_new_tokens=max_new, do_sample=False, eos_token_id=list(stop_ids),
                                      pad_token_id=tokenizer.pad_token_id, temperature=None, top_p=None, top_k=None)
            tokens = seqs[:, batch["input_ids"].shape[1]:]
        for row in tokens.tolist():  # up to the first stop token: what a caller keeps
            end = next((k + 1 for k, t in enumerate(row) if t in stop_ids), len(row))
            out.append(row[:end])
    return len(ids) / (time.perf_counter() - start), out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mini-sft")
    ap.add_argument("--criteria", default="compact")
    ap.add_argument("--pairs", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    model, tokenizer, stop_ids = load(args.model, args.threads)
    ids = prompts(tokenizer, args.criteria, args.pairs)
    rates: dict[str, list[float]] = {"generate": [], "decode": []}
    outputs = {}
    for _ in range(args.repeats):
        for name in rates:
            rate, outputs[name] = run(name, model, tokenizer, stop_ids, ids, args.batch_size, args.max_new_tokens)
            rates[name].append(rate)
            print(f"{name:8s} {rate:6.2f} pairs/s", flush=True)
    medians = {k: statistics.median(v) for k, v in rates.items()}
    result = {"model": str(args.model), "pairs": args.pairs, "batch_size": args.batch_size,
              "threads": args.threads, "repeats": args.repeats,
              "generate_pairs_per_s": round(medians["generate"], 2), "decode_pairs_per_s": round(medians["decode"], 2),
              "speedup": round(medians["decode"] / medians["generate"], 2),
              "identical_tokens": outputs["generate"] == outputs["decode"],
              "mean_new_tokens": round(statistics.mean(len(o) for o in outputs["decode"]), 1)}
    print(json.dumps(result))
    return 0 if result["identical_tokens"] else 1


if __name__ == "__main__":
    sys.exit(main())
