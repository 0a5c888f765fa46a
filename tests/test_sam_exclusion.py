"""`exclude_masked_from_loss`: rescaled advantages over the full mask give verl's loss over the reduced mask."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from verl.trainer.ppo.core_algos import agg_loss, compute_policy_loss_vanilla

from sam_advantage.core import (
    LOSS_AGG_RESCALE,
    VARIANTS,
    compute_sam_advantage,
    compute_sam_advantage_and_keep,
)


class ActorLossConfig(dict):
    """What verl's vanilla policy loss reads from the actor config: clip ratios, global batch info."""

    def __init__(self):
        super().__init__(clip_ratio=0.2, clip_ratio_low=0.2, clip_ratio_high=0.28, clip_ratio_c=3.0)
        self.__dict__.update(self, global_batch_info={})


def kept_mask(step_ids, response_mask, keep):
    """The authors' loss mask: the response mask without the tokens of masked steps."""
    table = torch.cat([torch.ones(keep.shape[0], 1, dtype=torch.bool), keep], dim=-1)
    return response_mask * table.gather(1, step_ids + 1).to(response_mask.dtype)


@st.composite
def batches(draw, every_sequence_keeps_a_token=True):
    groups = draw(st.integers(1, 4))
    group_size = draw(st.integers(2, 4))
    b = groups * group_size
    t = draw(st.integers(2, 16))
    k = draw(st.integers(1, 4))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    lengths = torch.randint(1, t + 1, (b,), generator=g)
    mask = (torch.arange(t)[None] < lengths[:, None]).float()
    rew = torch.zeros(b, t)
    rew[torch.arange(b), lengths - 1] = torch.randint(0, 2, (b,), generator=g).float()
    step_ids = torch.randint(-1, k, (b, t), generator=g)
    if every_sequence_keeps_a_token:
        step_ids[torch.arange(b), lengths - 1] = -1  # the answer token lies outside every step
    correct = torch.randint(-1, 2, (b, k), generator=g)
    index = np.array([f"u{i // group_size}" for i in range(b)], dtype=object)
    log_prob = torch.randn(b, t, generator=g) * 0.3
    old_log_prob = log_prob + torch.randn(b, t, generator=g) * 0.3
    return rew, mask, index, step_ids, correct, log_prob, old_log_prob


def policy_loss(old_log_prob, log_prob, advantages, mask, mode):
    loss, _ = compute_policy_loss_vanilla(old_log_prob, log_prob, advantages, mask, mode, ActorLossConfig())
    return loss


@settings(max_examples=150, deadline=None)
@given(batches(), st.sampled_from(VARIANTS), st.sampled_from(["seq-mean-token-mean", "token-mean"]))
def test_rescaled_advantages_over_the_full_mask_equal_the_reduced_mask(batch, variant, mode):
    rew, mask, index, step_ids, correct, log_prob, old_log_prob = batch
    plain, _, keep = compute_sam_advantage_and_keep(rew, mask, index, step_ids, correct, variant)
    excluded, _ = compute_sam_advantage(rew, mask, index, step_ids, correct, variant,
                                        exclude_masked_from_loss=True, loss_agg_mode=mode)
    reduced = kept_mask(step_ids, mask, keep)
    # verl's own aggregation of any per-token loss linear in the advantage...
    torch.testing.assert_close(agg_loss(excluded, mask, mode), agg_loss(plain, reduced, mode))
    # ...and its clipped PPO loss (linear in the advantage for a fixed ratio)
    torch.testing.assert_close(policy_loss(old_log_prob, log_prob, excluded, mask, mode),
                               policy_loss(old_log_prob, log_prob, plain, reduced, mode))
    # masked tokens stay at zero, kept tokens only change by a positive factor per sequence
    assert torch.all((excluded == 0) == (plain == 0))
    assert torch.all(excluded * plain >= 0)


@settings(max_examples=50, deadline=None)
@given(batches(), st.sampled_from(VARIANTS),
       st.sampled_from([m for m, r in LOSS_AGG_RESCALE.items() if r == "none"]))
def test_token_sum_modes_need_no_rescaling(batch, variant, mode):
    rew, mask, index, step_ids, correct, log_prob, old_log_prob = batch
    plain, _, keep = compute_sam_advantage_and_keep(rew, mask, index, step_ids, correct, variant)
    excluded, _ = compute_sam_advantage(rew, mask, index, step_ids, correct, variant,
                                        exclude_masked_from_loss=True, loss_agg_mode=mode)
    assert torch.equal(excluded, plain)
    reduced = kept_mask(step_ids, mask, keep)
    torch.testing.assert_close(agg_loss(plain, mask, mode), agg_loss(plain, reduced, mode))


