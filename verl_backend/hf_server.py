"""The ``hf`` rollout server: a Ray actor with the interface verl expects of a rollout server.

verl's ``LLMServerClient`` calls ``generate(prompt_ids, sampling_params, request_id, ...)``
and gets a ``TokenOutput``; the replica and the trainer call ``sleep``/``wake_up``,
``abort_all_requests``/``resume_generation`` and the KV-cache hooks. Weights arrive
from ``HFServerAdapter`` in buckets (``begin_weight_update``, ``load_weights``,
``finish_weight_update``) after every training step.

Engine knobs, under ``actor_rollout_ref.rollout.engine_kwargs.hf`` (all optional):
``max_batch_size`` (default ``rollout.max_num_seqs``), ``batch_wait_ms`` (50: longest wait
for a batch to fill), ``arrival_gap_ms`` (10: a batch closes after this long without a new request),
``num_threads`` (CPU only; default: all CPUs of the process).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional

import torch
from verl.utils.config import omega_conf_to_dataclass
from verl.utils.device import get_device_name
from verl.utils.torch_dtypes import PrecisionType
from verl.workers.config import HFModelConfig, RolloutConfig
from verl.workers.rollout.replica import RolloutMode, TokenOutput

from model_zoo.stop_tokens import stop_token_ids
from verl_backend.hf_engine import ARRIVAL_GAP_S, HFGenerateEngine, SamplingKey

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))


def server_actor_name(replica_rank: int, is_reward_model: bool = False, is_teacher_model: bool = False,
                      name_suffix: str = "") -> str:
    """Ray actor name of a replica's server; the weight-sync adapter finds it by this name."""
    role = "reward_" if is_reward_model else "teacher_" if is_teacher_model else ""
    return f"hf_server_{role}{replica_rank}{name_suffix}"


def resolve_pad_token_id(tokenizer, hf_config, stop_ids: list[int]) -> int:
    for source in (tokenizer, hf_config):
        pad = getattr(source, "pad_token_id", None) if source is not None else None
        if pad is not None:
            return int(pad)
    return stop_ids[0]


def cuda_index_of(device_id: str) -> int:
    """This process's CUDA index of the GPU Ray gave the trainer worker (``device_id``).

    The server actor asks Ray not to touch ``CUDA_VISIBLE_DEVICES`` (as verl's vLLM server
    does), so it sees the node's GPUs; CUDA is already initialised when verl is imported,
    so the variable cannot be narrowed here: the worker's GPU is picked by index instead.
    """
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if visible:
        if device_id not in visible:
            raise RuntimeError(f"GPU {device_id!r} of the trainer worker is not visible here ({visible})")
        return visible.index(device_id)
    if not device_id.isdigit():
        raise RuntimeError(f"cannot map GPU id {device_id!r} to a CUDA index without CUDA_VISIBLE_DEVICES")
    return int(device_id)


def load_causal_lm(model_config: HFModelConfig, dtype: torch.dtype, device: str, load_format: str):
    """The rollout model. ``dummy`` load formats skip reading weights: the first sync brings them."""
    from transformers import AutoModelForCausalLM

    kwargs = {
        "dtype": dtype,
        "trust_remote_code": model_config.trust_remote_code,
        "attn_implementation": (model_config.override_config or {}).get("attn_implementation", "sdpa"),
    }
    if str(load_format).startswith("dummy"):
        with torch.device(device):  # initialise in place: random weights, replaced by the first sync
            model = AutoModelForCausalLM.from_config(model_config.hf_config, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_config.local_path, **kwargs)
    return model.to(device)


