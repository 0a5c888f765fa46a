"""The one place that reaches into transformers internals (its KV-cache classes), version-guarded.

``preallocated_cache`` gives a cache whose layers write into buffers sized once for the
whole sequence and hand attention a view of the filled part: no per-step concatenation
(``DynamicLayer``) and no attention over empty slots (``StaticLayer``). Written against the
layered ``Cache`` API of transformers 5; other versions, and models with sliding-window layers,
get transformers' own ``DynamicCache``. Either drops batch rows in place with
``batch_select_indices`` (public ``Cache`` API).

``shared_prompt_cache`` serves several samples of each prompt (an RL group): the prompt's keys
and values are kept once per group and only the generated tokens' per sample, and the
attention registered as ``SHARED_PROMPT_ATTENTION`` (transformers' ``AttentionInterface``) reads
each group's prompt once for all its samples. On a CPU a decode step is bound by reading the
cache, most of which is the prompt; ``shared_prompt_decoding`` says where it applies.
"""

from __future__ import annotations

from typing import Any

import torch
import transformers
from transformers import DynamicCache

_MAJOR = int(transformers.__version__.split(".")[0])

if _MAJOR >= 5:
    from transformers.cache_utils import Cache, DynamicLayer

    class PreallocatedLayer(DynamicLayer):
        """A dynamic layer backed by ``[batch, heads, capacity, head_dim]`` buffers."""

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity = int(capacity)
            self.length = 0

        def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
            batch, heads, _, _ = key_states.shape
            self.dtype, self.device = key_states.dtype, key_states.device
            self._k = key_states.new_zeros((batch, heads, self.capacity, key_states.shape[-1]))
            self._v = value_states.new_zeros((batch, heads, self.capacity, value_states.shape[-1]))
            self.keys, self.values = self._k[:, :, :0], self._v[:, :, :0]
            self.is_initialized = True

        def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self.capacity:
                raise RuntimeError(f"KV cache full: {end} positions > capacity {self.capacity}")
            self._k[:, :, self.length:end] = key_states
            self._v[:, :, self.length:end] = value_states
            self.length = end
            self.keys, self.values = self._k[:, :, :end], self._v[:, :, :end]
            return self.keys, self.values

        def get_seq_length(self) -> int:
            return self.length

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            if self.is_initialized:
                self._k, self._v = self._k[indices], self._v[indices]
                self.keys, self.values = self._k[:, :, :self.length], self._v[:, :, :self.length]


def preallocated_cache(config: Any, capacity: int) -> Any:
    """A cache for sequences of up to ``capacity`` positions (transformers' dynamic cache where the
    preallocated one does not apply)."""
    if _MAJOR < 5:
        return DynamicCache()
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    layers = getattr(text, "num_hidden_layers", None)
    if not layers or getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", False):
        return DynamicCache(config=config)  # sliding-window layers need their own cache class
    return Cache(layers=[PreallocatedLayer(capacity) for _ in range(int(layers))])


SHARED_PROMPT_ATTENTION = "grm_shared_prompt"


def shared_prompt_decoding(model: Any) -> bool:
    """Whether ``model`` can decode with `shared_prompt_cache` (transformers 5, attention through
    ``AttentionInterface``, no sliding-window layers, float32 weights: its softmax runs in the
    weights' dtype, where SDPA's runs in float32 for half-precision inputs too)."""
    if _MAJOR < 5 or getattr(model, "dtype", None) != torch.float32:
        return False
    config = model.config
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if getattr(text, "sliding_window", None) and getattr(text, "use_sliding_window", False):
        return False
    return getattr(text, "model_type", None) in _SHARED_PROMPT_MODELS and hasattr(config, "_attn_implementation")


# Model families whose attention calls ``AttentionInterface`` with the module's ``layer_idx``
# and passes the forward's keyword arguments through (checked by tests/test_decode.py).
_SHARED_PROMPT_MODELS = {"qwen2", "llama"}

