"""The one place that reaches into transformers internals (its KV-cache classes), version-guarded.

``preallocated_cache`` gives a cache whose layers write into buffers sized once for the
whole sequence and hand attention a view of the filled part: no per-step concatenation
(``DynamicLayer``) and no attention over empty slots (``StaticLayer``). Written against the
layered ``Cache`` API of transformers 5; other versions, and models with sliding-window layers,
get transformers' own ``DynamicCache``. Either drops batch rows in place with
``batch_select_indices`` (public ``Cache`` API).
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
