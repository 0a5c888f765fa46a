"""Stepwise Advantage Masking (SAM), vectorised in pure torch.

GRPO gives every token of response i the same advantage A_i. SAM keeps that
outcome advantage but masks it inside reasoning steps whose correctness
contradicts its sign, so credit goes to the steps that earned it:

* ``symmetric`` (default): A_i > 0 keeps correct steps and zeroes wrong ones
  (lucky wrong reasoning is not reinforced); A_i < 0 keeps wrong steps and
  zeroes correct ones (correct reasoning is not punished).
* ``negative_only``: only the second half (protect correct steps of failed responses).
* ``first_error``: A_i > 0 zeroes every step from the first wrong step on;
  A_i < 0 zeroes every step before the first wrong step (the error and what
  follows carry the blame). With no wrong step nothing is masked for A_i > 0
  and every known step is masked for A_i < 0 (the answer alone carries the blame).
* ``paper``: the rule of the paper authors' code, generalised from its two
  label segments to K steps. A_i > 0 zeroes a wrong step unless a later step
  is correct (the later step repaired it, as the business-rule calibration
  repairs a wrong initial label); A_i < 0 zeroes every correct step. The
  authors key on whether the final label is correct; under the binary outcome
  reward that is the sign of A_i wherever A_i is non-zero (a correct response
  scores 1, so it lies above its group's mean unless the whole group is
  correct, where A_i = 0 and nothing is masked either way; with the ordinal
  reward a near miss can have A_i > 0, and there the two differ). Their code leaves a
  malformed response unmasked: the SAM trainer mode marks such a response's
  steps unknown (`unmasks_malformed`).
* ``none``: plain GRPO.

Tokens outside every step (the answer span, preamble, tokens straddling a step
boundary) and steps of unknown correctness always keep A_i, in every variant.
The mask is applied after group normalisation, without renormalisation.

By default the masked tokens keep a zero advantage inside the loss, so they
still count in its denominator. With ``exclude_masked_from_loss`` they leave
it, as in the authors' code (which drops them from the policy-loss mask): the
kept tokens' advantages are rescaled so that verl's loss over the full response
mask equals its loss over the reduced mask (`loss_scale`). The PPO clipped
objective is linear in the advantage for a fixed probability ratio, which makes
the rescaling exact where `loss_scale` says so.

Singleton groups get a zero advantage: with one response there is nothing to
compare against (verl's fallback of mean 0, std 1 would turn the raw reward
itself into an advantage). For groups of two or more the outcome advantage is
exactly verl's ``grpo_vectorized``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from verl.utils.groupwise import as_torch_index, group_mean_std

from reward.contracts import CORRECT, UNKNOWN, WRONG
from sam_advantage.token_spans import response_ends, step_token_counts

VARIANTS = ("symmetric", "negative_only", "first_error", "paper", "none")
# verl's loss aggregation modes (`actor_rollout_ref.actor.loss_agg_mode`) and
# how excluding masked tokens from the loss denominator is done in each.
SEQUENCE_MEAN, BATCH_MEAN, NO_RESCALE = "per sequence", "over the batch", "none"
LOSS_AGG_RESCALE = {
    "seq-mean-token-mean": SEQUENCE_MEAN,  # L_i / L_kept_i
    "token-mean": BATCH_MEAN,  # N / N_kept
    # A token sum has no token count in its denominator: a zero advantage
    # already takes the token out of the loss.
    "token-sum": NO_RESCALE,
    "seq-mean-token-sum": NO_RESCALE,
    "seq-mean-token-sum-norm": NO_RESCALE,
}


def check_variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown SAM variant {variant!r}; choose one of {VARIANTS}")
    return variant


def check_loss_agg_mode(loss_agg_mode: str) -> str:
    if loss_agg_mode not in LOSS_AGG_RESCALE:
        raise ValueError(f"unknown loss_agg_mode {loss_agg_mode!r}; choose one of {tuple(LOSS_AGG_RESCALE)}")
    return loss_agg_mode


def unmasks_malformed(variant: str) -> bool:
    """Whether the variant leaves a malformed response unmasked (the authors' code does)."""
    return variant == "paper"


def group_index(index: Sequence[Any] | np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Group number per response, long [B].

    verl's uids are strings. For an array of strings, pandas' hash factorisation
    numbers them in one pass, about 10x faster than verl's ``as_torch_index``
    (which sorts with ``np.unique`` after trying to read the strings as integers):
    0.07 against 0.84 ms for 4096 uids, a third of verl's whole GRPO estimator.
    Strings are compared as strings ("1" and "01" are two groups, where verl
    would coerce both to 1). Every other kind of index goes through verl's helper.
    """
    import pandas as pd  # here, not at the top: the plugin imports this module in every verl process

    if (isinstance(index, np.ndarray) and index.ndim == 1 and index.dtype.kind in "OU"
            and pd.api.types.infer_dtype(index, skipna=False) == "string"):
        codes, _ = pd.factorize(index)
        return torch.from_numpy(codes.astype(np.int64, copy=False)).to(device)
    return as_torch_index(index, device=device)


def group_outcome_advantage(
    token_level_rewards: torch.Tensor,
    index: Sequence[Any] | np.ndarray | torch.Tensor,
    norm_adv_by_std_in_grpo: bool = True,
    epsilon: float = 1e-6,
) -> torch.Tensor:
    """Per-response GRPO advantage [B] (singleton groups -> 0)."""
    scores = token_level_rewards.sum(dim=-1)
    g = group_index(index, scores.device)
    mean_g, std_g, count_g = group_mean_std(scores, g, eps=0.0, device=scores.device)
    centred = scores - mean_g[g]
    scalars = centred / (std_g[g] + epsilon) if norm_adv_by_std_in_grpo else centred
    return torch.where(count_g[g] > 1, scalars, torch.zeros_like(scalars))


def step_keep_table(scalars: torch.Tensor, step_correct: torch.Tensor, variant: str) -> torch.Tensor:
    """Keep factor (1 or 0) per (response, step) [B, K], from the advantage sign."""
    check_variant(variant)
    step_correct = step_correct.to(device=scalars.device)
    keep = torch.ones(step_correct.shape, dtype=torch.bool, device=scalars.device)
    if variant == "none" or step_correct.numel() == 0:
        return keep
    pos = (scalars > 0).unsqueeze(-1)
    neg = (scalars < 0).unsqueeze(-1)
    correct = step_correct == CORRECT
    wrong = step_correct == WRONG
    if variant == "symmetric":
        keep &= ~((pos & wrong) | (neg & correct))
    elif variant == "negative_only":
        keep &= ~(neg & correct)
    elif variant == "paper":
        # correct_after[:, k]: some step after k is correct (a reversed running "any").
        correct_from = correct.int().flip(-1).cummax(dim=-1).values.flip(-1).bool()
        correct_after = torch.cat([correct_from[:, 1:], torch.zeros_like(correct_from[:, :1])], dim=-1)
        keep &= ~((pos & wrong & ~correct_after) | (neg & correct))
    else:  # first_error
        num_steps = step_correct.shape[-1]
        has_wrong = wrong.any(dim=-1, keepdim=True)
        first = torch.where(has_wrong, wrong.int().argmax(dim=-1, keepdim=True),
                            torch.full_like(has_wrong, num_steps, dtype=torch.long))
        k = torch.arange(num_steps, device=scalars.device).unsqueeze(0)
        known = step_correct != UNKNOWN  # unknown steps keep A_i, wherever they lie
        keep &= ~(known & ((pos & (k >= first)) | (neg & (k < first))))
    return keep


def loss_scale(
    kept: torch.Tensor,
    lengths: torch.Tensor,
    loss_agg_mode: str,
) -> torch.Tensor:
    """Factor per response [B] on the kept tokens' advantages that takes the masked ones out of the loss.

    ``kept`` [B] counts each row's tokens under the response mask that SAM
    keeps, ``lengths`` [B] the response mask's tokens per row. Under ``seq-mean-token-mean`` verl divides sequence i's token sum by its
    token count L_i: the factor L_i / L_kept_i turns that into a mean over the
    kept tokens. It is exact for every sequence that keeps a token (the answer
    lies outside every step, so a well-formed response always does); a
    sequence whose every token is masked has no kept token to rescale, adds 0
    to the loss, and still counts in verl's mean over sequences (the authors'
    loss would drop it from that mean). Under ``token-mean`` verl divides by the
    tokens of the whole mini-batch: the factor N / N_kept is taken over the batch
    given here, so it is exact when the mini-batch is the batch (one update per
    batch, as in the authors' settings); with smaller mini-batches each one's
    share of masked tokens differs from the batch's and the factor is only the
    batch average. Under the token-sum modes the factor is 1.
    """
    rescale = LOSS_AGG_RESCALE[check_loss_agg_mode(loss_agg_mode)]
    lengths = lengths.to(kept.dtype)
    if rescale == NO_RESCALE:
        return torch.ones_like(lengths)
    if rescale == SEQUENCE_MEAN:
        return torch.where(kept > 0, lengths / kept.clamp(min=1), torch.ones_like(lengths))
    total_kept = kept.sum()
    factor = lengths.sum() / total_kept if total_kept > 0 else torch.ones((), dtype=lengths.dtype)
    return factor.expand_as(lengths)


def compute_sam_advantage_and_keep(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any] | np.ndarray | torch.Tensor,
    step_ids: torch.Tensor | None,
    step_correct: torch.Tensor,
    variant: str = "symmetric",
    norm_adv_by_std_in_grpo: bool = True,
    epsilon: float = 1e-6,
    exclude_masked_from_loss: bool = False,
    loss_agg_mode: str = "token-mean",
    token_ranges: torch.Tensor | None = None,
    lengths: torch.Tensor | None = None,
    ends: torch.Tensor | None = None,
    step_tokens: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Like `compute_sam_advantage`, also returning the scalars [B] and step keep table [B, K].

    ``token_ranges`` (long [B, K, 2], each step's [t0, t1) of response positions,
    steps disjoint; the trainer mode has them) can stand in for
    ``step_ids`` (pass None): the token advantages and the exclusion's step token
    counts then come from the ranges, with no [B, T] step ids at all.
    ``lengths`` is ``response_mask.sum(-1)`` if the caller has it already.
    ``ends`` is `token_spans.response_ends` of the mask if the caller has them
    (the ranges path needs them): where every row's mask is its first L_i tokens
    (``ends == lengths``, single-turn) the advantages end at L_i without a
    multiply by the mask; rows with holes get their masked step tokens counted
    exactly (`token_spans.step_token_counts`). ``step_tokens`` are those counts [B, K], if the
    caller has them (the estimator logs them too).
    """
    check_loss_agg_mode(loss_agg_mode)
    with torch.no_grad():
        if step_ids is None and token_ranges is None:
            raise ValueError("pass the step ids [B, T] or the steps' token ranges [B, K, 2]")
        if step_ids is not None and step_ids.shape != response_mask.shape:
            raise ValueError(f"step_ids shape {tuple(step_ids.shape)} != response_mask shape "
                             f"{tuple(response_mask.shape)}")
        if step_correct.dim() != 2 or step_correct.shape[0] != response_mask.shape[0]:
            raise ValueError(f"step_correct must be [B, K] with B={response_mask.shape[0]}, "
                             f"got {tuple(step_correct.shape)}")
        if token_ranges is not None and tuple(token_ranges.shape) != (*step_correct.shape, 2):
            raise ValueError(f"token_ranges must be [B, K, 2] = {(*step_correct.shape, 2)}, "
                             f"got {tuple(token_ranges.shape)}")
        scalars = group_outcome_advantage(token_level_rewards, index, norm_adv_by_std_in_grpo, epsilon)
        keep = step_keep_table(scalars, step_correct, variant)
        if bool(keep.all()):
            # Nothing masked (variant none, or no step contradicts its sign): GRPO's advantages,
            # one multiply by the mask; the exclusion's factor is 1 with no masked token.
            return scalars.unsqueeze(-1) * response_mask, scalars, keep
        if step_ids is None:
            lengths = response_mask.sum(dim=-1) if lengths is None else lengths
            ends = response_ends(response_mask, lengths) if ends is None else ends
            row_advantage = scalars
            if exclude_masked_from_loss:  # from the ranges: the step token counts are [B, K] arithmetic
                counts = step_token_counts(token_ranges, response_mask, lengths, ends) if step_tokens is None \
                    else step_tokens
                masked = ((~keep).to(lengths.dtype) * counts).sum(dim=-1)
                row_advantage = scalars * loss_scale(lengths - masked, lengths, loss_agg_mode)
            prefix = bool((ends.to(lengths.device) == lengths).all())
            advantages = _advantages_from_ranges(row_advantage, keep, token_ranges, response_mask,
                                                 lengths if prefix else None)
            return advantages, scalars, keep
        # Keep factor per (response, step) [B, 1 + K]; column 0 is for tokens outside every step.
        table = torch.cat([torch.ones_like(scalars).unsqueeze(-1), keep.to(scalars.dtype)], dim=-1)
        if exclude_masked_from_loss:
            return _gather_excluded(table, step_ids, response_mask, scalars, loss_agg_mode, lengths), scalars, keep
        # one gather over the [B, T] step ids; it applies the response mask too
        return _gather_shifted(table.mul_(scalars.unsqueeze(-1)), step_ids, response_mask), scalars, keep


# Elements per chunk of shifted int64 step ids (4 MB): the buffer stays in cache
# between the shift and the gather, and it is small enough that the C allocator
# does not map fresh pages for it (and fault them in) on every call. Measured on
# 2 cores (benchmarks/bench_sam.py, docs/measurements.md): 2**18..2**20 alike,
# 2**21 twice as slow (and it slowed the GRPO baseline timed after it too).
_CHUNK_ELEMENTS = 1 << 19


def _gather_shifted(table: torch.Tensor, step_ids: torch.Tensor, response_mask: torch.Tensor,
                    each_chunk=None) -> torch.Tensor:
    """``table.gather(1, step_ids + 1) * response_mask``, chunked over rows.

    The shifted ids of one chunk go to a small buffer reused for every chunk:
    a B*T int64 temporary would cost more than the gather itself.
    ``each_chunk(r0, r1, values)`` is called on each chunk's result while it is in cache.
    """
    step_ids = step_ids.to(device=table.device)
    out = torch.empty(step_ids.shape, dtype=table.dtype, device=table.device)
    rows = max(1, _CHUNK_ELEMENTS // max(1, step_ids.shape[1]))
    buf = torch.empty((min(rows, step_ids.shape[0]), step_ids.shape[1]), dtype=torch.long, device=table.device)
    for r0 in range(0, step_ids.shape[0], rows):
        r1 = min(step_ids.shape[0], r0 + rows)
        ids, dst = buf[: r1 - r0], out[r0:r1]
        torch.add(step_ids[r0:r1], 1, out=ids)
        torch.gather(table[r0:r1], 1, ids, out=dst)
        dst.mul_(response_mask[r0:r1])
        if each_chunk is not None:
            each_chunk(r0, r1, dst)
    return out


def _gather_excluded(keep_table: torch.Tensor, step_ids: torch.Tensor, response_mask: torch.Tensor,
                     scalars: torch.Tensor, loss_agg_mode: str, lengths: torch.Tensor | None) -> torch.Tensor:
    """The token advantages with masked tokens out of the loss, from the 0/1 keep table [B, 1 + K].

    While a chunk of `_gather_shifted` is in cache its kept tokens (the
    gathered 1s under the mask) are counted and, where the loss factor is per
    sequence, its rows are scaled by A_i * L_i / L_kept_i (`loss_scale`): a
    count and a scaling over the whole [B, T] afterwards would be two more
    passes over memory. A batch-wide factor (``token-mean``) needs every row's
    count first: one multiply at the end.
    """
    rescale = LOSS_AGG_RESCALE[check_loss_agg_mode(loss_agg_mode)]
    kept = torch.empty(step_ids.shape[0], dtype=keep_table.dtype, device=keep_table.device)
    lengths = (response_mask.sum(dim=-1) if lengths is None else lengths).to(keep_table.dtype)

    def count_and_scale(r0: int, r1: int, values: torch.Tensor) -> None:
        torch.sum(values, dim=-1, out=kept[r0:r1])
        row_scale = scalars[r0:r1]
        if rescale != BATCH_MEAN:
            row_scale = row_scale * loss_scale(kept[r0:r1], lengths[r0:r1], loss_agg_mode)
        values.mul_(row_scale.unsqueeze(-1))

    out = _gather_shifted(keep_table, step_ids, response_mask, count_and_scale)
    if rescale == BATCH_MEAN and kept.numel():
        out.mul_(loss_scale(kept, lengths, loss_agg_mode)[0])
    return out


def _advantages_from_ranges(row_advantage: torch.Tensor, keep: torch.Tensor, token_ranges: torch.Tensor,
                            response_mask: torch.Tensor, prefix_lengths: torch.Tensor | None = None) -> torch.Tensor:
    """The token advantages [B, T]: the row's advantage [B] where a token is kept, 0 in the
    masked steps (``keep`` [B, K] false) given by their token ranges [B, K, 2].

    Which tokens are kept comes from a running count over the row in uint8: 1 from token
    0, each masked non-empty step takes 1 off at its first token and gives it back after
    its last. Steps are disjoint, so the count is always 0 or 1, and wrapping uint8
    arithmetic keeps it exact (-1 is 255). A one-byte running sum and one multiply cost
    about half a float32 running sum of the advantages themselves (and a quarter of the
    memory); building the [B, T] step ids from the ranges in python cost 20x verl's GRPO
    estimator.

    With ``prefix_lengths`` (every row's mask is its first L_i tokens) the count also
    drops to 0 at L_i: the row is 0 from there on, exactly, with no pass that multiplies by
    the mask.
    """
    rows, length = response_mask.shape
    device = response_mask.device
    row_advantage = row_advantage.to(device)
    if length == 0:
        return torch.zeros((rows, length), dtype=row_advantage.dtype, device=device)
    ranges = token_ranges.to(device=device).clamp(0, length)
    if prefix_lengths is not None:
        ends = prefix_lengths.to(device=device, dtype=ranges.dtype).clamp(0, length)
        ranges = torch.minimum(ranges, ends[:, None, None])
    start, end = ranges[..., 0], ranges[..., 1]
    dropped = (~keep.to(device)) & (end > start)
    # -1, +1 and 0 in uint8, on the mask's device (the estimator runs where verl's batch is)
    take, give, nothing = (torch.tensor(v, dtype=torch.uint8, device=device) for v in (255, 1, 0))
    kept = torch.zeros((rows, length), dtype=torch.uint8, device=device)
    kept[:, 0] = 1
    kept.scatter_add_(1, start.clamp(max=length - 1), torch.where(dropped & (start < length), take, nothing))
    # a step that ends at the row's end has nothing after it to give back
    kept.scatter_add_(1, end.clamp(max=length - 1), torch.where(dropped & (end < length), give, nothing))
    if prefix_lengths is not None:
        kept.scatter_add_(1, ends.clamp(max=length - 1)[:, None],
                          torch.where(ends < length, take, nothing)[:, None])
    kept.cumsum_(dim=1)
    # convert, then multiply in place: a mixed-dtype multiply goes through a slower promoting loop
    advantages = kept.to(row_advantage.dtype).mul_(row_advantage.unsqueeze(-1))
    return advantages if prefix_lengths is not None else advantages.mul_(response_mask)


def compute_sam_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Sequence[Any] | np.ndarray | torch.Tensor,
    step_ids: torch.Tensor,
    step_correct: torch.Tensor,
    variant: str = "symmetric",
    norm_adv_by_std_in_grpo: bool = True,
    epsilon: float = 1e-6,
    exclude_masked_from_loss: bool = False,
    loss_agg_mode: str = "token-mean",
) -> tuple[torch.Tensor, torch.Tensor]:
    """GRPO outcome advantage with stepwise masking.

    Args:
        token_level_rewards: float [B, T], the outcome reward on the last token.
        response_mask: float [B, T].
        index: group id per response (verl's ``uid``), B hashables.
        step_ids: long [B, T], the 0-based step of each token, -1 outside every step.
        step_correct: long [B, K], 1 correct, 0 wrong, -1 unknown or absent.
        variant: one of `VARIANTS`.
        exclude_masked_from_loss: take masked tokens out of the loss denominator
            by rescaling the kept tokens' advantages (`loss_scale`).
        loss_agg_mode: the run's ``actor_rollout_ref.actor.loss_agg_mode``; it
            decides the rescaling.

    Returns:
        (advantages, returns), both [B, T]; returns equal advantages, as in GRPO.
    """
    advantages, _, _ = compute_sam_advantage_and_keep(
        token_level_rewards, response_mask, index, step_ids, step_correct,
        variant, norm_adv_by_std_in_grpo, epsilon, exclude_masked_from_loss, loss_agg_mode)
    return advantages, advantages


def sam_metrics(
    advantages: torch.Tensor,
    scalars: torch.Tensor,
    response_mask: torch.Tensor,
    step_correct: torch.Tensor,
    prefix: str = "sam/",
) -> dict[str, float]:
    """Fraction of masked tokens among positive and negative responses, step accuracy."""
    mask = response_mask.bool()
    masked = (mask & (advantages == 0)).sum(dim=-1)
    return _metrics_from_counts(masked, mask.sum(dim=-1), scalars, step_correct, prefix)


def sam_step_metrics(
    scalars: torch.Tensor,
    keep: torch.Tensor,
    step_tokens: torch.Tensor,
    lengths: torch.Tensor,
    step_correct: torch.Tensor,
    prefix: str = "sam/",
) -> dict[str, float]:
    """`sam_metrics` from the step keep table [B, K] and the steps' token counts
    under the response mask [B, K]: no pass over [B, T] (the estimator's path)."""
    masked = ((~keep).to(step_tokens.dtype) * step_tokens).sum(dim=-1)
    return _metrics_from_counts(masked, lengths, scalars, step_correct, prefix)


def _metrics_from_counts(masked: torch.Tensor, lengths: torch.Tensor, scalars: torch.Tensor,
                         step_correct: torch.Tensor, prefix: str) -> dict[str, float]:
    """The metrics from masked and valid token counts per response [B].

    A response with a zero advantage has nothing to mask and counts nowhere.
    Every sum is taken at once and read back in one ``tolist``: a float() per
    metric cost more than the whole advantage.
    """
    groups = torch.stack([scalars > 0, scalars < 0, scalars != 0]).to(torch.float64)  # [3, B]
    known = step_correct >= 0
    right = known & (step_correct == CORRECT)
    sums = torch.cat([groups @ masked.to(torch.float64), groups @ lengths.to(torch.float64),
                      known.sum(dim=0).to(torch.float64), right.sum(dim=0).to(torch.float64)]).tolist()
    k = known.shape[-1]
    masked_sums, token_sums, known_k, right_k = sums[:3], sums[3:6], sums[6:6 + k], sums[6 + k:]
    out: dict[str, float] = {}
    for name, m, n in zip(("masked_frac_pos", "masked_frac_neg", "masked_frac"), masked_sums, token_sums):
        out[f"{prefix}{name}"] = m / n if n > 0 else 0.0
    for step, (n, r) in enumerate(zip(known_k, right_k)):
        if n > 0:
            out[f"{prefix}step{step}_acc"] = r / n
    n_known, n_right = sum(known_k), sum(right_k)
    out[f"{prefix}step_acc"] = n_right / n_known if n_known > 0 else 0.0
    out[f"{prefix}verifiable_step_frac"] = n_known / known.numel() if known.numel() else 0.0
    return out
