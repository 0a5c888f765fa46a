"""verl's own reward loop (naive reward manager) runs our reward on CPU.

The config is composed from verl's ppo_trainer.yaml with the documented
overrides, the reward-loop worker builds the naive reward manager from it, and
a DataProto of real token ids (from a small byte-level BPE tokenizer trained
here, offline) goes through `compute_score_batch`. Ray is not started: the
worker class is used in-process, as each Ray reward worker would use it.
"""

from __future__ import annotations

import asyncio
import json
import os

import numpy as np
import pytest
import torch

from data_prep.criteria import load_criteria
from data_prep.prompt import format_response
from reward import RESULT_KEYS

CRIT = load_criteria("default")


def _response(label: int, lang: str = "en", answer: int | None = None) -> str:
    steps = {}
    for step in CRIT.steps:
        gold = step.gold_for_label(label)
        verdict = gold[0] if gold else ("n/a" if "n/a" in step.verdicts else step.verdicts[0])
        steps[step.name] = (f"Looking at the note for {step.name}: 笔记内容 ok.", verdict)
    return format_response(steps, label if answer is None else answer, CRIT, lang=lang)


ROWS = [  # (response, ground truth, extra_info, expected score with variant=ordinal, lambda=0.25)
    (_response(3, "zh"), "3", {"lang": "zh", "step_gold": json.dumps({"query_analysis": ["how-to"]})}, 1.0),
    (_response(2, answer=3), 2, {"lang": "en"}, 0.25),
    (_response(1).replace("</need>", ""), "1", {"lang": "en"}, 0.0),
    ("<think>short</think>\n<answer>-1</answer>", "-1", {"criteria": "free_form"}, 1.0),
]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=["<pad>", "<eos>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([r[0] for r in ROWS] * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>",
                                   clean_up_tokenization_spaces=False)
    path = tmp_path_factory.mktemp("tokenizer")
    fast.save_pretrained(str(path))
    return str(path)


def _compose(tokenizer_dir: str):
    from hydra import compose, initialize_config_dir

    import verl

    config_dir = os.path.join(os.path.dirname(verl.__file__), "trainer", "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        return compose(config_name="ppo_trainer", overrides=[
            "reward.custom_reward_function.path=pkg://reward",
            "reward.custom_reward_function.name=compute_score",
            "+reward.custom_reward_function.reward_kwargs.variant=ordinal",
            "+reward.custom_reward_function.reward_kwargs.ordinal_lambda=0.25",
            f"actor_rollout_ref.model.path={tokenizer_dir}",
        ])


def _batch(tokenizer, prompt_len: int = 8):
    from verl import DataProto

    pad = tokenizer.pad_token_id
    encoded = [tokenizer(r[0])["input_ids"] + [tokenizer.eos_token_id] for r in ROWS]
    resp_len = max(len(e) for e in encoded) + 3  # right padding on every row
    n = len(ROWS)
    prompts = torch.full((n, prompt_len), pad)
    responses = torch.full((n, resp_len), pad)
    mask = torch.zeros((n, prompt_len + resp_len), dtype=torch.long)
    for i, ids in enumerate(encoded):
        q = tokenizer(f"query {i}")["input_ids"][:prompt_len]
        prompts[i, prompt_len - len(q):] = torch.tensor(q)  # left-padded prompt
        mask[i, prompt_len - len(q):prompt_len] = 1
        responses[i, :len(ids)] = torch.tensor(ids)
        mask[i, prompt_len:prompt_len + len(ids)] = 1
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses, "attention_mask": mask,
                 "input_ids": torch.cat([prompts, responses], dim=1)},
        non_tensors={
            "data_source": np.array(["relevance"] * n, dtype=object),
            "reward_model": np.array([{"style": "rule", "ground_truth": r[1]} for r in ROWS], dtype=object),
            "extra_info": np.array([dict(r[2]) for r in ROWS], dtype=object),
        },
    ), [len(e) for e in encoded]


