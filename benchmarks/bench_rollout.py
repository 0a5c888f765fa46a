"""Generation throughput of the hf rollout: batched vs one request at a time.

Both modes run in this process, on the same model and prompts, through the
engine the rollout server uses (``verl_backend.hf_engine.HFGenerateEngine``):

* batched: all requests sent at once, as verl's agent loops do; the engine
  groups them into padded ``generate`` calls;
* sequential: each request awaited before the next is sent.

Each request samples exactly ``--max-tokens`` tokens (stop tokens disabled),
so both modes produce the same number of tokens.

    python benchmarks/bench_rollout.py [--model tiny] [--requests 32] [--max-tokens 64]
        [--dtype float32|bfloat16] [--device cpu|cuda] [--threads N] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from verl_backend.hf_engine import HFGenerateEngine, SamplingKey  # noqa: E402


def load(model_arg: str, dtype: str, device: str):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from model_zoo import resolve_model

    path = resolve_model(model_arg)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, dtype), attn_implementation="sdpa")
    return model.to(device), tokenizer


def make_prompts(tokenizer, n: int) -> list[list[int]]:
    topics = ["cheap hotel near the louvre", "running shoes for flat feet", "hotpot in chengdu",
              "sunscreen for oily skin", "mechanical keyboard for office"]
    return [
        tokenizer.apply_chat_template(
            [{"role": "user", "content": f"query: {topics[i % len(topics)]} #{i}. Judge the note's relevance."}],
            add_generation_prompt=True, tokenize=True, return_dict=False,
        )
        for i in range(n)
    ]


async def run_mode(engine: HFGenerateEngine, prompts, max_tokens: int, batched: bool) -> dict:
    key = SamplingKey.from_params({"temperature": 1.0, "top_k": -1, "top_p": 1.0})
    start = time.perf_counter()
    if batched:
        outs = await asyncio.gather(*(engine.generate(p, key, max_tokens, True) for p in prompts))
    else:
        outs = [await engine.generate(p, key, max_tokens, True) for p in prompts]
    seconds = time.perf_counter() - start
    tokens = sum(len(o.token_ids) for o in outs)
    return {
        "mode": "batched" if batched else "sequential",
        "requests": len(prompts),
        "tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 1),
        "generate_calls": engine.stats.generate_calls,
    }


async def measure(engine: HFGenerateEngine, prompts, max_tokens: int, batched: bool) -> dict:
    await run_mode(engine, prompts[:2], 4, batched)  # warm-up, same event loop as the measurement
    engine.stats.generate_calls = 0
    return await run_mode(engine, prompts, max_tokens, batched)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="model_zoo name or a model folder")
    parser.add_argument("--requests", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads on CPU (0: torch's default)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per mode; the median is reported")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    model, tokenizer = load(args.model, args.dtype, args.device)
    prompts = make_prompts(tokenizer, args.requests)
    runs = {True: [], False: []}
    for _ in range(args.repeats):  # modes interleaved, so a busy machine slows both alike
        for batched in (True, False):
            # A stop id outside the vocabulary: every request yields exactly max_tokens tokens.
            engine = HFGenerateEngine(model, stop_token_ids=[10**9], pad_token_id=tokenizer.pad_token_id or 0,
                                      max_batch_size=args.requests)
            runs[batched].append(asyncio.run(measure(engine, prompts, args.max_tokens, batched)))
    # The median run of each mode (by throughput), with every run's throughput.
    results = []
    for batched in (True, False):
        ordered = sorted(runs[batched], key=lambda r: r["tokens_per_s"])
        results.append({**ordered[len(ordered) // 2], "all_tokens_per_s": [r["tokens_per_s"] for r in runs[batched]]})

    setting = {"model": args.model, "device": args.device, "dtype": args.dtype, "threads": torch.get_num_threads(),
               "max_tokens": args.max_tokens, "repeats": args.repeats}
    print(json.dumps({"setting": setting, "results": results}))
    for r in results:
        print(f"{r['mode']:>10}: {r['tokens']} tokens in {r['seconds']:.2f}s = {r['tokens_per_s']:.0f} tokens/s "
              f"({r['generate_calls']} generate calls)", file=sys.stderr)
    speedup = results[0]["tokens_per_s"] / results[1]["tokens_per_s"]
    print(f"batched / sequential (medians): {speedup:.1f}x", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
