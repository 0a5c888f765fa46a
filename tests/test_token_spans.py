"""Character spans of the reward -> token step ranges, and the SAM reward manager."""

import asyncio
import json

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoTokenizer

from data_prep.prompt import format_response
from model_zoo import resolve_model
from reward import compute_score
from sam_advantage.reward_manager import SamStepRewardManager, step_fields
from sam_advantage.token_spans import spans_to_token_ranges, step_ids_from_ranges, token_char_offsets
from timing import best_time

STEPS = {
    "query_analysis": ("The query asks for 苹果 phone cases 📱 under ¥100.", "purchase"),
    "subject_match": ("The note reviews an iPhone case — the same subject.", "exact"),
    "need": ("It links where to buy; the need is met.", "met"),
    "constraints": ("Price ¥89 satisfies the budget.", "satisfied"),
}


@pytest.fixture(scope="module")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model("tiny"))


def test_offsets_tile_the_decoded_text(tokenizer):
    text = format_response(STEPS, 3)
    ids = tokenizer.encode(text, add_special_tokens=False)
    offsets = token_char_offsets(tokenizer, ids)
    decoded = tokenizer.decode(ids, skip_special_tokens=True)
    assert decoded == text
    # contiguous, monotone, covering the whole string; multi-byte characters split
    # over byte tokens give empty ranges, never overlaps
    assert offsets[0, 0] == 0 and offsets[-1, 1] == len(text)
    assert np.all(offsets[1:, 0] == offsets[:-1, 1])
    assert "".join(text[a:b] for a, b in offsets) == text
    assert any(a == b for a, b in offsets), "expected split multi-byte characters in this text"


def test_step_ranges_cover_exactly_the_tagged_text(tokenizer):
    text = format_response(STEPS, 3)
    ids = tokenizer.encode(text, add_special_tokens=False)
    result = compute_score("grm_relevance", text, "3", {"criteria": "default"})
    spans, correct = step_fields(result["steps"])
    assert correct == [-1, 1, 1, 1]  # query_analysis has no gold without annotations
    offsets = token_char_offsets(tokenizer, ids)
    ranges = spans_to_token_ranges(offsets, spans)
    for (t0, t1), (start, end), (name, (_, verdict)) in zip(ranges, spans, STEPS.items()):
        # the step's tokens are the span minus at most the token that straddles each edge
        assert offsets[t0, 0] == start or offsets[t0 - 1, 0] < start < offsets[t0 - 1, 1]
        assert offsets[t1 - 1, 1] == end or offsets[t1, 0] < end < offsets[t1, 1]
        piece = tokenizer.decode(ids[t0:t1])
        assert piece.startswith(f"<{name}>") and f"Verdict: {verdict}" in piece, piece
    step_ids = step_ids_from_ranges([ranges], len(ids))[0]
    assert set(step_ids.tolist()) == {-1, 0, 1, 2, 3}
    answer = tokenizer.decode([i for i, s in zip(ids, step_ids.tolist()) if s == -1])
    assert "<answer>3</answer>" in answer


def test_straddling_tokens_belong_to_no_step():
    # token 2 covers chars 8..12, crossing the span end at 10
    offsets = np.array([[0, 4], [4, 8], [8, 12], [12, 16]])
    assert spans_to_token_ranges(offsets, [(0, 10), (10, 16)]) == [(0, 2), (3, 4)]
    # an absent step and an empty-range token at the closing position
    offsets = np.array([[0, 5], [5, 5], [5, 9]])
    assert spans_to_token_ranges(offsets, [(-1, -1), (0, 5)]) == [(0, 0), (0, 1)]


def test_non_concatenative_decode_falls_back_to_prefix_offsets():
    class SpacingTokenizer:  # decode joins pieces with spaces, like some word-level tokenizers
        vocab = ["<a>", "x", "</a>"]

        def decode(self, ids, skip_special_tokens=True):
            return " ".join(self.vocab[i] for i in ids)

    tok = SpacingTokenizer()
    offsets = token_char_offsets(tok, [0, 1, 2])
    assert offsets.tolist() == [[0, 3], [3, 5], [5, 10]]


def _data_item(tokenizer, response: str, label: str, extra_info: dict):
    from verl import DataProto

    prompt = tokenizer.encode("judge this", add_special_tokens=False)
    resp = tokenizer.encode(response, add_special_tokens=False) + [tokenizer.eos_token_id]
    pad = 8
    responses = torch.tensor([resp + [tokenizer.pad_token_id] * pad])
    attention = torch.tensor([[1] * (len(prompt) + len(resp)) + [0] * pad])
    return DataProto.from_dict(
        tensors={"prompts": torch.tensor([prompt]), "responses": responses, "attention_mask": attention,
                 "input_ids": torch.cat([torch.tensor([prompt]), responses], dim=1)},
        non_tensors={"data_source": np.array(["grm_relevance"], dtype=object),
                     "reward_model": np.array([{"ground_truth": label, "style": "rule"}], dtype=object),
                     "extra_info": np.array([extra_info], dtype=object)},
    )


def test_sam_reward_manager_adds_token_ranges(tokenizer):
    text = format_response({**STEPS, "subject_match": ("A sibling product.", "related")}, 3)
    item = _data_item(tokenizer, text, "3", {"criteria": "default", "step_gold": json.dumps(
        {"query_analysis": ["purchase"], "subject_match": ["exact"], "need": ["met"],
         "constraints": ["satisfied", "none"]})})
    manager = SamStepRewardManager(OmegaConf.create({}), tokenizer, compute_score)
    out = asyncio.get_event_loop().run_until_complete(manager.run_single(item))
    extra = out["reward_extra_info"]
    assert out["reward_score"] == 1.0  # right label, well-formed
    assert json.loads(extra["sam_step_correct"]) == [1, 0, 1, 1]
    ranges = json.loads(extra["sam_token_ranges"])
    ids = item.batch["responses"][0].tolist()
    assert extra["sam_response_tokens"] == len(ids) - 8  # the tokens the ranges index: the padding left out
    assert tokenizer.decode(ids[ranges[1][0]:ranges[1][1]]).startswith("<subject_match>")


