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


def test_sampling_draws_each_row_from_its_distribution_and_never_a_cut_token():
    from model_zoo.decode import sample_categorical

    probs = torch.tensor([[0.7, 0.2, 0.1, 0.0, 0.0],
                          [0.0, 0.0, 0.0, 0.0, 1.0],
                          [0.25, 0.0, 0.25, 0.25, 0.25]])
    probs[0] *= 0.999999  # a row that sums to 1 only up to rounding
    draws = 20000
    rows = probs.repeat_interleave(draws, 0)
    got = sample_categorical(rows, torch.Generator().manual_seed(0)).view(3, draws)
    freq = torch.stack([torch.bincount(r, minlength=5) for r in got]).float() / draws
    assert (freq[probs == 0] == 0).all()  # a token cut by top-k / top-p is never drawn
    torch.testing.assert_close(freq, probs / probs.sum(-1, keepdim=True), atol=0.012, rtol=0)
    again = sample_categorical(rows, torch.Generator().manual_seed(0)).view(3, draws)
    assert torch.equal(got, again)  # seeded: the same draws


def _llama(vocab_size: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, initializer_range=1.0)
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize("family", ["qwen2", "llama"])
def test_samples_of_a_shared_prompt_equal_the_repeated_prompts(tiny, family):
    """Greedy continuations of a prompt cached once per group are those of the prompt repeated:
    the same tokens, the same log-probs up to float rounding, groups finishing at different steps."""
    from model_zoo.hf_compat import shared_prompt_decoding

    model, tokenizer = tiny
    if family == "llama":
        model = _llama(model.config.vocab_size)
    assert shared_prompt_decoding(model)
    batch = batch_of(tokenizer, 4)
    ids, mask = batch["input_ids"], batch["attention_mask"]
    free = decode(model, ids, mask, max_new_tokens=16, stop_token_ids=[-1], pad_token_id=0).tokens
    stops = sorted({int(free[g, 1 + 4 * g]) for g in range(3)})  # groups stop at different steps
    kwargs = dict(max_new_tokens=16, stop_token_ids=stops, pad_token_id=0, record_log_probs=True)
    shared = decode(model, ids, mask, samples=3, **kwargs)
    repeated = decode(model, ids.repeat_interleave(3, 0), mask.repeat_interleave(3, 0), **kwargs)
    assert torch.equal(shared.tokens, repeated.tokens)
    torch.testing.assert_close(shared.log_probs, repeated.log_probs, atol=1e-4, rtol=1e-4)
    stopped = torch.isin(shared.tokens, torch.tensor(stops))
    ends = {int(r.nonzero()[0]) if r.any() else None for r in stopped}
    assert len(ends) > 2, "groups must finish at different steps (the cache drops them)"
    assert model.config._attn_implementation != "grm_shared_prompt"  # restored after decoding


def test_sampled_continuations_of_a_shared_prompt_have_the_models_log_probs(tiny):
    """Sampled samples of one prompt differ, stop apart, and each token's recorded log-prob is the
    teacher-forced forward's: the shared attention reads each row's own generated tokens."""
    model, tokenizer = tiny
    batch = batch_of(tokenizer, 2)
    got = decode(model, batch["input_ids"], batch["attention_mask"], max_new_tokens=12, stop_token_ids=[0, 1, 2],
                 pad_token_id=tokenizer.pad_token_id, temperature=1.0, record_log_probs=True, samples=4,
                 generator=torch.Generator().manual_seed(3))
    assert got.tokens.shape[0] == 8 and len({tuple(r) for r in got.tokens.tolist()}) > 2
    ids, mask = batch["input_ids"].repeat_interleave(4, 0), batch["attention_mask"].repeat_interleave(4, 0)
    full = torch.cat([ids, got.tokens], 1)
    positions = (torch.cat([mask, torch.ones_like(got.tokens)], 1).cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        logits = model(input_ids=full, attention_mask=torch.cat([mask, torch.ones_like(got.tokens)], 1),
                       position_ids=positions).logits.float()
    width = ids.shape[1]
    expected = torch.log_softmax(logits[:, width - 1:-1], -1).gather(-1, got.tokens[..., None]).squeeze(-1)
    written = torch.cumsum(torch.isin(got.tokens, torch.tensor([0, 1, 2])), 1) - torch.isin(
        got.tokens, torch.tensor([0, 1, 2])).long() == 0  # up to and including each row's stop token
    torch.testing.assert_close(got.log_probs[written], expected[written], atol=1e-4, rtol=1e-4)


def test_samples_fall_back_to_repeated_prompts_where_the_cache_cannot_be_shared(tiny, monkeypatch):
    import copy

    import model_zoo.decode
    from model_zoo.hf_compat import shared_prompt_decoding

    model, tokenizer = tiny
    assert not shared_prompt_decoding(copy.deepcopy(model).to(torch.bfloat16))  # half precision: SDPA's softmax
    batch = batch_of(tokenizer, 3)
    kwargs = dict(max_new_tokens=10, stop_token_ids=[0], pad_token_id=tokenizer.pad_token_id, samples=2)
    shared = decode(model, batch["input_ids"], batch["attention_mask"], **kwargs)
    monkeypatch.setattr(model_zoo.decode, "shared_prompt_decoding", lambda model: False)
    repeated = decode(model, batch["input_ids"], batch["attention_mask"], **kwargs)
    assert torch.equal(shared.tokens, repeated.tokens) and shared.tokens.shape[0] == 6
