"""The one-pass scorer (`evaluation.label_scorer`): the label-token trie, and the scorer against
greedy decoding of the same model on a fixed set of benchmark pairs."""

from __future__ import annotations

import math

import pytest

from evaluation.label_scorer import ScorerError, build_label_trie, load_scorer

# The tiny tokenizer's answers: "<answer" ">-" "1" "</" ... for -1, "<answer" ">" "3" "</" ... for 3.
TINY = {-1: [383, 649, 20, 267], 0: [383, 33, 19, 267], 1: [383, 33, 20, 267], 2: [383, 33, 21, 267],
        3: [383, 33, 22, 267]}


def test_trie_feeds_the_shared_path_and_reads_each_label_where_it_parts():
    trie = build_label_trie(TINY)
    assert trie.path == (383, 33)
    assert trie.reads[-1] == ((0, 383), (1, 649))  # settled by ">-": its "1" is not read
    assert trie.reads[3] == ((0, 383), (1, 33), (2, 22))
    assert trie.branches == {1: ((649, -1), (33, None)), 2: ((19, 0), (20, 1), (21, 2), (22, 3))}


def test_trie_with_single_label_tokens_feeds_nothing():
    trie = build_label_trie({-1: [9, 1], 0: [5, 1], 3: [8, 1]})
    assert trie.path == ()
    assert trie.reads == {-1: ((0, 9),), 0: ((0, 5),), 3: ((0, 8),)}


def test_trie_refuses_labels_it_cannot_part_in_one_pass():
    with pytest.raises(ScorerError, match="two groups"):
        build_label_trie({0: [1, 2, 3], 1: [1, 2, 4], 2: [1, 5, 6], 3: [1, 5, 7]})
    with pytest.raises(ScorerError, match="prefixes"):
        build_label_trie({1: [4, 2], 2: [4, 2, 3]})


def test_load_scorer_names_a_bad_folder(tmp_path):
    with pytest.raises(ScorerError, match="no such model folder"):
        load_scorer(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScorerError, match="no config.json"):
        load_scorer(str(tmp_path / "empty"))


def _fixed_pairs(n: int):
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.prompt import render_prompt

    rows = generate_benchmark(BenchmarkConfig(seed=7, train_size=5, val_size=5, test_random_size=n,
                                              test_longtail_size=5, sft_size=0, progress=False))["test_random"]
    return [render_prompt(r["query"], r["title"], r["content"], r["tags"]) for r in rows]


@pytest.mark.slow
def test_one_pass_label_equals_greedy_generation_on_a_fixed_set():
    """tiny-label (tiny trained to write the label; about 5 min to build once on 2 busy cores)."""
    from evaluation.generation import SamplingConfig, load_generator, render_prompts
    from evaluation.scoring import parse_direct_label
    from model_zoo import resolve_model

    path = str(resolve_model("tiny-label"))
    scorer = load_scorer(path, device="cpu", batch_size=16)
    prompts = render_prompts(scorer.tokenizer, _fixed_pairs(48))
    scores = scorer.score(prompts)
    texts = [g.text for g in load_generator(path, "hf", "cpu", 16).generate(
        prompts, SamplingConfig(max_new_tokens=8), progress=False)]
    greedy = [parse_direct_label(t, (-1, 0, 1, 2, 3)) for t in texts]
    assert sum(g is not None for g in greedy) >= 45, texts  # it answers in its format
    assert [s.label for s, g in zip(scores, greedy) if g is not None] == [g for g in greedy if g is not None]
    assert len({s.label for s in scores}) >= 2  # not a constant answer: the comparison means something
    for s in scores:
        assert math.isclose(sum(s.probs.values()), 1.0, abs_tol=1e-5)
        assert math.isclose(s.expected, sum(p * lab for lab, p in s.probs.items()), abs_tol=1e-5)
        assert 0.5 < s.label_mass <= 1.0

    # The shared prompt prefix runs once from its cache: the same distribution as a full pass,
    # at batch 1 as at batch 16.
    from evaluation.label_scorer import LabelTokenScorer

    full = LabelTokenScorer(path, device="cpu", batch_size=16, prefix_cache=False).score(prompts)
    single = LabelTokenScorer(path, device="cpu", batch_size=1).score(prompts[:8])
    assert scorer._prefix is not None and len(scorer._prefix) > 100
    for a, b in zip(scores, full):
        assert a.label == b.label and abs(a.expected - b.expected) < 1e-4
    for a, b in zip(single, scores):
        assert a.label == b.label and abs(a.expected - b.expected) < 1e-4
