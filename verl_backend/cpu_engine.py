"""The ``cpu`` training engine: verl's FSDP engine, with logits only where log-probs are read.

verl's FSDP language-model engine (without remove-padding, the path for machines without
flash-attn) computes the LM head, a log-softmax and the entropy over the vocabulary at
every position of prompt + response, then keeps the response positions. For the RL
prompts here (about 1k prompt tokens, a few hundred response tokens) and a small model,
the LM head is most of a step's compute: measured on the tiny model, a micro-batch of 8
costs 1.3 s with full logits and 0.5 s with response logits only. This engine asks the
model for the last ``width - min(prompt_len) + 1`` positions of the right-padded batch
(``logits_to_keep``), which hold every row's response, and fills the earlier positions
with zeros that nothing reads (``no_padding_2_padding`` slices the response positions).
Log-probs and entropy at the response positions are the same numbers as verl's.

Registered for ``device="cpu"`` (``VERL_ENGINE_DEVICE=cpu``, set by the CPU platform), for
verl 0.9.1's FSDP engine only; batches it does not handle (remove-padding, fused kernels,
distillation, SFT batches without prompts) go to verl's own code unchanged.
"""

from __future__ import annotations

import os

import torch
from tensordict import TensorDict
from verl.utils import tensordict_utils as tu
from verl.utils.dataset.dataset_utils import DatasetPadMode
from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithLMHead, _scale_logits_by_temperature

KEPT = "logits_kept"


def _plain_batch(micro_batch: TensorDict) -> bool:
    get = lambda key, default: tu.get_non_tensor_data(data=micro_batch, key=key, default=default)  # noqa: E731
    return (not get("use_remove_padding", True) and not get("use_fused_kernels", False)
            and get("pad_mode", DatasetPadMode.NO_PADDING) == DatasetPadMode.NO_PADDING
            and not get("distillation_use_topk", False) and not get("calculate_sum_pi_squared", False)
            and "prompts" in micro_batch.keys() and micro_batch["prompts"].is_nested)


def response_logprobs(tail_logits: torch.Tensor, input_ids: torch.Tensor, seq_lens: torch.Tensor,
                      temperature: torch.Tensor, unit_temperature: bool, entropy: bool):
    """Log-probs (and entropy) of a right-padded batch from the logits of its last positions.

    ``tail_logits`` (B, K, V) are the logits of positions ``W-K .. W-1`` of ``input_ids``
    (B, W); position t predicts token t+1 (verl's convention). Returns jagged (nested)
    tensors of each row's ``seq_lens`` positions, zeros before ``W-K``.
    """
    batch, width = input_ids.shape
    keep = tail_logits.shape[1]
    logits = _scale_logits_by_temperature(tail_logits, temperature.view(-1, 1, 1), is_unit_temperature=unit_temperature)
    labels = torch.roll(input_ids, shifts=-1, dims=1)[:, width - keep:]
    logp = torch.log_softmax(logits.float(), dim=-1).gather(-1, labels.unsqueeze(-1)).squeeze(-1)
    valid = torch.arange(width, device=input_ids.device) < seq_lens.unsqueeze(1)
    offsets = torch.cat([seq_lens.new_zeros(1), seq_lens.cumsum(0)])

    def jagged(tail: torch.Tensor) -> torch.Tensor:
        dense = torch.cat([tail.new_zeros(batch, width - keep), tail], dim=1)
        return torch.nested.nested_tensor_from_jagged(dense[valid], offsets)

    out = {"log_probs": jagged(logp)}
    if entropy:
        from verl.utils import torch_functional as verl_F

        out["entropy"] = jagged(verl_F.entropy_from_logits(logits))
    return out


class CPULMHeadEngine(FSDPEngineWithLMHead):
    """verl's FSDP LM engine computing the LM head for the response positions only."""

    def prepare_model_inputs(self, micro_batch: TensorDict):
        model_inputs, output_args = super().prepare_model_inputs(micro_batch)
        if _plain_batch(micro_batch):
            width = model_inputs["input_ids"].shape[1]
            shortest_prompt = int(micro_batch["prompts"].offsets().diff().min())
            # the first response token is predicted at position prompt_len - 1
            keep = min(width, width - shortest_prompt + 1)
            model_inputs["logits_to_keep"] = keep
            output_args[KEPT] = keep
        return model_inputs, output_args

    def prepare_model_outputs(self, output, output_args, micro_batch: TensorDict, logits_processor_func):
        if KEPT not in output_args:
            return super().prepare_model_outputs(output, output_args, micro_batch, logits_processor_func)
        input_ids = micro_batch["input_ids"]
        seq_lens = input_ids.offsets().diff()
        padded = torch.nested.to_padded_tensor(input_ids, padding=0, output_size=(len(seq_lens), int(seq_lens.max())))
        calculate_entropy = tu.get_non_tensor_data(data=micro_batch, key="calculate_entropy", default=False)
        return response_logprobs(output.logits, padded, seq_lens, output_args["temperature"],
                                 output_args.get("temperature_is_one", False), calculate_entropy)


_registered = False


def register() -> None:
    """Register the engines of ``device="cpu"`` with verl's public ``EngineRegistry``."""
    from verl.workers.engine.base import EngineRegistry
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngineWithValueHead

    global _registered
    if _registered:
        return
    _registered = True
    EngineRegistry.register(model_type="language_model", backend=["fsdp", "fsdp2"], device="cpu")(CPULMHeadEngine)
    # the critic's engine is verl's own: only the LM head's positions differ
    EngineRegistry.register(model_type="value_model", backend=["fsdp", "fsdp2"], device="cpu")(FSDPEngineWithValueHead)
    if EngineRegistry.get_engine_cls("language_model", "fsdp2") is not CPULMHeadEngine and \
            os.environ.get("VERL_ENGINE_DEVICE") == "cpu":
        raise RuntimeError("the cpu training engine did not register")