def test_a_fully_masked_sequence_still_counts_in_the_mean_over_sequences():
    """Documented limit: a sequence with no kept token adds 0 but stays in verl's sequence count."""
    rew = torch.zeros(2, 4)
    rew[0, 3] = 1.0  # response 0 right, response 1 wrong
    mask = torch.ones(2, 4)
    step_ids = torch.tensor([[0, 0, -1, -1], [0, 0, 0, 0]])  # response 1 is all one step
    correct = torch.tensor([[1], [1]])  # response 1's step is right: masked (A < 0)
    index = np.array(["g", "g"], dtype=object)
    plain, _, keep = compute_sam_advantage_and_keep(rew, mask, index, step_ids, correct, "symmetric")
    excluded, _ = compute_sam_advantage(rew, mask, index, step_ids, correct, "symmetric",
                                        exclude_masked_from_loss=True, loss_agg_mode="seq-mean-token-mean")
    assert torch.count_nonzero(excluded[1]) == 0
    reduced = kept_mask(step_ids, mask, keep)
    full = agg_loss(excluded, mask, "seq-mean-token-mean")
    authors = agg_loss(plain, reduced, "seq-mean-token-mean")
    torch.testing.assert_close(full, authors / 2)  # one of the two sequences kept a token


def test_exclusion_off_changes_nothing_and_unknown_mode_is_rejected():
    rew = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    mask = torch.ones(2, 2)
    step_ids = torch.tensor([[0, -1], [0, -1]])
    correct = torch.tensor([[0], [1]])
    index = np.array(["g", "g"], dtype=object)
    a, _ = compute_sam_advantage(rew, mask, index, step_ids, correct)
    b, _ = compute_sam_advantage(rew, mask, index, step_ids, correct, loss_agg_mode="seq-mean-token-mean")
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="seq-mean-token-mean"):
        compute_sam_advantage(rew, mask, index, step_ids, correct, loss_agg_mode="mean")


def step_token_counts(step_ids, response_mask, num_steps):
    """Tokens of each step under the response mask [B, K], counted step by step."""
    return torch.stack([((step_ids == k).float() * response_mask).sum(-1) for k in range(num_steps)], dim=-1)


def test_step_token_counts_from_ranges_match_the_count_over_step_ids():
    """The trainer mode's shortcut: counts from the token ranges under a prefix response mask."""
    from sam_advantage.token_spans import ranges_tensor, step_ids_from_ranges, step_token_counts_from_ranges

    rows = [[(0, 3), (3, 7), (9, 12)], [(0, 0), (2, 5), (5, 9)], [(1, 4)]]  # row 2 lacks steps 1, 2
    lengths = torch.tensor([10.0, 6.0, 12.0])  # row 0's last step and row 1's last two run past the mask
    mask = (torch.arange(12)[None] < lengths[:, None]).float()
    expected = step_token_counts(step_ids_from_ranges(rows, 12), mask, 3)
    got = step_token_counts_from_ranges(ranges_tensor(rows, 3), mask.sum(dim=-1))
    assert torch.equal(got, expected)
    assert got.tolist() == [[3, 4, 1], [0, 3, 1], [3, 0, 0]]


@pytest.mark.parametrize("mode", ["seq-mean-token-mean", "token-mean"])
def test_exclusion_from_token_ranges_equals_exclusion_from_step_ids(mode):
    from sam_advantage.token_spans import ranges_tensor, step_ids_from_ranges

    g = torch.Generator().manual_seed(2)
    b, t, k = 12, 20, 3
    lengths = torch.randint(4, t + 1, (b,), generator=g)
    mask = (torch.arange(t)[None] < lengths[:, None]).float()
    rew = torch.zeros(b, t)
    rew[torch.arange(b), lengths - 1] = torch.randint(0, 2, (b,), generator=g).float()
    cuts = torch.sort(torch.randint(0, t + 1, (b, 2 * k), generator=g), dim=-1).values
    rows = [[(int(c[2 * i]), int(c[2 * i + 1])) for i in range(k)] for c in cuts]
    step_ids = step_ids_from_ranges(rows, t)
    correct = torch.randint(-1, 2, (b, k), generator=g)
    index = np.array([f"u{i // 4}" for i in range(b)], dtype=object)
    args = (rew, mask, index, step_ids, correct, "paper")
    from_ids, _, _ = compute_sam_advantage_and_keep(*args, exclude_masked_from_loss=True, loss_agg_mode=mode)
    from_ranges, _, _ = compute_sam_advantage_and_keep(*args, exclude_masked_from_loss=True, loss_agg_mode=mode,
                                                       token_ranges=ranges_tensor(rows, k))
    torch.testing.assert_close(from_ranges, from_ids)
    assert torch.count_nonzero(from_ids) > 0
