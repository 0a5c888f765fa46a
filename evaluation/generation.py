"""Batched generation behind one interface: vLLM on a GPU, Hugging Face `generate` otherwise.

Both backends receive the same token ids (the chat template is rendered once,
here, with ``add_generation_prompt=True``) and decode the new tokens with
``skip_special_tokens=True``, as verl's reward manager does, so a response is
scored on the same text it would be scored on in training.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Any, Sequence

BACKENDS = ("auto", "hf", "vllm")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class SamplingConfig:
    max_new_tokens: int = 1024
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    seed: int = 0


@dataclass
class Generation:
    text: str
    num_tokens: int  # generated tokens, the stop token included
    truncated: bool  # stopped by max_new_tokens rather than a stop token
    # Mean log-probability of the generated tokens (greedy HF and vLLM; None when sampling with HF):
    # what ranks two responses with the same label.
    logprob: float | None = None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def resolve_device(device: str = "auto") -> str:
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    if device == "auto":
        return "cuda" if cuda_available() else "cpu"
    if device == "cuda" and not cuda_available():
        raise RuntimeError("device 'cuda' was asked for, but torch sees no GPU")
    return device


def resolve_backend(backend: str = "auto", device: str = "auto") -> tuple[str, str]:
    """(backend, device): vLLM only when it is installed and the device is a GPU."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    device = resolve_device(device)
    if backend == "auto":
        backend = "vllm" if device == "cuda" and vllm_installed() else "hf"
    if backend == "vllm":
        if not vllm_installed():
            raise RuntimeError("backend 'vllm' was asked for, but vllm is not installed")
        if device != "cuda":
            raise RuntimeError("backend 'vllm' needs a GPU (device cuda)")
    return backend, device


