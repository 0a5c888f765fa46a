"""Batched Hugging Face ``generate`` for concurrent token-in/token-out requests.

verl's agent loops send one request per sample, all at once. Running them one
by one would leave the device idle, so requests that arrive together (until a
gap of ``arrival_gap_s`` without arrivals, at most ``batch_wait_s``) and share sampling
settings are left-padded into one batch, decoded by ``model_zoo.decode`` (``generate`` only
for a repetition penalty). While a batch runs, new requests queue up and form the next
batch. This module has no Ray or verl dependency, so it is unit-testable alone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Optional

import torch
from transformers import (
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from model_zoo.decode import decode, supports

logger = logging.getLogger(__name__)

# Requests of one burst (verl sends a whole batch at once) arrive well within this gap, where
# the agent loop has cores to itself (the CPU overrides allow more: there it shares two).
ARRIVAL_GAP_S = 0.01


@dataclass(frozen=True)
class SamplingKey:
    """Sampling settings a batch shares. Greedy decoding is ``temperature == 0``."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    repetition_penalty: float = 1.0

    @classmethod
    def from_params(cls, params: dict) -> "SamplingKey":
        """From verl/vLLM-style sampling params (``top_k=-1`` means no top-k)."""
        temperature = float(params.get("temperature", 1.0) or 0.0)
        repetition_penalty = float(params.get("repetition_penalty", 1.0) or 1.0)
        if temperature <= 0.0:
            return cls(0.0, 1.0, 0, repetition_penalty)
        top_k = int(params.get("top_k", -1) or 0)
        top_p = float(params.get("top_p", 1.0) or 1.0)
        return cls(temperature, min(top_p, 1.0), max(top_k, 0), repetition_penalty)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass
class Completion:
    token_ids: list[int]
    log_probs: Optional[list[float]]
    stop_reason: str  # "completed" or "aborted"


@dataclass
class _Request:
    prompt_ids: list[int]
    key: SamplingKey
    max_tokens: int
    want_log_probs: bool
    future: asyncio.Future


@dataclass
class EngineStats:
    generate_calls: int = 0
    requests: int = 0
    generated_tokens: int = 0
    batch_sizes: list[int] = field(default_factory=list)
    batch_seconds: list[float] = field(default_factory=list)  # each batch's decoding, wall time
    batch_samples: list[int] = field(default_factory=list)  # samples per prompt the batch was grouped by
    weight_syncs: int = 0


class _LogProbRecorder(LogitsProcessor):
    """Records log p(token) under ``softmax(logits / T)``, the quantity verl's actor computes.

    Placed first in the processor list, so it sees the raw logits; the sampled
    token of step t is only known at step t+1 (or after ``generate``), hence
    one step of ``[batch, vocab]`` log-probs is kept at a time.
    """

    def __init__(self, temperature: float) -> None:
        self.temperature = temperature
        self._prev: Optional[torch.Tensor] = None
        self._picked: list[torch.Tensor] = []

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prev is not None:
            self._pick(input_ids[:, -1])
        self._prev = torch.log_softmax(scores.float() / self.temperature, dim=-1)
        return scores

    def _pick(self, tokens: torch.Tensor) -> None:
        self._picked.append(self._prev.gather(-1, tokens[:, None].to(self._prev.device)).squeeze(-1))

    def finish(self, new_tokens: torch.Tensor) -> torch.Tensor:
        """``[batch, steps]`` log-probs of ``new_tokens`` (the generated part of the sequences)."""
        if self._prev is not None and len(self._picked) < new_tokens.shape[1]:
            self._pick(new_tokens[:, len(self._picked)])
        self._prev = None
        if not self._picked:
            return torch.zeros(new_tokens.shape[0], 0)
        return torch.stack(self._picked, dim=1)[:, : new_tokens.shape[1]].float().cpu()


