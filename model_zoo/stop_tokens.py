"""The token ids that end a response, one rule for the training rollout and for evaluation.

A model is evaluated as it was trained only if generation stops at the same tokens: the
checkpoint's generation config, its model config and its tokenizer may each name an eos
(or a list), and chat models end a turn with a marker token that some of them do not list.
"""

from __future__ import annotations

from typing import Any

CHAT_END_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|end_of_turn|>")


def stop_token_ids(tokenizer: Any, hf_config: Any = None, generation_config: Any = None) -> list[int]:
    """Every eos id of the generation config, model config and tokenizer, then the chat-end markers
    the tokenizer has as added tokens; in that order, without repeats."""
    ids: list[int] = []
    for source in (generation_config, hf_config, tokenizer):
        eos = getattr(source, "eos_token_id", None) if source is not None else None
        for token in eos if isinstance(eos, (list, tuple)) else [eos]:
            if token is not None and int(token) not in ids:
                ids.append(int(token))
    added = tokenizer.get_added_vocab() if tokenizer is not None else {}
    for marker in CHAT_END_TOKENS:
        if marker in added and added[marker] not in ids:
            ids.append(added[marker])
    return ids
