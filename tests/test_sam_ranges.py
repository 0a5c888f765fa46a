"""SAM from the steps' token ranges (the estimator's path) equals SAM from the [B, T] step ids."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from sam_advantage.core import VARIANTS, compute_sam_advantage_and_keep, sam_metrics, sam_step_metrics
from sam_advantage.token_spans import ranges_tensor, step_ids_from_ranges, step_token_counts_from_ranges

MODES = [(False, "token-mean"), (True, "token-mean"), (True, "seq-mean-token-mean")]


@st.composite
def batches(draw):
    """Disjoint step ranges (adjacent, empty, past the mask or past the row), prefix masks, groups of 2-4."""
    groups, group_size = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    b, t, k = groups * group_size, draw(st.integers(1, 16)), draw(st.integers(0, 4))
    rows = []
    for _ in range(b):
        cuts = sorted(draw(st.lists(st.integers(0, t + 2), min_size=2 * k, max_size=2 * k)))
        empty = draw(st.lists(st.booleans(), min_size=k, max_size=k))
        rows.append([(0, 0) if e else (cuts[2 * i], cuts[2 * i + 1]) for i, e in enumerate(empty)])
    lengths = torch.tensor(draw(st.lists(st.integers(0, t), min_size=b, max_size=b)))
    mask = (torch.arange(t)[None] < lengths[:, None]).float()
    rewards = torch.zeros(b, t)
    rewards[:, -1] = torch.tensor(draw(st.lists(st.sampled_from([0.0, 0.5, 1.0]), min_size=b, max_size=b)))
    correct = torch.tensor(draw(st.lists(st.lists(st.integers(-1, 1), min_size=k, max_size=k),
                                         min_size=b, max_size=b)), dtype=torch.long).reshape(b, k)
    index = np.array([f"g{i // group_size}" for i in range(b)], dtype=object)
    return rewards, mask, index, rows, correct


@settings(max_examples=150, deadline=None)
@given(batches(), st.sampled_from(VARIANTS), st.sampled_from(MODES))
def test_advantages_from_ranges_equal_advantages_from_step_ids(batch, variant, mode):
    rewards, mask, index, rows, correct = batch
    exclude, agg = mode
    t, k = mask.shape[1], correct.shape[1]
    kwargs = dict(exclude_masked_from_loss=exclude, loss_agg_mode=agg)
    from_ids, scalars, keep = compute_sam_advantage_and_keep(
        rewards, mask, index, step_ids_from_ranges(rows, t), correct, variant, **kwargs)
    from_ranges, _, _ = compute_sam_advantage_and_keep(
        rewards, mask, index, None, correct, variant, token_ranges=ranges_tensor(rows, k), **kwargs)
    assert torch.equal(from_ranges, from_ids)  # exact: the running sum only ever adds +a, -a or 0
    # holes in the mask (tool tokens of a multi-turn response): the ranges index positions
    holed = mask.clone()
    holed[:, ::3] = 0
    from_ids, _, _ = compute_sam_advantage_and_keep(
        rewards, holed, index, step_ids_from_ranges(rows, t), correct, variant, **kwargs)
    from_ranges, _, _ = compute_sam_advantage_and_keep(
        rewards, holed, index, None, correct, variant, token_ranges=ranges_tensor(rows, k), **kwargs)
    assert torch.equal(from_ranges + 0.0, from_ids + 0.0)  # + 0.0: a zero's sign does not matter


def test_advantages_from_ranges_mask_each_step_and_leave_the_rest():
    """A hand case: row 0 is right with a wrong step 1; row 1 is wrong with a correct step 0 (symmetric)."""
    rewards = torch.zeros(2, 8)
    rewards[0, 7] = 1.0
    mask = torch.tensor([[1.0] * 8, [1.0] * 6 + [0.0] * 2])
    ranges = torch.tensor([[[0, 2], [3, 5]], [[0, 3], [3, 8]]])  # row 1's step 1 runs past its mask
    correct = torch.tensor([[1, 0], [1, 0]])
    adv, scalars, _ = compute_sam_advantage_and_keep(rewards, mask, np.array(["g", "g"], dtype=object), None,
                                                     correct, "symmetric", token_ranges=ranges)
    a, b = scalars.tolist()
    assert a > 0 > b
    torch.testing.assert_close(adv[0], torch.tensor([a, a, a, 0, 0, a, a, a]))
    torch.testing.assert_close(adv[1], torch.tensor([0, 0, 0, b, b, b, 0, 0]))


def test_step_metrics_equal_token_metrics():
    g = torch.Generator().manual_seed(3)
    b, t, k = 16, 24, 3
    lengths = torch.randint(5, t + 1, (b,), generator=g)
    mask = (torch.arange(t)[None] < lengths[:, None]).float()
    rewards = torch.zeros(b, t)
    rewards[torch.arange(b), lengths - 1] = torch.randint(0, 2, (b,), generator=g).float()
    cuts = torch.sort(torch.randint(0, t + 1, (b, 2 * k), generator=g), dim=-1).values
    rows = [[(int(c[2 * i]), int(c[2 * i + 1])) for i in range(k)] for c in cuts]
    correct = torch.randint(-1, 2, (b, k), generator=g)
    index = np.array([f"u{i // 4}" for i in range(b)], dtype=object)
    ranges = ranges_tensor(rows, k)
    adv, scalars, keep = compute_sam_advantage_and_keep(rewards, mask, index, None, correct, "symmetric",
                                                        token_ranges=ranges)
    by_tokens = sam_metrics(adv, scalars, mask, correct)
    lens = mask.sum(dim=-1)
    by_steps = sam_step_metrics(scalars, keep, step_token_counts_from_ranges(ranges, lens), lens, correct)
    assert by_steps.keys() == by_tokens.keys()
    for key, value in by_tokens.items():
        assert by_steps[key] == pytest.approx(value, abs=1e-6), key
    assert by_tokens["sam/masked_frac"] > 0


def test_ranges_tensor_pads_missing_steps_and_refuses_extra_ones():
    assert ranges_tensor([[(1, 3)], []], 2).tolist() == [[[1, 3], [0, 0]], [[0, 0], [0, 0]]]
    assert ranges_tensor([[], []], 0).shape == (2, 0, 2)
    with pytest.raises(ValueError, match="row 1 has 3 step ranges, more than the 2"):
        ranges_tensor([[(0, 1)], [(0, 1), (1, 2), (2, 3)]], 2)


def test_one_of_step_ids_or_ranges_is_needed():
    with pytest.raises(ValueError, match="step ids"):
        compute_sam_advantage_and_keep(torch.zeros(2, 3), torch.ones(2, 3), np.array(["a", "a"], dtype=object),
                                       None, torch.zeros(2, 1, dtype=torch.long))


def test_alignment_check_reads_the_end_of_each_mask():
    from sam_advantage.estimator import check_alignment

    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 1, 1], [0, 0, 0, 0]])  # row 1 has a hole (a tool turn)
    check_alignment(torch.tensor([3, 4, 0]), mask)
    check_alignment(torch.tensor([-1, -1, -1]), mask)  # not recorded: not checked
    check_alignment(None, mask)
    with pytest.raises(RuntimeError, match="row 1 has 4 response tokens, its step data was computed for 3"):
        check_alignment(torch.tensor([3, 3, 0]), mask)


@pytest.mark.parametrize("dtype", [torch.int64, torch.int32, torch.float32, torch.float64, torch.bool, torch.bfloat16])
@pytest.mark.parametrize("width", [1, 9, 300, 5000])
def test_response_ends_equal_a_search_from_the_right(dtype, width):
    """The position-sum shortcut finds the same ends as searching each row from the right, for
    prefix masks, masks with holes and empty rows, in every dtype (wide float32 rows go to float64)."""
    from sam_advantage.token_spans import response_ends

    gen = torch.Generator().manual_seed(width)
    for trial in range(6):
        lengths = torch.randint(0, width + 1, (48,), generator=gen)
        mask = torch.arange(width)[None] < lengths[:, None]
        if trial % 2:  # holes, as tool tokens leave in multi-turn rollouts
            mask &= torch.rand(48, width, generator=gen) > 0.05 * trial
        mask = mask.to(dtype)
        present = mask.bool()
        expected = torch.where(present.any(-1), width - present.flip(-1).to(torch.int8).argmax(-1), 0)
        assert torch.equal(response_ends(mask), expected)
        sums = mask.sum(dim=-1)
        given = sums.clone()
        assert torch.equal(response_ends(mask, given), expected) and torch.equal(given, sums)  # left as given


@pytest.mark.parametrize("hole", [False, True])
def test_the_estimator_equals_sam_from_step_ids_with_and_without_holes_in_the_mask(hole):
    """The registered estimator skips the multiply by the mask only when no row has a hole."""
    from omegaconf import OmegaConf

    from sam_advantage.estimator import StepData, compute_sam_outcome_advantage, step_data_context

    rows = [[(0, 3), (3, 6)], [(1, 4), (5, 7)], [(0, 2), (2, 9)], [(0, 0), (2, 5)]]
    lengths = torch.tensor([8, 7, 9, 6])
    mask = (torch.arange(10)[None] < lengths[:, None]).long()  # int64, as verl slices the attention mask
    if hole:
        mask[1, 4] = 0  # a tool token between two steps: the row still ends at 7
    rewards = torch.zeros(4, 10)
    rewards[torch.arange(4), lengths - 1] = torch.tensor([1.0, 0.0, 0.0, 1.0])
    correct = torch.tensor([[1, 0], [1, 1], [0, -1], [1, 0]])
    index = np.array(["a", "a", "b", "b"], dtype=object)
    algorithm = OmegaConf.create({"sam": {"variant": "symmetric", "exclude_masked_from_loss": True}})
    data = StepData(token_ranges=ranges_tensor(rows, 2), step_correct=correct,
                    loss_agg_mode="seq-mean-token-mean", response_tokens=lengths)
    with step_data_context(data):
        advantages, _ = compute_sam_outcome_advantage(rewards, mask, index, algorithm)
    expected, _, _ = compute_sam_advantage_and_keep(
        rewards, mask, index, step_ids_from_ranges(rows, 10), correct, "symmetric",
        exclude_masked_from_loss=True, loss_agg_mode="seq-mean-token-mean")
    assert torch.equal(advantages + 0.0, expected + 0.0)  # + 0.0: a zero's sign does not matter
    assert (advantages[1, 4] == 0) if hole else (advantages[1, 4] != 0)
    assert int(mask.sum()) == int(lengths.sum()) - int(hole)  # the mask is left as it was