def load_tokenizer(model_path: str):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    tok.padding_side = "left"  # decoder-only batching: prompts end where generation starts
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def render_prompts(tokenizer, conversations: Sequence[Sequence[dict]]) -> list[list[int]]:
    """Token ids of each chat, rendered by the tokenizer's own template."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; evaluation renders prompts with it")
    texts = [tokenizer.apply_chat_template(list(conv), tokenize=False, add_generation_prompt=True)
             for conv in conversations]
    # The template already holds any BOS it wants: add no special tokens again.
    return tokenizer(texts, add_special_tokens=False)["input_ids"]


class HFGenerator:
    """``model_zoo.decode`` in length-sorted batches (less padding), greedy unless temperature > 0."""

    backend = "hf"

    def __init__(self, model_path: str, device: str = "cpu", batch_size: int = 16):
        import torch
        from transformers import AutoModelForCausalLM

        from model_zoo.stop_tokens import stop_token_ids

        self.model_path, self.device, self.batch_size = str(model_path), device, max(1, batch_size)
        self.tokenizer = load_tokenizer(self.model_path)
        dtype = torch.bfloat16 if device == "cuda" else torch.float32  # CPU bf16 matmuls are slow
        self.model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=dtype).to(device)
        self.model.eval()
        # the training rollout's stop rule (verl_backend.hf_server), so evaluation stops where training did
        self.stop_ids = set(stop_token_ids(self.tokenizer, self.model.config, self.model.generation_config))

    def generate(self, prompt_ids: Sequence[Sequence[int]], cfg: SamplingConfig,
                 progress: bool = True, samples: int = 1) -> list[Generation]:
        """Generations of each prompt, in order; with ``samples`` k, k of each (prompt i's at
        ``i * k .. i * k + k - 1``), decoded from the prompt cached once (`model_zoo.decode`)."""
        import torch
        from tqdm.auto import tqdm

        from model_zoo.decode import decode

        samples = max(1, int(samples))
        order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
        out: list[Generation | None] = [None] * (len(prompt_ids) * samples)
        sampling = cfg.temperature > 0
        generator = torch.Generator(self.device).manual_seed(cfg.seed) if sampling else None
        pad = self.tokenizer.pad_token_id
        per_batch = max(1, self.batch_size // samples)  # the same rows per decode call
        bar = tqdm(total=len(out), desc="generate", unit="pair", disable=not progress)
        for start in range(0, len(order), per_batch):
            idx = order[start:start + per_batch]
            batch = self.tokenizer.pad({"input_ids": [list(prompt_ids[i]) for i in idx]},
                                       return_tensors="pt").to(self.device)
            decoded = decode(self.model, batch["input_ids"], batch["attention_mask"],
                             max_new_tokens=cfg.max_new_tokens, stop_token_ids=self.stop_ids, pad_token_id=pad,
                             temperature=cfg.temperature, top_p=cfg.top_p, record_log_probs=not sampling,
                             generator=generator, samples=samples)
            new = decoded.tokens.tolist()
            steps = decoded.log_probs.tolist() if decoded.log_probs is not None else None
            for row, tokens in enumerate(new):
                i, j = idx[row // samples], row % samples
                out[i * samples + j] = self._finish(tokens, cfg.max_new_tokens, steps[row] if steps else None)
            bar.update(len(new))
        bar.close()
        return out  # type: ignore[return-value]

    def _finish(self, tokens: list[int], max_new_tokens: int, step_logprobs: list[float] | None = None
                ) -> Generation:
        stop = next((k for k, t in enumerate(tokens) if t in self.stop_ids), None)
        kept = tokens if stop is None else tokens[:stop + 1]
        text = self.tokenizer.decode(kept, skip_special_tokens=True)
        logprob = None
        if step_logprobs and kept:  # steps after this row's stop are padding: left out
            own = step_logprobs[:len(kept)]
            logprob = sum(own) / len(own)
        return Generation(text, len(kept), stop is None and len(kept) >= max_new_tokens, logprob)


class VLLMGenerator:
    """vLLM offline engine; it schedules the batches itself (continuous batching)."""

    backend = "vllm"

    def __init__(self, model_path: str, device: str = "cuda", batch_size: int = 16,
                 gpu_memory_utilization: float = 0.85, max_model_len: int | None = None):
        from vllm import LLM

        self.model_path, self.device, self.batch_size = str(model_path), device, batch_size
        self.tokenizer = load_tokenizer(self.model_path)
        kwargs: dict[str, Any] = {"model": self.model_path, "dtype": "bfloat16",
                                  "gpu_memory_utilization": gpu_memory_utilization}
        if max_model_len:
            kwargs["max_model_len"] = max_model_len
        self.llm = LLM(**kwargs)

    def generate(self, prompt_ids: Sequence[Sequence[int]], cfg: SamplingConfig,
                 progress: bool = True, samples: int = 1) -> list[Generation]:
        """As `HFGenerator.generate` (``samples``: vLLM's ``n``, its prefix cache shares the prompt)."""
        from vllm import SamplingParams

        params = SamplingParams(max_tokens=cfg.max_new_tokens, temperature=cfg.temperature,
                                top_p=cfg.top_p if cfg.temperature > 0 else 1.0, seed=cfg.seed, n=max(1, samples),
                                skip_special_tokens=True, logprobs=0)  # 0: the chosen tokens' only
        prompts = [{"prompt_token_ids": list(ids)} for ids in prompt_ids]
        results = self.llm.generate(prompts, params, use_tqdm=progress)
        return [Generation(o.text, len(o.token_ids), o.finish_reason == "length",
                           o.cumulative_logprob / len(o.token_ids)
                           if o.cumulative_logprob is not None and o.token_ids else None)
                for r in results for o in r.outputs]


def load_generator(model_path: str, backend: str = "auto", device: str = "auto",
                   batch_size: int = 16, **vllm_kwargs):
    """A ready generator and the seconds it took to load."""
    backend, device = resolve_backend(backend, device)
    start = time.perf_counter()
    if backend == "vllm":
        gen = VLLMGenerator(model_path, device, batch_size, **vllm_kwargs)
    else:
        gen = HFGenerator(model_path, device, batch_size)
    gen.load_seconds = time.perf_counter() - start
    return gen


__all__ = [
    "BACKENDS", "DEVICES", "Generation", "HFGenerator", "SamplingConfig", "VLLMGenerator",
    "load_generator", "load_tokenizer", "render_prompts", "resolve_backend", "resolve_device",
]