class _AbortCriteria(StoppingCriteria):
    """Ends an in-flight ``generate`` when the server is told to abort."""

    def __init__(self, flag: threading.Event) -> None:
        self.flag = flag

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.BoolTensor:
        return torch.full((input_ids.shape[0],), self.flag.is_set(), dtype=torch.bool, device=input_ids.device)


def sample_groups(batch: list[_Request]) -> tuple[list[int], list[_Request], int]:
    """(row of each request in the decoded output, one request per prompt, samples per prompt).

    Where every prompt of the batch comes the same number n > 1 of times (verl sends
    ``rollout.n`` samples of each), the output holds n rows per prompt, the prompts in order of
    first arrival; else every request is its own row.
    """
    first: dict[tuple[int, ...], int] = {}
    members: list[list[int]] = []
    for i, request in enumerate(batch):
        group = first.setdefault(tuple(request.prompt_ids), len(members))
        if group == len(members):
            members.append([])
        members[group].append(i)
    samples = len(members[0])
    if samples < 2 or any(len(m) != samples for m in members):
        return list(range(len(batch))), batch, 1
    rows = [0] * len(batch)
    for g, member in enumerate(members):
        for j, i in enumerate(member):
            rows[i] = g * samples + j
    return rows, [batch[m[0]] for m in members], samples


