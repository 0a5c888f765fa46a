"""Weight-sync adapter of the ``hf`` rollout, living in the trainer worker process.

After every step verl's trainer worker hands ``update_weights`` a generator of
full ``(name, tensor)`` pairs (HF names). They are moved to host memory, cast
to the rollout dtype and sent to the replica's server in buckets of
``checkpoint_engine.update_weights_bucket_megabytes``; the server checks that
every parameter was replaced.
"""

from __future__ import annotations

import logging
import os
from typing import AsyncGenerator, Generator

import ray
import torch
from verl.utils.torch_dtypes import PrecisionType
from verl.workers.rollout.base import BaseRollout
from verl.workers.rollout.utils import ensure_async_iterator

from verl_backend.hf_server import server_actor_name
from verl_backend.patches import require_supported_verl

logger = logging.getLogger(__name__)
logger.setLevel(os.getenv("VERL_LOGGING_LEVEL", "INFO"))


class HFServerAdapter(BaseRollout):
    def __init__(self, config, model_config, device_mesh, replica_rank: int = -1, **kwargs):
        require_supported_verl()
        super().__init__(config, model_config, device_mesh)
        world = (
            self.config.tensor_model_parallel_size
            * self.config.data_parallel_size
            * self.config.pipeline_model_parallel_size
        )
        if world != 1:
            raise NotImplementedError("the hf rollout needs tensor/data/pipeline parallel size 1")
        # Replica r is trainer rank r (one model copy per worker).
        self.replica_rank = int(os.environ.get("RANK", 0)) if replica_rank == -1 else replica_rank
        self.is_leader_rank = True
        self._server = None
        self.last_sync: dict = {}

    @property
    def server(self):
        if self._server is None:  # the server starts after the trainer worker
            self._server = ray.get_actor(server_actor_name(self.replica_rank))
        return self._server

    async def resume(self, tags: list[str]):
        if "weights" in tags:
            await self.server.wake_up.remote(tags=tags)

    async def release(self):
        await self.server.sleep.remote()

    @torch.no_grad()
    async def update_weights(
        self,
        weights: Generator[tuple[str, torch.Tensor], None, None] | AsyncGenerator,
        global_steps: int | None = None,
        wire_format: str = "named_tensors",
        peft_config=None,
        **kwargs,
    ):
        if wire_format != "named_tensors":
            raise NotImplementedError(f"the hf rollout takes full named tensors, not {wire_format!r}")
        if peft_config is not None:
            raise NotImplementedError(
                "the hf rollout syncs merged weights: set actor_rollout_ref.model.lora.merge=True"
            )
        dtype = PrecisionType.to_dtype(self.config.dtype)
        bucket_limit = int(self.config.checkpoint_engine.update_weights_bucket_megabytes) << 20
        bucket, size = [], 0
        await self.server.begin_weight_update.remote()
        async for name, tensor in ensure_async_iterator(weights):
            tensor = tensor.detach()
            if tensor.is_floating_point():
                tensor = tensor.to(dtype)  # before the copy to host: less to move
            tensor = tensor.to("cpu")
            bucket.append((name, tensor))
            size += tensor.numel() * tensor.element_size()
            if size >= bucket_limit:
                await self.server.load_weights.remote(bucket)
                bucket, size = [], 0
        if bucket:
            await self.server.load_weights.remote(bucket)
        self.last_sync = await self.server.finish_weight_update.remote(global_steps)

    def generate_sequences(self, prompts):
        raise NotImplementedError("the hf rollout serves requests through its server actor")
