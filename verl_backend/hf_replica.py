"""``RolloutReplica`` for the ``hf`` rollout: launches one ``HFRolloutServer`` actor per replica.

Each replica is one trainer worker (tensor/data/pipeline parallel size 1): its
server runs on that worker's node and, on a GPU machine, on that worker's GPU,
sharing it the way verl's vLLM replica does (Ray is told not to reset
``CUDA_VISIBLE_DEVICES``; the server sets it to the worker's device).
"""

from __future__ import annotations

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from verl.plugin.platform import get_platform
from verl.utils.device import get_resource_name
from verl.workers.rollout.replica import RolloutReplica

from verl_backend.hf_server import HFRolloutServer, server_actor_name


def _worker_placement(worker_self) -> tuple[str, list[str]]:
    context = ray.get_runtime_context()
    return context.get_node_id(), [str(i) for i in context.get_accelerator_ids().get(get_resource_name(), [])]


class HFReplica(RolloutReplica):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.world_size != 1:
            raise NotImplementedError(
                "the hf rollout runs one model copy per trainer GPU: set rollout tensor_model_parallel_size, "
                f"data_parallel_size and pipeline_model_parallel_size to 1 (got world size {self.world_size})"
            )
        self.server_class = ray.remote(HFRolloutServer)

    async def launch_servers(self) -> None:
        assert len(self.workers) == 1, f"expected one worker per hf replica, got {len(self.workers)}"
        node_id, devices = await self.workers[0].__ray_call__.remote(_worker_placement)
        platform = get_platform()
        env_vars = {**{var: "1" for var in platform.ray_noset_envvars()}, **platform.rollout_env_vars()}
        name = server_actor_name(self.replica_rank, self.is_reward_model, self.is_teacher_model, self.name_suffix)
        server = self.server_class.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
            runtime_env={"env_vars": env_vars},
            name=name,
            max_concurrency=self.max_concurrency,
        ).remote(
            config=self.config,
            model_config=self.model_config,
            rollout_mode=self.rollout_mode,
            replica_rank=self.replica_rank,
            visible_devices=",".join(devices) or None,
        )
        await server.ready.remote()  # surface load errors here, not at the first request
        self.servers = [server]
        self._server_handle = server
        # No HTTP endpoint: the address only has to be a unique key for verl's load balancer.
        self._server_address = f"{name}@{ray.util.get_node_ip_address().strip('[]')}"
