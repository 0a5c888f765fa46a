"""SAM's mask on hand-built cases for every variant, and its invariants."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from verl.trainer.ppo.core_algos import compute_grpo_vectorized_outcome_advantage

from sam_advantage.core import (
    VARIANTS,
    compute_sam_advantage,
    compute_sam_advantage_and_keep,
    sam_metrics,
    step_keep_table,
)

# One group of two responses, 8 tokens, 3 steps:
# tokens 0-1 step 0, 2-3 step 1, 4-5 step 2, 6 answer (outside), 7 padding.
STEP_IDS = torch.tensor([[0, 0, 1, 1, 2, 2, -1, -1]] * 2)
MASK = torch.tensor([[1, 1, 1, 1, 1, 1, 1, 0]] * 2, dtype=torch.float32)


def rewards(*scores):
    r = torch.zeros(len(scores), 8)
    r[:, 6] = torch.tensor(scores, dtype=torch.float32)
    return r


def run(scores, correct, variant, index=None):
    index = np.array(index or ["g"] * len(scores), dtype=object)
    adv, ret = compute_sam_advantage(rewards(*scores), MASK[: len(scores)], index,
                                     STEP_IDS[: len(scores)].clone(), torch.tensor(correct), variant)
    assert torch.equal(adv, ret)
    return adv


# Response 0 is right (reward 1, A > 0), response 1 wrong (reward 0, A < 0).
# Step checks: response 0 has step 1 wrong (lucky); response 1 has step 0 correct, step 2 unknown.
CORRECT = [[1, 0, 1], [1, 0, -1]]


def test_symmetric_masks_wrong_steps_of_positive_and_correct_steps_of_negative():
    adv = run([1.0, 0.0], CORRECT, "symmetric")
    a_pos, a_neg = adv[0, 6].item(), adv[1, 6].item()
    assert a_pos > 0 > a_neg
    assert adv[0].tolist() == pytest.approx([a_pos, a_pos, 0, 0, a_pos, a_pos, a_pos, 0])
    assert adv[1].tolist() == pytest.approx([0, 0, a_neg, a_neg, a_neg, a_neg, a_neg, 0])


def test_negative_only_leaves_positive_responses_alone():
    adv = run([1.0, 0.0], CORRECT, "negative_only")
    a_pos, a_neg = adv[0, 6].item(), adv[1, 6].item()
    assert adv[0].tolist() == pytest.approx([a_pos] * 7 + [0])
    assert adv[1].tolist() == pytest.approx([0, 0, a_neg, a_neg, a_neg, a_neg, a_neg, 0])


def test_first_error_positive_zeroes_from_first_wrong_step_on():
    adv = run([1.0, 0.0], CORRECT, "first_error")
    a_pos, a_neg = adv[0, 6].item(), adv[1, 6].item()
    # first wrong step of both responses is step 1
    assert adv[0].tolist() == pytest.approx([a_pos, a_pos, 0, 0, 0, 0, a_pos, 0])
    assert adv[1].tolist() == pytest.approx([0, 0, a_neg, a_neg, a_neg, a_neg, a_neg, 0])


def test_first_error_without_wrong_step():
    adv = run([1.0, 0.0], [[1, 1, 1], [1, -1, 1]], "first_error")
    a_pos, a_neg = adv[0, 6].item(), adv[1, 6].item()
    assert adv[0].tolist() == pytest.approx([a_pos] * 7 + [0])
    # no wrong step in a failed response: the known steps are masked, the answer carries
    # the blame; step 1, of unknown correctness, keeps A_i
    assert adv[1].tolist() == pytest.approx([0, 0, a_neg, a_neg, 0, 0, a_neg, 0])


@pytest.mark.parametrize("correct, pos_expected, neg_expected", [
    # unknown steps after the first wrong one (positive) and before it (negative) keep A_i
    ([[0, -1, 1], [-1, 1, 0]], [0, 0, 1, 1, 0, 0, 1, 0], [1, 1, 0, 0, 1, 1, 1, 0]),
    ([[1, 0, -1], [1, -1, 0]], [1, 1, 0, 0, 1, 1, 1, 0], [0, 0, 1, 1, 1, 1, 1, 0]),
    ([[-1, -1, -1], [-1, -1, -1]], [1] * 7 + [0], [1] * 7 + [0]),
])
def test_first_error_keeps_steps_of_unknown_correctness(correct, pos_expected, neg_expected):
    adv = run([1.0, 0.0], correct, "first_error")
    a_pos, a_neg = adv[0, 6].item(), adv[1, 6].item()
    assert adv[0].tolist() == pytest.approx([a_pos * k for k in pos_expected])
    assert adv[1].tolist() == pytest.approx([a_neg * k for k in neg_expected])


# The authors' cases on the paper criteria's two label steps, here steps 1 (initial label)
# and 2 (calibrated label); step 0 stands for an analysis step. keep: 1 kept, 0 masked.
@pytest.mark.parametrize("initial, calibrated, final_right, keep", [
    (0, 1, True, [1, 1, 1]),   # initial wrong, calibration repaired it: nothing masked
    (1, 1, True, [1, 1, 1]),   # both right
    (1, 0, True, [1, 1, 0]),   # calibration broke a right initial label: only it is masked
    (0, 0, True, [1, 0, 0]),   # both wrong, the final label right anyway: both masked
    (1, 1, False, [1, 0, 0]),  # final wrong: every right label step is masked
    (0, 1, False, [1, 1, 0]),
    (1, 0, False, [1, 0, 1]),
    (0, 0, False, [1, 1, 1]),  # all wrong: the blame stays on every step
])
def test_paper_variant_on_the_authors_cases(initial, calibrated, final_right, keep):
    scores = [1.0, 0.0] if final_right else [0.0, 1.0]
    correct = [[-1, initial, calibrated], [-1, -1, -1]]  # the analysis step has no gold here
    adv = run(scores, correct, "paper")
    a = adv[0, 6].item()
    assert (a > 0) == final_right
    expected = [a * keep[0]] * 2 + [a * keep[1]] * 2 + [a * keep[2]] * 2 + [a, 0]
    assert adv[0].tolist() == pytest.approx(expected)
    assert adv[1].tolist() == pytest.approx([adv[1, 6].item()] * 7 + [0])  # unknown steps keep A_i


def test_paper_variant_over_k_steps():
    # positive: a wrong step is kept when any later step is correct; negative: correct steps masked
    correct = torch.tensor([[0, 0, 1, 0, -1], [1, 0, 1, -1, 0]])
    scalars = torch.tensor([1.0, -1.0])
    keep = step_keep_table(scalars, correct, "paper")
    assert keep.tolist() == [[True, True, True, False, True], [False, True, False, True, True]]


def test_none_is_plain_grpo():
    adv = run([1.0, 0.0], CORRECT, "none")
    expected, _ = compute_grpo_vectorized_outcome_advantage(rewards(1.0, 0.0), MASK, np.array(["g", "g"], dtype=object))
    torch.testing.assert_close(adv, expected, rtol=0, atol=1e-6)


def test_unknown_steps_keep_advantage():
    adv = run([1.0, 0.0], [[-1, -1, -1], [-1, -1, -1]], "symmetric")
    expected = run([1.0, 0.0], CORRECT, "none")
    torch.testing.assert_close(adv, expected)


def test_singleton_and_all_equal_groups_give_zero():
    adv = run([1.0, 0.0], CORRECT, "symmetric", index=["a", "b"])
    assert torch.count_nonzero(adv) == 0
    adv = run([1.0, 1.0], CORRECT, "symmetric")
    assert torch.count_nonzero(adv) == 0


def test_unknown_variant_rejected():
    with pytest.raises(ValueError, match="first_error"):
        run([1.0, 0.0], CORRECT, "bogus")


def test_step_ids_are_not_modified():
    step_ids = STEP_IDS.clone()
    compute_sam_advantage(rewards(1.0, 0.0), MASK, np.array(["g", "g"], dtype=object), step_ids,
                          torch.tensor(CORRECT))
    assert torch.equal(step_ids, STEP_IDS)
    # a read-only expanded view takes the copying path and gives the same result
    expanded = STEP_IDS[:1].expand(2, -1)
    a, _ = compute_sam_advantage(rewards(1.0, 0.0), MASK, np.array(["g", "g"], dtype=object), expanded,
                                 torch.tensor(CORRECT))
    b, _ = compute_sam_advantage(rewards(1.0, 0.0), MASK, np.array(["g", "g"], dtype=object), STEP_IDS.clone(),
                                 torch.tensor(CORRECT))
    torch.testing.assert_close(a, b)


def test_chunked_gather_matches_one_whole_batch_gather(monkeypatch):
    """Several row chunks and a short last one give exactly the unchunked result."""
    from sam_advantage import core

    gen = torch.Generator().manual_seed(0)
    b, t, k = 11, 7, 3
    table = torch.randn(b, k + 1, generator=gen)
    step_ids = torch.randint(-1, k, (b, t), generator=gen)
    mask = (torch.rand(b, t, generator=gen) > 0.2).float()
    expected = table.gather(1, step_ids + 1) * mask
    monkeypatch.setattr(core, "_CHUNK_ELEMENTS", 3 * t)  # chunks of 3 rows: 3+3+3+2
    assert torch.equal(core._gather_shifted(table, step_ids, mask), expected)
    monkeypatch.setattr(core, "_CHUNK_ELEMENTS", 1)  # one row per chunk
    assert torch.equal(core._gather_shifted(table, step_ids, mask), expected)


def _partition(codes):
    first = {}
    return [first.setdefault(int(c), len(first)) for c in codes]


@pytest.mark.parametrize("index", [
    np.array(["b", "a", "b", "c", "a"], dtype=object),   # verl's uids
    np.array(["b", "a", "b", "c", "a"]),                  # numpy unicode array
    ["b", "a", "b", "c", "a"],                            # a list: verl's helper
    torch.tensor([7, 3, 7, 9, 3]),                        # a tensor: verl's helper
    np.array(["b", None, "b", None, 1], dtype=object),    # mixed: verl's helper
])
def test_group_index_groups_like_verl(index):
    from verl.utils.groupwise import as_torch_index

    from sam_advantage.core import group_index

    got = group_index(index, torch.device("cpu"))
    assert got.dtype == torch.long and got.shape == (5,)
    assert _partition(got) == _partition(as_torch_index(index, device="cpu"))


def test_metrics_count_masked_tokens():
    index = np.array(["g", "g"], dtype=object)
    adv, scalars, _ = compute_sam_advantage_and_keep(rewards(1.0, 0.0), MASK, index, STEP_IDS.clone(),
                                                     torch.tensor(CORRECT), "symmetric")
    m = sam_metrics(adv, scalars, MASK, torch.tensor(CORRECT))
    assert m["sam/masked_frac_pos"] == pytest.approx(2 / 7)
    assert m["sam/masked_frac_neg"] == pytest.approx(2 / 7)
    assert m["sam/step0_acc"] == 1.0 and m["sam/step1_acc"] == 0.0 and m["sam/step2_acc"] == 1.0
    assert m["sam/step_acc"] == pytest.approx(3 / 5)


@st.composite
def batches(draw):
    groups = draw(st.integers(1, 4))
    group_size = draw(st.integers(1, 4))
    b = groups * group_size
    t = draw(st.integers(1, 12))
    k = draw(st.integers(0, 4))
    seed = draw(st.integers(0, 2**16))
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(0, t + 1, (b,), generator=g)
    mask = (torch.arange(t)[None] < lengths[:, None]).float()
    scores = torch.randint(0, 3, (b,), generator=g).float() * draw(st.sampled_from([1.0, 0.5, -1.0]))
    rew = torch.zeros(b, t)
    last = (lengths - 1).clamp(min=0)
    rew[torch.arange(b), last] = scores * (lengths > 0)
    step_ids = torch.randint(-1, max(k, 0), (b, t), generator=g) if k > 0 else torch.full((b, t), -1)
    correct = torch.randint(-1, 2, (b, k), generator=g)
    index = np.array([f"u{i // group_size}" for i in range(b)], dtype=object)
    return rew, mask, index, step_ids, correct


@settings(max_examples=200, deadline=None)
@given(batches(), st.sampled_from(VARIANTS), st.booleans())
def test_properties(batch, variant, norm):
    rew, mask, index, step_ids, correct = batch
    adv, _ = compute_sam_advantage(rew, mask, index, step_ids.clone(), correct, variant, norm)
    base, _ = compute_sam_advantage(rew, mask, index, step_ids.clone(), correct, "none", norm)
    assert torch.isfinite(adv).all()
    assert torch.all(adv[mask == 0] == 0)
    # masking only zeroes tokens: never flips a sign, never scales
    assert torch.all((adv == 0) | (adv == base))
    assert torch.all(adv * base >= 0)
    # `none` equals verl's vectorised GRPO wherever the group has two or more responses
    grpo, _ = compute_grpo_vectorized_outcome_advantage(rew, mask, index, norm_adv_by_std_in_grpo=norm)
    sizes = {u: (index == u).sum() for u in set(index)}
    multi = torch.tensor([sizes[u] > 1 for u in index])
    torch.testing.assert_close(base[multi], grpo[multi], rtol=0, atol=1e-6)
    assert torch.all(base[~multi] == 0)
    # all-equal groups give zero
    for u in set(index):
        rows = torch.tensor(index == u)
        s = rew[rows].sum(-1)
        if torch.all(s == s[0]):
            assert torch.all(adv[rows] == 0)