if _MAJOR >= 5:
    from transformers import AttentionInterface

    class SharedPromptLayer(PreallocatedLayer):
        """A group's prompt keys and values once ``[groups, heads, prompt, head_dim]`` with their
        padding bias ``[groups, 1, 1, prompt]``, and each sample's generated ones in the
        preallocated buffers ``[groups * samples, heads, capacity, head_dim]``."""

        def __init__(self, prompt_keys: torch.Tensor, prompt_values: torch.Tensor, prompt_bias: torch.Tensor,
                     samples: int, capacity: int):
            super().__init__(capacity)
            self.prompt_keys, self.prompt_values, self.prompt_bias = prompt_keys, prompt_values, prompt_bias
            self.samples = int(samples)
            rows = prompt_keys.shape[0] * self.samples
            self.lazy_initialization(prompt_keys[:1].expand(rows, -1, -1, -1), prompt_values[:1].expand(rows, -1, -1, -1))

        # update (inherited) writes and returns the generated part; the attention adds the prompt's

        def get_seq_length(self) -> int:
            return self.prompt_keys.shape[-2] + self.length

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            """Keep the rows ``indices``: whole groups, in order (``decode`` drops finished groups)."""
            super().batch_select_indices(indices)
            groups = indices[:: self.samples] // self.samples
            self.prompt_keys, self.prompt_values = self.prompt_keys[groups], self.prompt_values[groups]
            self.prompt_bias = self.prompt_bias[groups]

    def _shared_prompt_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0,
                                 shared_prompt=None, **kwargs):
        """One decode step's attention [rows, 1, heads, head_dim] over each group's prompt (read once
        for its samples) and each row's generated tokens: two matmuls each, one softmax across both."""
        if shared_prompt is None or query.shape[-2] != 1:
            raise RuntimeError("shared-prompt attention serves one-token decode steps of a shared_prompt_cache")
        layer = shared_prompt.layers[module.layer_idx]
        rows, heads, _, head_dim = query.shape
        groups, kv_heads, _, _ = layer.prompt_keys.shape
        samples, rep = rows // groups, heads // kv_heads
        scaling = head_dim ** -0.5 if scaling is None else scaling
        # query heads of one kv head side by side: [groups, kv, rep * samples, d] against the prompt
        q = query.reshape(groups, samples, kv_heads, rep, head_dim).permute(0, 2, 3, 1, 4)
        prompt_scores = torch.matmul(q.reshape(groups, kv_heads, rep * samples, head_dim),
                                     layer.prompt_keys.transpose(-1, -2)).mul_(scaling).add_(layer.prompt_bias)
        # [rows, kv, rep, t] against each row's own generated tokens
        own_scores = torch.matmul(query.reshape(rows, kv_heads, rep, head_dim), key.transpose(-1, -2)).mul_(scaling)
        own_max = own_scores.amax(-1).view(groups, samples, kv_heads, rep).permute(0, 2, 3, 1)
        top = torch.maximum(prompt_scores.amax(-1).view(groups, kv_heads, rep, samples), own_max)
        prompt_w = prompt_scores.sub_(top.reshape(groups, kv_heads, rep * samples, 1)).exp_()
        own_top = top.permute(0, 3, 1, 2).reshape(rows, kv_heads, rep, 1)
        own_w = own_scores.sub_(own_top).exp_()
        total = (prompt_w.sum(-1).view(groups, kv_heads, rep, samples).permute(0, 3, 1, 2).reshape(rows, kv_heads, rep)
                 + own_w.sum(-1))
        out = torch.matmul(own_w, value)  # [rows, kv, rep, d]
        from_prompt = torch.matmul(prompt_w, layer.prompt_values).view(groups, kv_heads, rep, samples, head_dim)
        out += from_prompt.permute(0, 3, 1, 2, 4).reshape(rows, kv_heads, rep, head_dim)
        out /= total.unsqueeze(-1)
        return out.reshape(rows, 1, heads, head_dim), None

    AttentionInterface.register(SHARED_PROMPT_ATTENTION, _shared_prompt_attention)


def shared_prompt_cache(prefilled: Any, samples: int, capacity: int, prompt_mask: torch.Tensor) -> Any:
    """A cache for ``samples`` continuations of each prompt of ``prefilled`` (a `preallocated_cache`
    after the prompts' forward pass; ``prompt_mask`` [groups, width] their attention mask), with
    room for ``capacity`` generated tokens. Call the model with ``**cache.attention_kwargs``
    inside `use_attention`."""
    bias = torch.zeros(prompt_mask.shape, dtype=prefilled.layers[0].keys.dtype, device=prompt_mask.device)
    bias = bias.masked_fill_(~prompt_mask.bool(), float("-inf"))[:, None, None, :]
    cache = Cache(layers=[SharedPromptLayer(layer.keys, layer.values, bias, samples, capacity)
                          for layer in prefilled.layers])
    cache.attention_kwargs = {"shared_prompt": cache}
    return cache


class use_attention:
    """Within the block, ``model`` computes attention with the registered implementation ``name``."""

    def __init__(self, model: Any, name: str):
        self.model, self.name = model, name

    def __enter__(self):
        self.before = self.model.config._attn_implementation
        self.model.config._attn_implementation = self.name
        return self.model

    def __exit__(self, *exc) -> None:
        self.model.config._attn_implementation = self.before