def test_naive_reward_loop_runs_our_reward(tokenizer_dir):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker, migrate_legacy_reward_impl
    from verl.experimental.reward_loop.reward_manager.naive import NaiveRewardManager

    config = migrate_legacy_reward_impl(_compose(tokenizer_dir))
    assert dict(config.reward.custom_reward_function.reward_kwargs) == {
        "variant": "ordinal", "ordinal_lambda": 0.25}

    async def run():
        # built inside the loop: the manager captures the running event loop
        worker = RewardLoopWorker(config)
        data, lengths = _batch(worker.input_tokenizer)
        return worker, data, lengths, await worker.compute_score_batch(data)

    worker, data, lengths, outputs = asyncio.run(run())
    assert isinstance(worker.reward_manager, NaiveRewardManager)

    tokenizer = worker.input_tokenizer
    for out, (text, _, _, expected), n_tokens, ids in zip(outputs, ROWS, lengths, data.batch["responses"]):
        assert out["reward_score"] == expected
        extra = out["reward_extra_info"]
        assert tuple(extra) == RESULT_KEYS
        assert extra["score"] == expected
        # the spans index the string the manager decoded, which is the response text
        decoded = tokenizer.decode(ids[:n_tokens], skip_special_tokens=True)
        assert decoded == text
        doc = json.loads(extra["steps"])
        for item in doc["steps"]:
            if item["start"] >= 0:
                assert decoded[item["start"]:item["end"]].startswith("<")
                assert decoded[item["start"]:item["end"]].endswith(">")

    first = outputs[0]["reward_extra_info"]
    assert first["num_verifiable"] == 4 and first["step_acc"] == 1.0  # step_gold reached the reward
    assert outputs[2]["reward_extra_info"]["format_error"] == "unclosed_tag:need"
    assert json.loads(outputs[3]["reward_extra_info"]["steps"])["steps"] == []

    # what RewardLoopManager.compute_rm_score does with the outputs
    infos = [o["reward_extra_info"] for o in outputs]
    stacked = {key: np.array([info[key] for info in infos]) for key in infos[0]}
    for key in ("score", "acc", "format_ok", "step_acc", "consistent"):
        assert stacked[key].dtype == np.float64, key
    for key in ("pred", "num_steps", "num_verifiable", "num_correct"):
        assert stacked[key].dtype == np.int64, key
    scores = worker.reward_manager.assemble_rm_scores(data, [o["reward_score"] for o in outputs])
    for row, n_tokens, (_, _, _, expected) in zip(scores, lengths, ROWS):
        assert row[n_tokens - 1].item() == pytest.approx(expected)
        assert row.sum().item() == pytest.approx(expected)


def _readme_reward_overrides() -> list[str]:
    """Every reward_kwargs override the README documents, one per alternative value."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    path = str(load_criteria("default").source)
    out = []
    for code in re.findall(r"`([^`]*reward_kwargs\.[^`]*=[^`]*)`", readme):
        key, _, values = code.partition("=")
        out += [f"{key}={value.replace('PATH', path)}" for value in values.split("\\|")]
    return out


def test_readme_reward_overrides_compose_and_reach_the_reward():
    # The recipes' config, as `main_ppo --config-name grpo_sam` (and the launcher) compose it.
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf
    from pathlib import Path

    from reward import make_config

    overrides = _readme_reward_overrides()
    names = {o.partition("=")[0].lstrip("+").rsplit(".", 1)[1] for o in overrides}
    assert names == {"variant", "ordinal_lambda", "format_penalty", "criteria"}, overrides
    recipes = str(Path(__file__).resolve().parents[1] / "recipes")
    together = [o for o in overrides if "variant=" not in o] + [
        next(o for o in overrides if "variant=" in o)]
    for batch in [[o] for o in overrides] + [together]:
        with initialize_config_dir(config_dir=recipes, version_base=None):
            cfg = compose(config_name="grpo_sam", overrides=batch)
        kwargs = OmegaConf.to_container(cfg.reward.custom_reward_function.reward_kwargs)
        config = make_config(**kwargs)
        for o in batch:
            key, _, value = o.partition("=")
            field = key.rsplit(".", 1)[1]
            got = getattr(config, field)
            assert (got == float(value)) if isinstance(got, float) else (got == value), (o, config)