class HFRolloutServer:
    """One rollout replica: an HF causal LM on the CPU or on the trainer worker's GPU."""

    def __init__(
        self,
        config: RolloutConfig,
        model_config: HFModelConfig,
        rollout_mode: RolloutMode = RolloutMode.HYBRID,
        replica_rank: int = 0,
        visible_devices: Optional[str] = None,
        device: Optional[str] = None,
    ) -> None:
        self.config: RolloutConfig = omega_conf_to_dataclass(config)
        self.model_config: HFModelConfig = omega_conf_to_dataclass(model_config, dataclass_type=HFModelConfig)
        self.rollout_mode = rollout_mode
        self.replica_rank = replica_rank
        self.global_steps = None

        platform_device = device or get_device_name()  # ``device`` forces one (tests, CPU rollout on a GPU box)
        if platform_device == "cuda":
            if not torch.cuda.is_available():
                raise RuntimeError("hf rollout: the platform is CUDA but this actor sees no GPU")
            index = cuda_index_of(visible_devices.split(",")[0]) if visible_devices else 0
            torch.cuda.set_device(index)
            self.device = f"cuda:{index}"
        elif platform_device == "cpu":
            self.device = "cpu"
        else:
            raise NotImplementedError(f"hf rollout runs on cpu or cuda, not {platform_device!r}")

        options = dict((self.config.engine_kwargs or {}).get("hf") or {})
        if self.device == "cpu":
            from verl_backend.platform_cpu import host_cpu_count

            # Ray limits actors to one thread by default; generation is this actor's whole job.
            torch.set_num_threads(int(options.get("num_threads") or host_cpu_count()))

        # rollout.seed seeds sampling, as it does for vLLM (one stream per replica).
        torch.manual_seed(int(self.config.seed or 0) + replica_rank)
        dtype = PrecisionType.to_dtype(self.config.dtype)
        started = time.perf_counter()
        model = load_causal_lm(self.model_config, dtype, self.device, self.config.load_format)
        tokenizer = self.model_config.tokenizer
        stop_ids = stop_token_ids(tokenizer, self.model_config.hf_config, self.model_config.generation_config)
        self.engine = HFGenerateEngine(
            model,
            stop_token_ids=stop_ids,
            pad_token_id=resolve_pad_token_id(tokenizer, self.model_config.hf_config, stop_ids),
            max_batch_size=int(options.get("max_batch_size") or self.config.max_num_seqs),
            batch_wait_s=float(options.get("batch_wait_ms", 50)) / 1000.0,
            arrival_gap_s=float(options.get("arrival_gap_ms", ARRIVAL_GAP_S * 1000)) / 1000.0,
            samples_per_prompt=int(self.config.n or 1),
        )
        self._batches_logged = 0
        self._offloaded = False
        self._updating = False
        logger.info(
            "hf rollout server %d: %s on %s (%s), stop ids %s, loaded in %.1fs",
            replica_rank, self.model_config.local_path, self.device, dtype, stop_ids, time.perf_counter() - started,
        )

    def ready(self) -> bool:
        return True

    # --- generation --------------------------------------------------------------------------
    def _max_tokens(self, prompt_len: int, sampling_params: dict[str, Any]) -> int:
        limit = min(self.config.response_length, self.config.prompt_length + self.config.response_length - prompt_len)
        if self.config.max_model_len:
            limit = min(limit, self.config.max_model_len - prompt_len)
        for key in ("max_tokens", "max_new_tokens"):
            if sampling_params.get(key) is not None:
                limit = min(limit, int(sampling_params[key]))
        return max(0, limit)

    async def generate(
        self,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        request_id: str,
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> TokenOutput:
        if image_data or video_data or audio_data:
            raise NotImplementedError("the hf rollout is text-only")
        prompt_ids = [int(t) for t in prompt_ids]
        want_log_probs = bool(sampling_params.get("logprobs"))
        completion = await self.engine.generate(
            prompt_ids,
            SamplingKey.from_params(sampling_params),
            self._max_tokens(len(prompt_ids), sampling_params),
            want_log_probs,
        )
        return TokenOutput(
            token_ids=completion.token_ids,
            log_probs=completion.log_probs,
            stop_reason=completion.stop_reason,
            extra_fields={"global_steps": self.global_steps},
        )

    async def abort_all_requests(self, reject_request: bool = False) -> dict[str, Any]:
        await self.engine.abort_all(reject_requests=reject_request)
        return {}

    async def resume_generation(self) -> None:
        self.engine.resume()

    # --- memory: in hybrid mode on a GPU, give the trainer the memory while it trains -------
    def _may_offload(self) -> bool:
        return (
            self.device.startswith("cuda")
            and self.config.free_cache_engine
            and self.rollout_mode != RolloutMode.STANDALONE
        )

    async def sleep(self) -> None:
        if self._may_offload() and not self._offloaded:
            async with self.engine.model_lock:
                self.engine.model.to("cpu")
                torch.cuda.empty_cache()
                self._offloaded = True

    async def wake_up(self, tags: Optional[list[str]] = None) -> None:
        if self._offloaded and (tags is None or "weights" in tags):
            async with self.engine.model_lock:
                self.engine.model.to(self.device)
                self._offloaded = False

    # HF generate allocates its KV cache per call: nothing to clear, release or resume.
    async def clear_kv_cache(self) -> None:
        pass

    async def release_kv_cache(self) -> None:
        pass

    async def resume_kv_cache(self) -> None:
        pass

    async def start_profile(self, **kwargs) -> None:
        pass

    async def stop_profile(self) -> None:
        pass

    async def set_global_steps(self, global_steps: int) -> None:
        self.global_steps = global_steps

    # --- weight sync ------------------------------------------------------------------------
    async def begin_weight_update(self) -> None:
        if self._updating:
            logger.warning("hf rollout server %d: a weight sync restarted before finishing", self.replica_rank)
        else:
            await self.engine.model_lock.acquire()  # no generation while weights change
            self._updating = True
        self._sync_started = time.perf_counter()
        self._sync_bytes = 0
        self.engine.begin_weight_update()

    async def load_weights(self, named_tensors: list[tuple[str, torch.Tensor]]) -> None:
        if not self._updating:
            raise RuntimeError("load_weights called outside begin_weight_update/finish_weight_update")
        self._sync_bytes += self.engine.load_weights(named_tensors)

    async def finish_weight_update(self, global_steps: Optional[int] = None) -> dict[str, Any]:
        if not self._updating:
            raise RuntimeError("finish_weight_update called without begin_weight_update")
        try:
            self.engine.finish_weight_update()
        finally:
            self._updating = False
            self.engine.model_lock.release()
        if global_steps is not None:
            self.global_steps = global_steps
        summary = {
            "sync": self.engine.stats.weight_syncs,
            "global_steps": self.global_steps,
            "megabytes": round(self._sync_bytes / 2**20, 2),
            "seconds": round(time.perf_counter() - self._sync_started, 3),
            "checksum": self.weights_checksum(),
            # Batching evidence: requests served and generate() calls so far, and the sizes of the
            # batches since the last sync (one batch per step when a step's requests arrive together).
            "requests": self.engine.stats.requests,
            "generate_calls": self.engine.stats.generate_calls,
            "batches": self.engine.stats.batch_sizes[self._batches_logged:],
            "batch_seconds": self.engine.stats.batch_seconds[self._batches_logged:],
            "samples_per_prompt": self.engine.stats.batch_samples[self._batches_logged:],
        }
        self._batches_logged = len(self.engine.stats.batch_sizes)
        logger.info("hf rollout server %d: weight sync %s", self.replica_rank, summary)
        return summary

    def weights_checksum(self) -> float:
        """A cheap fingerprint of the weights the server generates with (logged after each sync)."""
        with torch.no_grad():
            return float(sum(p.detach().float().abs().sum().item() for p in self.engine.model.parameters()))

    def get_stats(self) -> dict[str, Any]:
        stats = self.engine.stats
        return {
            "generate_calls": stats.generate_calls,
            "requests": stats.requests,
            "generated_tokens": stats.generated_tokens,
            "batch_sizes": list(stats.batch_sizes),
            "weight_syncs": stats.weight_syncs,
            "global_steps": self.global_steps,
            "device": self.device,
        }
