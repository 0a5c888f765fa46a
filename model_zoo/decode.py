"""A lean decoding loop for batched generation with small models on a CPU.

``model.generate`` with its default dynamic KV cache concatenates every layer's cache each
step (a copy of the whole cache per token), and runs a processor pipeline around each
forward; for a model of a few million parameters those, not the weights, set the cost.
``decode`` writes each step's keys and values into buffers sized for the whole response
(no copies), keeps the attention mask in a preallocated row, and samples in a few tensor ops.
It calls the model's own forward, so any causal LM whose forward takes ``past_key_values``,
``attention_mask`` and ``position_ids`` works; ``supports`` says when to fall back to
``generate`` (options this loop does not implement).

Sampling follows ``generate``'s warpers in its order: temperature, then top-k, then top-p,
and then draws from the resulting distribution by its inverse CDF (`sample_categorical`).
The log-probability recorded per token is log p(token) under ``softmax(logits / T)`` (T = 1
for greedy), the quantity verl's actor recomputes.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Iterable, Optional

import torch

from model_zoo.hf_compat import (SHARED_PROMPT_ATTENTION, preallocated_cache, shared_prompt_cache,
                                 shared_prompt_decoding, use_attention)


@dataclass
class Decoded:
    tokens: torch.Tensor  # [batch, steps] new tokens; after a row's stop token, the pad id
    log_probs: Optional[torch.Tensor]  # [batch, steps] float32, when asked for
    aborted: bool  # ``should_stop`` ended the loop early


def supports(repetition_penalty: float = 1.0) -> bool:
    """Whether ``decode`` implements these options (else use ``model.generate``)."""
    return float(repetition_penalty) == 1.0


def _pick(scores: torch.Tensor, temperature: float, top_k: int, top_p: float,
          generator: Optional[torch.Generator]) -> torch.Tensor:
    if temperature <= 0.0:
        return scores.argmax(-1)
    scores = scores / temperature
    if 0 < top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        ordered, order = scores.sort(-1, descending=True)
        cumulative = ordered.softmax(-1).cumsum(-1)
        drop = cumulative - ordered.softmax(-1) > top_p  # keep the smallest set reaching top_p
        scores = scores.scatter(-1, order, ordered.masked_fill(drop, float("-inf")))
    return sample_categorical(scores.softmax(-1), generator)


def sample_categorical(probs: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """One draw per row of ``probs`` [batch, vocab] (rows may sum to 1 only up to rounding), by
    inverse CDF: one uniform per row and a binary search of the row's running sum.

    ``torch.multinomial`` draws an exponential variate for every vocabulary entry (its
    exponential race), a third of a CPU rollout's decoding by the profiler; without it the
    decoding is 1.19x faster (`benchmarks/bench_group_sampling.py`). Same distribution,
    another random stream. A token of probability 0 (cut by top-k or top-p) adds no width to
    the running sum, so the search never lands on it.
    """
    cdf = probs.cumsum(-1)
    total = cdf[:, -1:]
    draw = torch.rand(total.shape, generator=generator, device=probs.device, dtype=cdf.dtype) * total
    return torch.searchsorted(cdf, draw, right=True).clamp_(max=probs.shape[-1] - 1).squeeze(-1)


@torch.inference_mode()
def decode(
    model: torch.nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    *,
    max_new_tokens: int,
    stop_token_ids: Iterable[int],
    pad_token_id: int,
    temperature: float = 0.0,
    top_k: int = 0,
    top_p: float = 1.0,
    record_log_probs: bool = False,
    should_stop: Callable[[], bool] | None = None,
    generator: Optional[torch.Generator] = None,
    samples: int = 1,
) -> Decoded:
    """Generate up to ``max_new_tokens`` per row of a left-padded batch; rows end at a stop token.

    ``samples`` > 1: each prompt row gets that many continuations, rows ``i * samples ..
    (i + 1) * samples - 1`` of the output (an RL group). Where the model allows it
    (`hf_compat.shared_prompt_decoding`) a group's prompt is run and cached once and read once
    per step for all its samples; else the prompts are repeated, with the same result.
    """
    samples = max(1, int(samples))
    if samples > 1 and not shared_prompt_decoding(model):
        input_ids, attention_mask = input_ids.repeat_interleave(samples, 0), attention_mask.repeat_interleave(samples, 0)
        samples = 1
    shared = samples > 1
    device = input_ids.device
    width = input_ids.shape[1]
    total = width + max_new_tokens
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    next_position = positions[:, -1:] + 1
    stops = torch.tensor(sorted(set(int(t) for t in stop_token_ids)), device=device)
    cache = preallocated_cache(model.config, width if shared else total)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=positions,
                   past_key_values=cache, use_cache=True, logits_to_keep=1).logits[:, -1].float()
    if shared:
        logits, next_position = logits.repeat_interleave(samples, 0), next_position.repeat_interleave(samples, 0)
        cache = shared_prompt_cache(cache, samples, max_new_tokens, attention_mask)
        mask = None  # the prompts' padding is in the cache; generated tokens have none
    else:
        mask = torch.zeros((input_ids.shape[0], total), dtype=attention_mask.dtype, device=device)
        mask[:, :width] = attention_mask
    batch = logits.shape[0]

    out = torch.full((batch, max_new_tokens), int(pad_token_id), dtype=torch.long, device=device)
    log_probs = torch.zeros((batch, max_new_tokens), dtype=torch.float32, device=device) if record_log_probs else None
    rows = torch.arange(batch, device=device)  # the rows still in the cache, as indices into the batch
    done = torch.zeros(batch, dtype=torch.bool, device=device)  # per cached row: it wrote its stop token
    aborted, steps = False, 0
    with use_attention(model, SHARED_PROMPT_ATTENTION) if shared else nullcontext():
        for step in range(max_new_tokens):
            token = _pick(logits, temperature, top_k, top_p, generator)
            if log_probs is not None:
                scale = temperature if temperature > 0 else 1.0
                log_probs[rows, step] = torch.log_softmax(logits / scale, -1).gather(-1, token[:, None]).squeeze(-1)
            token = token.masked_fill(done, int(pad_token_id))  # finished rows idle on pads until dropped
            out[rows, step] = token
            steps = step + 1
            done |= torch.isin(token, stops)
            if bool(done.all()) or step + 1 == max_new_tokens:
                break
            if should_stop is not None and should_stop():
                aborted = True
                break
            # a group leaves the cache as a whole, when all its samples are done
            unit_done = done.view(-1, samples).all(-1)
            if 2 * int((~unit_done).sum()) <= len(unit_done):
                # Half the rows (groups) are done: drop them, so the rest stop paying for their
                # cache and compute (one copy of the cache, at most log2(batch) times).
                keep = ((~unit_done).nonzero() * samples + torch.arange(samples, device=device)).flatten()
                rows, token, next_position, done = rows[keep], token[keep], next_position[keep], done[keep]
                mask = mask[keep] if mask is not None else None
                cache.batch_select_indices(keep)
            if shared:
                logits = model(input_ids=token[:, None], position_ids=next_position, past_key_values=cache,
                               use_cache=True, **cache.attention_kwargs).logits[:, -1].float()
            else:
                mask[:, width + step] = 1
                logits = model(input_ids=token[:, None], attention_mask=mask[:, : width + step + 1],
                               position_ids=next_position, past_key_values=cache, use_cache=True).logits[:, -1].float()
            next_position = next_position + 1
    return Decoded(out[:, :steps], log_probs[:, :steps] if log_probs is not None else None, aborted)

