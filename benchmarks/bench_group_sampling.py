"""An RL step's sampled decoding (G prompts x n samples, temperature 1), three ways, same run.

* ``multinomial``: prompts repeated n times, ``torch.multinomial`` draws (the loop before);
* ``inverse_cdf``: prompts repeated, draws by inverse CDF (`model_zoo.decode.sample_categorical`);
* ``shared_prompt``: inverse CDF, each prompt cached once and read once per step for its n
  samples (``decode(..., samples=n)``).

The three alternate repeat by repeat (load on a shared machine hits them alike), each with the
same seed. Prints each one's median seconds and tokens/s and the ratios to ``multinomial``; the
draws differ between the samplers (another random stream), so token counts differ a little.

    python benchmarks/bench_group_sampling.py [--model mini-sft] [--prompts 16] [--samples 8]
        [--max-new-tokens 256] [--threads 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_decode import load, prompts  # noqa: E402

MODES = ("multinomial", "inverse_cdf", "shared_prompt")


def run(mode: str, model, tokenizer, stop_ids, ids, samples: int, max_new: int, seed: int) -> tuple[float, int]:
    import torch

    import model_zoo.decode as decoding

    batch = tokenizer.pad({"input_ids": ids}, return_tensors="pt")
    input_ids, mask = batch["input_ids"], batch["attention_mask"]
    if mode != "shared_prompt":
        input_ids, mask = input_ids.repeat_interleave(samples, 0), mask.repeat_interleave(samples, 0)
    draw = decoding.sample_categorical
    if mode == "multinomial":
        decoding.sample_categorical = lambda probs, generator=None: torch.multinomial(
            probs, 1, generator=generator).squeeze(-1)
    try:
        start = time.perf_counter()
        out = decoding.decode(model, input_ids, mask, max_new_tokens=max_new, stop_token_ids=stop_ids,
                              pad_token_id=tokenizer.pad_token_id, temperature=1.0, record_log_probs=True,
                              generator=torch.Generator().manual_seed(seed),
                              samples=samples if mode == "shared_prompt" else 1)
        seconds = time.perf_counter() - start
    finally:
        decoding.sample_categorical = draw
    return seconds, int((out.tokens != tokenizer.pad_token_id).sum())


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="mini-sft")
    ap.add_argument("--criteria", default="compact")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)

    model, tokenizer, stop_ids = load(args.model, args.threads)
    ids = prompts(tokenizer, args.criteria, args.prompts)
    seconds: dict[str, list[float]] = {m: [] for m in MODES}
    tokens: dict[str, list[int]] = {m: [] for m in MODES}
    for repeat in range(args.repeats):
        for mode in MODES:
            s, n = run(mode, model, tokenizer, stop_ids, ids, args.samples, args.max_new_tokens, seed=repeat)
            seconds[mode].append(s)
            tokens[mode].append(n)
            print(f"{mode:14s} {s:6.2f} s  {n} tokens  {n / s:7.0f} tokens/s", flush=True)
    med = {m: statistics.median(v) for m, v in seconds.items()}
    result = {"model": str(args.model), "prompts": args.prompts, "samples": args.samples,
              "max_new_tokens": args.max_new_tokens, "threads": args.threads, "repeats": args.repeats,
              **{f"{m}_s": round(med[m], 2) for m in MODES},
              **{f"{m}_tokens_per_s": round(statistics.median(n / s for n, s in zip(tokens[m], seconds[m])))
                 for m in MODES},
              **{f"{m}_speedup": round(med["multinomial"] / med[m], 2) for m in MODES[1:]}}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
