"""model_zoo.decode: the lean decoding loop gives what ``model.generate`` gives, faster."""

from __future__ import annotations

import pytest
import torch

from model_zoo.decode import decode, supports
from model_zoo.hf_compat import preallocated_cache


@pytest.fixture(scope="module")
def tiny():
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from model_zoo import resolve_model

    path = resolve_model("tiny")
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    from transformers import AutoConfig

    # Random weights of a wide spread, so that rows write different tokens and stop at different steps.
    config = AutoConfig.from_pretrained(path)
    config.initializer_range = 1.0
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32).eval()
    model.generation_config = GenerationConfig()
    return model, tokenizer


def batch_of(tokenizer, n=6):
    texts = [f"query {i}: " + "cheap hotel near the louvre " * (1 + i % 3) for i in range(n)]
    ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
    return tokenizer.pad({"input_ids": ids}, return_tensors="pt")


def hf_greedy(model, batch, max_new, stop_ids, pad):
    with torch.inference_mode():
        seqs = model.generate(**batch, max_new_tokens=max_new, do_sample=False, eos_token_id=stop_ids,
                              pad_token_id=pad)
    return seqs[:, batch["input_ids"].shape[1]:]


@pytest.mark.parametrize("cache", ["preallocated", "dynamic"])
def test_greedy_tokens_equal_generate_with_rows_stopping_at_different_steps(tiny, cache, monkeypatch):
    """Both caches the loop uses: its own, and transformers' dynamic one (other transformers
    versions, sliding-window models), rows dropped mid-batch in each."""
    if cache == "dynamic":
        from transformers import DynamicCache

        import model_zoo.decode

        monkeypatch.setattr(model_zoo.decode, "preallocated_cache", lambda config, capacity: DynamicCache())
    model, tokenizer = tiny
    batch = batch_of(tokenizer)
    free = hf_greedy(model, batch, 24, [0], tokenizer.pad_token_id)  # a stop id these rows never pick
    # Stop at tokens three rows write at different steps, so rows end at different steps and the
    # loop drops finished rows from its cache mid-way.
    stops = sorted({int(free[row, 2 + 3 * row]) for row in range(3)})
    expected = hf_greedy(model, batch, 24, stops, tokenizer.pad_token_id)
    got = decode(model, batch["input_ids"], batch["attention_mask"], max_new_tokens=24, stop_token_ids=stops,
                 pad_token_id=tokenizer.pad_token_id)
    hit = torch.isin(got.tokens, torch.tensor(stops))
    ends = [row.nonzero()[0].item() + 1 if row.any() else got.tokens.shape[1] for row in hit]
    assert len(set(ends)) > 1 and sorted(ends)[len(ends) // 2 - 1] < max(ends), "rows must stop apart"
    for row, end in enumerate(ends):  # up to its stop token a row equals generate's; after it, pads
        assert got.tokens[row, :end].tolist() == expected[row, :end].tolist()
        assert (got.tokens[row, end:] == tokenizer.pad_token_id).all()
    assert not got.aborted


def test_recorded_log_probs_equal_a_teacher_forced_forward(tiny):
    model, tokenizer = tiny
    batch = batch_of(tokenizer, 3)
    torch.manual_seed(1)
    got = decode(model, batch["input_ids"], batch["attention_mask"], max_new_tokens=10, stop_token_ids=[0],
                 pad_token_id=tokenizer.pad_token_id, temperature=0.7, record_log_probs=True)
    full = torch.cat([batch["input_ids"], got.tokens], 1)
    mask = torch.cat([batch["attention_mask"], torch.ones_like(got.tokens)], 1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = model(input_ids=full, attention_mask=mask, position_ids=positions).logits.float()
    width = batch["input_ids"].shape[1]
    expected = torch.log_softmax(logits[:, width - 1:-1] / 0.7, -1).gather(-1, got.tokens[..., None]).squeeze(-1)
    torch.testing.assert_close(got.log_probs, expected, atol=1e-4, rtol=1e-4)


def test_top_k_one_samples_the_argmax_and_should_stop_aborts(tiny):
    model, tokenizer = tiny
    batch = batch_of(tokenizer, 4)
    greedy = decode(model, batch["input_ids"], batch["attention_mask"], max_new_tokens=8, stop_token_ids=[0],
                    pad_token_id=tokenizer.pad_token_id)
    top1 = decode(model, batch["input_ids"], batch["attention_mask"], max_new_tokens=8, stop_token_ids=[0],
                  pad_token_id=tokenizer.pad_token_id, temperature=1.0, top_k=1)
    assert torch.equal(greedy.tokens, top1.tokens)
    calls = []
    stopped = decode(model, batch["input_ids"], batch["attention_mask"], max_new_tokens=8, stop_token_ids=[0],
                     pad_token_id=tokenizer.pad_token_id, should_stop=lambda: len(calls) > 2 or calls.append(1))
    assert stopped.aborted and stopped.tokens.shape[1] == 4


def test_cache_refuses_to_overflow_and_repetition_penalty_falls_back(tiny):
    model, _ = tiny
    cache = preallocated_cache(model.config, 4)
    ids = torch.ones((1, 5), dtype=torch.long)
    with pytest.raises(RuntimeError, match="capacity"):
        model(input_ids=ids, past_key_values=cache)
    assert supports(1.0) and not supports(1.1)
