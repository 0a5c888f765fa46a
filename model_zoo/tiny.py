"""A tiny randomly initialised chat model for fast tests and CPU smoke runs.

The model is a 2-layer Qwen2 with hidden size 64 and a byte-level BPE tokenizer
trained here on the built-in corpus (English + Chinese relevance-judging text),
so no download is needed. It writes a normal Hugging Face folder that
`AutoModelForCausalLM` / `AutoTokenizer` load, with a ChatML chat template.
Everything is determined by the arguments: same seed, same files.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

from model_zoo._atomic import build_once

# Bump when the output of the builder changes, so cached builds are redone.
BUILDER_VERSION = 1

PAD = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
BOS = "<|startoftext|>"
SPECIAL_TOKENS = [PAD, IM_START, IM_END, BOS]  # ids 0..3, in this order

# Qwen2's pre-tokenizer split: words with their leading space, single digits,
# and runs of CJK characters kept together for BPE to merge.
_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

# ChatML, as used by Qwen2 and SmolLM2 (without a default system message).
CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int):
    """A byte-level BPE `tokenizers.Tokenizer` trained on ``texts``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(_SPLIT_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _hf_tokenizer(tok, max_len: int):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=IM_END,  # generation stops at the end of the assistant turn
        pad_token=PAD,
        additional_special_tokens=[IM_START, IM_END],
        chat_template=CHAT_TEMPLATE,
        model_max_length=max_len,
        clean_up_tokenization_spaces=False,
    )


def _corpus_texts(corpus: Iterable[str] | None) -> list[str]:
    if corpus is None:
        from model_zoo.corpus import iter_corpus

        return list(iter_corpus())
    if isinstance(corpus, (str, bytes, os.PathLike)):
        raise TypeError("corpus must be an iterable of strings, not a single string or path")
    return [str(t) for t in corpus]


def build_tiny_model(
    out_dir: str | os.PathLike,
    vocab_size: int = 3072,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
    corpus: Iterable[str] | None = None,
    *,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    intermediate_size: int | None = None,
    max_position_embeddings: int = 4096,
) -> Path:
    """Build (or reuse) the tiny model in ``out_dir`` and return its path.

    ``corpus`` (an iterable of strings) replaces the built-in tokenizer corpus.
    An existing build with the same arguments is reused; an outdated one is
    replaced.
    """
    if hidden_size % num_heads or num_heads % num_kv_heads:
        raise ValueError(f"hidden_size ({hidden_size}) must divide by num_heads ({num_heads}) "
                         f"and num_heads by num_kv_heads ({num_kv_heads})")
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size must be at least {256 + len(SPECIAL_TOKENS)} "
                         "(the byte alphabet plus special tokens)")
    texts = _corpus_texts(corpus)
    spec = {
        "kind": "tiny",
        "builder_version": BUILDER_VERSION,
        "vocab_size": vocab_size,
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "num_heads": num_heads,
        "num_kv_heads": num_kv_heads,
        "intermediate_size": intermediate_size or 2 * hidden_size,
        "max_position_embeddings": max_position_embeddings,
        "seed": seed,
        "corpus_sha256": hashlib.sha256(json.dumps(texts).encode()).hexdigest(),
    }

    def build(tmp: Path) -> dict:
        import torch
        from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

        tok = _hf_tokenizer(train_tokenizer(texts, vocab_size), max_position_embeddings)
        ids = {t: tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
        config = Qwen2Config(
            vocab_size=vocab_size,  # >= len(tok); spare rows are never produced by the tokenizer
            hidden_size=hidden_size,
            intermediate_size=spec["intermediate_size"],
            num_hidden_layers=num_layers,
            num_attention_heads=num_heads,
            num_key_value_heads=num_kv_heads,
            max_position_embeddings=max_position_embeddings,
            tie_word_embeddings=True,
            bos_token_id=ids[BOS],
            eos_token_id=ids[IM_END],
            pad_token_id=ids[PAD],
        )
        with torch.random.fork_rng(devices=[]):  # leave the caller's RNG alone
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        model.generation_config = GenerationConfig(
            bos_token_id=ids[BOS],
            eos_token_id=[ids[IM_END], ids[PAD]],
            pad_token_id=ids[PAD],
        )
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        return {"num_parameters": sum(p.numel() for p in model.parameters()),
                "tokenizer_size": len(tok)}

    return build_once(out_dir, spec, build)