def test_sam_reward_manager_rejects_a_reward_without_steps(tokenizer):
    item = _data_item(tokenizer, "<answer>3</answer>", "3", {})
    manager = SamStepRewardManager(OmegaConf.create({}), tokenizer,
                                   lambda **kw: {"score": 1.0, "acc": 1.0})
    with pytest.raises(KeyError, match="steps"):
        asyncio.get_event_loop().run_until_complete(manager.run_single(item))


# -- hostile token sequences: linear, and offsets still tile the text ------------------------


def _tiles(tokenizer, ids, offsets) -> None:
    text = tokenizer.decode(ids, skip_special_tokens=True)
    assert offsets.shape == (len(ids), 2)
    assert offsets[0, 0] == 0 and offsets[-1, 1] == len(text)
    assert np.all(offsets[1:, 0] == offsets[:-1, 1]) and np.all(offsets[:, 1] >= offsets[:, 0])


def _cut_mid_character(tokenizer, n_tokens: int):
    ids = tokenizer.encode("<query_analysis>长文本🙂 推理 " * (n_tokens // 4), add_special_tokens=False)
    cut = next(c for c in range(n_tokens, len(ids))
               if tokenizer.decode(ids[:c], skip_special_tokens=True).endswith("\ufffd"))
    return ids, cut


def test_a_response_cut_mid_character_keeps_its_offsets(tokenizer):
    ids, cut = _cut_mid_character(tokenizer, 200)
    full, part = token_char_offsets(tokenizer, ids), token_char_offsets(tokenizer, ids[:cut])
    _tiles(tokenizer, ids[:cut], part)
    # the tokens before the cut character have the offsets they have in the whole response
    first = int(np.flatnonzero(full[:, 0] >= part[-1, 0])[0])
    assert 0 < first < cut and np.array_equal(part[:first], full[:first])


def test_a_response_cut_mid_character_is_not_quadratic(tokenizer):
    # Was a fallback to prefix decoding: about 40x the time of the uncut response at 4k tokens.
    ids, cut = _cut_mid_character(tokenizer, 4000)
    t_whole = best_time(lambda: token_char_offsets(tokenizer, ids[:cut + 8]))
    t_cut = best_time(lambda: token_char_offsets(tokenizer, ids[:cut]))
    assert t_cut < 3 * t_whole, (t_cut, t_whole)


def test_runs_of_special_tokens_and_invalid_bytes_stay_linear(tokenizer):
    text_ids = tokenizer.encode("<need>ok, Verdict: met</need> " * 500, add_special_tokens=False)
    n = len(text_ids)
    # a token that is a lone continuation byte: every copy is its own replacement character
    stray_byte = next(i for i in range(len(tokenizer))
                      if tokenizer.decode([i, i, i]) == "\ufffd" * 3)
    hostile = {
        "special tokens": text_ids[: n // 2] + [tokenizer.eos_token_id] * n + text_ids[n // 2:],
        "invalid bytes": text_ids[: n // 2] + [stray_byte] * n + text_ids[n // 2:],
    }
    plain = text_ids * 2  # as many tokens, all of them ordinary
    t_plain = best_time(lambda: token_char_offsets(tokenizer, plain))
    for name, ids in hostile.items():
        offsets = token_char_offsets(tokenizer, ids)
        _tiles(tokenizer, ids, offsets)
        assert best_time(lambda: token_char_offsets(tokenizer, ids)) < 3 * t_plain, name
    # special tokens are empty, at the position where the text resumes
    ids = hostile["special tokens"]
    offsets = token_char_offsets(tokenizer, ids)
    specials = offsets[n // 2: n // 2 + n]
    assert np.all(specials[:, 0] == specials[:, 1]) and len(set(specials[:, 0].tolist())) == 1
    assert np.array_equal(offsets[: n // 2], token_char_offsets(tokenizer, text_ids)[: n // 2])


def test_a_reward_function_that_raises_names_the_sample(tokenizer):
    def buggy_reward(data_source=None, solution_str=None, ground_truth=None, extra_info=None, **kw):
        if "unmet" in solution_str:
            raise ZeroDivisionError("division by zero")
        return compute_score(data_source, solution_str, ground_truth, extra_info)

    from sam_advantage.reward_manager import RewardFunctionError

    manager = SamStepRewardManager(OmegaConf.create({}), tokenizer, buggy_reward)
    good = _data_item(tokenizer, format_response(STEPS, 3), "3", {"split": "train", "index": 6})
    assert asyncio.get_event_loop().run_until_complete(manager.run_single(good))["reward_score"] == 1.0
    bad = _data_item(tokenizer, format_response({**STEPS, "need": ("Not served.", "unmet")}, 1), "1",
                     {"id": "note-42", "split": "train", "index": 7})
    with pytest.raises(RewardFunctionError) as err:
        asyncio.get_event_loop().run_until_complete(manager.run_single(bad))
    message = str(err.value)
    for part in ("reward function raised on sample id='note-42'", "split='train'", "index=7", "data_source='grm_relevance'",
                 "ground_truth='1'", "response starting '<query_analysis>", "ZeroDivisionError: division by zero"):
        assert part in message, message
    assert isinstance(err.value.__cause__, ZeroDivisionError)
    import pickle  # it crosses Ray's process boundary intact
    assert str(pickle.loads(pickle.dumps(err.value))) == message