class HFGenerateEngine:
    """Owns a causal LM and serves concurrent requests with batched ``generate`` calls."""

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        stop_token_ids: Iterable[int],
        pad_token_id: int,
        max_batch_size: int = 256,
        batch_wait_s: float = 0.05,
        arrival_gap_s: float = ARRIVAL_GAP_S,
        samples_per_prompt: int = 1,
    ) -> None:
        self.model = model.eval()
        # Sampling must follow the rollout config only: drop the checkpoint's own
        # defaults (e.g. top_k=20, repetition_penalty=1.05), which generate() would merge in.
        self.model.generation_config = GenerationConfig()
        self.stop_token_ids = sorted(set(int(t) for t in stop_token_ids))
        if not self.stop_token_ids:
            raise ValueError("at least one stop token id is required")
        self.pad_token_id = int(pad_token_id)
        self.max_batch_size = max(1, int(max_batch_size))
        self.batch_wait_s = max(0.0, float(batch_wait_s))
        self.arrival_gap_s = max(0.0, float(arrival_gap_s))
        self.samples_per_prompt = max(1, int(samples_per_prompt))  # rollout.n: a sampling burst's group size
        self.stats = EngineStats()

        self.model_lock = asyncio.Lock()  # generation and weight loading never overlap
        self._queue: list[_Request] = []
        self._has_work = asyncio.Event()
        self._gate = asyncio.Event()  # closed while requests are aborted
        self._gate.set()
        self._rejecting = False
        self._abort = threading.Event()
        self._loop_task: Optional[asyncio.Task] = None
        self._targets: dict[str, torch.Tensor] = {}
        self._updated: set[int] = set()
        self._unknown: list[str] = []

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # --- requests --------------------------------------------------------------------------
    async def generate(
        self, prompt_ids: list[int], key: SamplingKey, max_tokens: int, want_log_probs: bool = False
    ) -> Completion:
        if not self._gate.is_set():
            if self._rejecting:
                return Completion([], [] if want_log_probs else None, "aborted")
            await self._gate.wait()
        if max_tokens <= 0:
            return Completion([], [] if want_log_probs else None, "completed")
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Request(list(prompt_ids), key, int(max_tokens), want_log_probs, future))
        self._has_work.set()
        if self._loop_task is None or self._loop_task.done():
            self._loop_task = asyncio.create_task(self._serve())
        return await future

    async def _serve(self) -> None:
        while True:
            await self._has_work.wait()
            await self._collect()
            await self._gate.wait()
            batch = self._take_batch()
            if not self._queue:
                self._has_work.clear()
            if not batch:
                continue
            try:
                async with self.model_lock:
                    completions = await asyncio.to_thread(self._generate_batch, batch)
            except Exception as e:  # fail the callers, keep serving
                logger.exception("HF generate failed for a batch of %d", len(batch))
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(e)
                continue
            for request, completion in zip(batch, completions, strict=True):
                if not request.future.done():
                    request.future.set_result(completion)

    async def _collect(self) -> None:
        """Let concurrent callers join the batch: wait while requests keep arriving, or while a
        sampled prompt has fewer than ``samples_per_prompt`` requests, at most ``batch_wait_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.batch_wait_s
        gap = min(self.arrival_gap_s, self.batch_wait_s)
        while len(self._queue) < self.max_batch_size and loop.time() < deadline:
            seen = len(self._queue)
            await asyncio.sleep(gap)
            if len(self._queue) == seen and not self._awaiting_samples():
                break  # a quiet gap: the burst is over

    def _awaiting_samples(self) -> bool:
        """Whether the queue holds part of a group: some prompt sent more than once (a sampling
        burst, not a validation one) and some prompt fewer than ``samples_per_prompt`` times.
        A batch cut inside a group decodes that group's prompt twice and its samples apart."""
        if self.samples_per_prompt < 2 or len(self._queue) < 2:
            return False
        counts = Counter(tuple(r.prompt_ids) for r in self._queue).values()
        return max(counts) > 1 and min(counts) < self.samples_per_prompt

    def _take_batch(self) -> list[_Request]:
        """Oldest request's sampling settings, up to ``max_batch_size`` requests, FIFO."""
        self._queue = [r for r in self._queue if not r.future.done()]  # callers that gave up
        if not self._queue:
            return []
        key = self._queue[0].key
        batch, rest = [], []
        for request in self._queue:
            (batch if request.key == key and len(batch) < self.max_batch_size else rest).append(request)
        self._queue = rest
        return batch

    @torch.inference_mode()
    def _generate_batch(self, batch: list[_Request]) -> list[Completion]:
        started = time.perf_counter()
        key = batch[0].key
        device = self.device
        decoding = supports(key.repetition_penalty)
        # An RL batch holds n samples of each prompt: decoded with the prompt cached once per group.
        rows, prompts, samples = sample_groups(batch) if decoding else (list(range(len(batch))), batch, 1)
        width = max(len(r.prompt_ids) for r in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, request in enumerate(prompts):  # left padding: generation continues every row
            n = len(request.prompt_ids)
            if n:
                input_ids[i, width - n :] = torch.tensor(request.prompt_ids, dtype=torch.long)
                attention_mask[i, width - n :] = 1

        if decoding:
            decoded = decode(
                self.model, input_ids.to(device), attention_mask.to(device),
                max_new_tokens=max(r.max_tokens for r in batch), stop_token_ids=self.stop_token_ids,
                pad_token_id=self.pad_token_id, temperature=key.temperature, top_k=key.top_k, top_p=key.top_p,
                record_log_probs=any(r.want_log_probs for r in batch), should_stop=self._abort.is_set,
                samples=samples)
            new_tokens = decoded.tokens.cpu()[rows]
            log_probs = decoded.log_probs.cpu()[rows] if decoded.log_probs is not None else None
        else:
            new_tokens, log_probs = self._hf_generate(batch, key, input_ids.to(device), attention_mask.to(device))
        aborted = self._abort.is_set()

        self.stats.generate_calls += 1
        self.stats.requests += len(batch)
        self.stats.batch_sizes.append(len(batch))
        self.stats.batch_seconds.append(round(time.perf_counter() - started, 3))
        self.stats.batch_samples.append(samples)
        stops = set(self.stop_token_ids)
        completions = []
        for i, request in enumerate(batch):
            row = new_tokens[i].tolist()
            end = next((j + 1 for j, t in enumerate(row) if t in stops), None)
            finished = end is not None and end <= request.max_tokens
            n = min(end or len(row), request.max_tokens)
            self.stats.generated_tokens += n
            completions.append(
                Completion(
                    token_ids=row[:n],
                    log_probs=log_probs[i, :n].tolist() if request.want_log_probs else None,
                    stop_reason="aborted" if aborted and not finished and n < request.max_tokens else "completed",
                )
            )
        return completions

    def _hf_generate(self, batch: list[_Request], key: SamplingKey, input_ids: torch.Tensor,
                     attention_mask: torch.Tensor) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """``model.generate``, for options ``decode`` does not implement (a repetition penalty)."""
        processors = LogitsProcessorList()
        recorder = None
        if any(r.want_log_probs for r in batch):
            recorder = _LogProbRecorder(1.0 if key.greedy else key.temperature)
            processors.append(recorder)
        if not key.greedy:
            # Our own warpers, after the recorder, so the recorder sees raw logits.
            if key.temperature != 1.0:
                processors.append(TemperatureLogitsWarper(key.temperature))
            if key.top_k > 0:
                processors.append(TopKLogitsWarper(key.top_k))
            if key.top_p < 1.0:
                processors.append(TopPLogitsWarper(key.top_p))
        config = GenerationConfig(
            max_new_tokens=max(r.max_tokens for r in batch),
            do_sample=not key.greedy,
            temperature=1.0,
            top_k=0,
            top_p=1.0,
            repetition_penalty=key.repetition_penalty,
            num_beams=1,
            eos_token_id=self.stop_token_ids,
            pad_token_id=self.pad_token_id,
            use_cache=True,
        )
        sequences = self.model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            generation_config=config,
            logits_processor=processors,
            stopping_criteria=StoppingCriteriaList([_AbortCriteria(self._abort)]),
        )
        new_tokens = sequences[:, input_ids.shape[1]:].cpu()
        return new_tokens, recorder.finish(new_tokens) if recorder is not None else None

    # --- abort / resume --------------------------------------------------------------------
    async def abort_all(self, reject_requests: bool = False) -> None:
        """Stop the running batch early (partial outputs, ``stop_reason='aborted'``) and hold new ones."""
        self._gate.clear()
        self._rejecting = reject_requests
        self._abort.set()
        async with self.model_lock:  # wait for the in-flight generate to return
            pass
        if reject_requests:
            for request in self._queue:
                if not request.future.done():
                    request.future.set_result(Completion([], [] if request.want_log_probs else None, "aborted"))
            self._queue.clear()

    def resume(self) -> None:
        self._abort.clear()
        self._rejecting = False
        self._gate.set()

    # --- weights -------------------------------------------------------------------------------
    def begin_weight_update(self) -> None:
        self._updated = set()
        self._unknown = []
        self._targets = self.model.state_dict(keep_vars=True)

    def load_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Copy full tensors into the model (dtype/device converted); returns bytes loaded."""
        loaded = 0
        with torch.no_grad():
            for name, tensor in named_tensors:
                target = self._targets.get(name)
                if target is None:
                    self._unknown.append(name)
                    continue
                if tuple(target.shape) != tuple(tensor.shape):
                    raise ValueError(f"weight {name}: shape {tuple(tensor.shape)} != model {tuple(target.shape)}")
                target.data.copy_(tensor)
                self._updated.add(target.data_ptr())
                loaded += tensor.numel() * tensor.element_size()
        return loaded

    def finish_weight_update(self) -> None:
        """Fail loudly if the trainer sent names we do not know or left parameters stale."""
        missing = [n for n, p in self.model.named_parameters() if p.data_ptr() not in self._updated]
        unknown, self._unknown, self._targets = self._unknown, [], {}
        if unknown or missing:
            raise RuntimeError(
                f"weight sync mismatch: {len(unknown)} unknown names {unknown[:5]}, "
                f"{len(missing)} parameters not updated {missing[:5]}"
            )
        self.stats.weight_syncs += 1
