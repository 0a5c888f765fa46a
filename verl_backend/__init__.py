"""verl backend for machines without vLLM, or without a GPU.

Adds to verl 0.9.1, through its plugin hooks (entry point ``verl.plugins`` ->
``verl_backend.plugin``):

* a ``cpu`` platform, chosen with ``VERL_PLATFORM=cpu`` (``platform_cpu``);
* an ``hf`` rollout (``actor_rollout_ref.rollout.name=hf``): batched Hugging Face
  ``generate`` in a Ray actor, with weight sync after every step
  (``hf_engine``, ``hf_server``, ``hf_replica``, ``hf_adapter``);
* the Hydra overrides each kind of machine needs (``overrides``).

All changes to verl internals are in ``patches``.
"""

PLATFORM_NAME = "cpu"
ROLLOUT_NAME = "hf"
