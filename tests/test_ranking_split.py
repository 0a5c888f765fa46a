"""The ranking splits (`data_prep.ranking`): groups of candidates per query spanning the five
levels, distinct queries, and the leak check covering them."""

from __future__ import annotations

from collections import defaultdict

import pytest

from data_prep import benchmark_lexicon as lex
from data_prep.benchmark import BenchmarkConfig, check_no_leakage, generate_benchmark
from data_prep.ranking import RANK_SPLITS

QUERIES, CANDIDATES = 12, 10


@pytest.fixture(scope="module")
def splits():
    return generate_benchmark(BenchmarkConfig(seed=1, train_size=300, val_size=20, test_random_size=50,
                                              test_longtail_size=120, rank_queries=QUERIES,
                                              rank_candidates=CANDIDATES, sft_size=0, progress=False))


@pytest.mark.parametrize("name", sorted(RANK_SPLITS))
def test_every_query_has_candidates_of_every_level(splits, name):
    rows = splits[name]
    groups = defaultdict(list)
    for r in rows:
        groups[r["query"]].append(r)
    assert len(rows) == QUERIES * CANDIDATES and len(groups) == QUERIES  # distinct query texts
    for group in groups.values():
        assert len(group) == CANDIDATES
        assert sorted({r["label"] for r in group}) == [-1, 0, 1, 2, 3]
        assert len({r["entity"] for r in group}) == 1 and len({r["intent"] for r in group}) == 1
        assert len({(r["title"], r["content"]) for r in group}) == CANDIDATES
        assert {r["case"] for r in group if r["label"] == 0} == {"sibling"}
    assert len({r["id"] for r in rows}) == len(rows)
    held_out = RANK_SPLITS[name]
    assert all(lex.is_heldout(r["entity"]) == held_out for r in rows)
    hard = {r["case"] for r in rows}
    assert {"sibling", "constraint_violated", "keyword_collision"} <= hard


def test_no_pair_repeats_another_split(splits):
    keys = [(r["query"], r["title"], r["content"]) for rows in splits.values() for r in rows]
    assert len(keys) == len(set(keys))


def test_leak_check_covers_the_ranking_splits(splits):
    check_no_leakage(splits)  # rank_longtail is long-tail: its held-out subjects are allowed there
    leaked = dict(splits)
    bad = dict(splits["rank_random"][0])
    bad["content"] = bad["content"] + " " + splits["rank_longtail"][0]["subject"]
    leaked["rank_random"] = [bad] + splits["rank_random"][1:]
    with pytest.raises(ValueError, match="leaks into split 'rank_random'"):
        check_no_leakage(leaked)
    # A held-out subject seen only in rank_longtail is still held out from training splits.
    only = {k: v for k, v in splits.items() if k != "test_longtail"}
    row = dict(only["train"][0], entity=only["rank_longtail"][0]["entity"])
    only["train"] = [row] + only["train"][1:]
    with pytest.raises(ValueError, match="leaks into split 'train'"):
        check_no_leakage(only)


def test_too_few_candidates_is_refused():
    with pytest.raises(ValueError, match="cannot span"):
        generate_benchmark(BenchmarkConfig(seed=1, train_size=20, val_size=5, test_random_size=5,
                                           test_longtail_size=5, rank_queries=2, rank_candidates=4,
                                           sft_size=0, progress=False))
