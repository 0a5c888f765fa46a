"""Ranking splits: N queries, each with M candidate notes spanning the five relevance levels.

The test splits hold one note per query, so no ranking metric can be computed on them. A
ranking split (``rank_random`` from the training distribution, ``rank_longtail`` from the
held-out subjects) fixes a query plan (subject, intent, at least one explicit constraint, so a
constraint violation is possible) and draws its candidates with `_SplitGenerator.make` under
that plan: the label of each candidate is set by construction, as for every other row, and the
hard negatives come with the cases (siblings for 0, keyword collisions and unrelated notes for
-1, passing mentions and other intents for 1, one violated constraint for 2). The labels cycle
through all five levels, so every query has candidates of each level.

Candidates of one query share the query text exactly (the rows group by it: `evaluation.ranking`);
query texts are distinct within a split. Rows are ordinary benchmark rows (ids
``<lang>-s<seed>-<split>-q<query>-c<candidate>``), written by the same writer and covered by the
same leak check (``rank_longtail`` counts as long-tail).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from data_prep.benchmark_lexicon import ENTITIES

if TYPE_CHECKING:  # pragma: no cover
    from data_prep.benchmark import BenchmarkConfig
    from data_prep.criteria import Criteria

RANK_SPLITS = {"rank_random": False, "rank_longtail": True}  # name -> drawn from the held-out subjects
LEVELS = (3, 2, 1, 0, -1)
COLLISION_QUERY_RATE = 0.4  # share of queries drawn among subjects that have a keyword-collision partner


def _query_plan(gen, rng: random.Random) -> dict:
    """A query the five levels can all answer: a subject with siblings, at least one constraint."""
    with_collision = sorted({c[0] for c in gen.collisions})
    while True:
        # Keyword collisions (the hardest -1) exist for few subjects: favour those subjects.
        subject = rng.choice(with_collision if with_collision and rng.random() < COLLISION_QUERY_RATE
                             else gen.subjects)
        if gen._sibling(subject, ()) is None:
            continue
        intent, ctypes = gen._query_shape(ENTITIES[subject], 2)  # label 2's shape has >= 1 constraint
        compare = gen._sibling(subject, ()) if intent == "comparison" else None
        if compare is not None and gen._sibling(subject, [compare]) is None:
            continue  # no sibling left for the label-0 candidate
        return {"entity": subject, "intent": intent, "ctypes": ctypes, "compare_entity": compare,
                "query_values": [gen._query_value(ENTITIES[subject], t) for t in ctypes]}


def generate_ranking_split(name: str, n_queries: int, n_candidates: int, cfg: "BenchmarkConfig",
                           seen: set, criteria: "Criteria") -> list[dict]:
    """``n_queries`` x ``n_candidates`` rows; pairs already in ``seen`` are never drawn again."""
    from data_prep.benchmark import _SplitGenerator

    if n_candidates < len(LEVELS):
        raise ValueError(f"{name}: {n_candidates} candidates per query cannot span the {len(LEVELS)} levels")
    rng = random.Random(f"grm-benchmark:{cfg.seed}:{cfg.lang}:{name}")
    gen = _SplitGenerator(cfg.lang, rng, longtail=RANK_SPLITS[name])
    rows: list[dict] = []
    queries: set[str] = set()
    for q in range(n_queries):
        for _attempt in range(50):
            plan = _query_plan(gen, rng)
            group = _candidates(gen, plan, n_candidates, rng, seen, criteria, f"split {name} query {q}")
            if group[0]["query"] not in queries:
                break
            for row in group:  # a query text met before: give its pairs back, draw another query
                seen.discard((row["query"], row["title"], row["content"]))
        else:
            raise RuntimeError(f"split {name}: could not draw a new distinct query")
        queries.add(group[0]["query"])
        for c, row in enumerate(group):
            row["id"] = f"{cfg.lang}-s{cfg.seed}-{name}-q{q:04d}-c{c:02d}"
            row["reasoning"] = None
        rows.extend(group)
    return rows


def _candidates(gen, plan: dict, n: int, rng: random.Random, seen: set, criteria: "Criteria",
                where: str) -> list[dict]:
    from data_prep.benchmark import draw_new_row

    labels = [LEVELS[i % len(LEVELS)] for i in range(n)]
    rng.shuffle(labels)
    group: list[dict] = []
    for label in labels:
        # One query text for the whole group (the renderer words each draw anew).
        group.append(draw_new_row(gen, label, seen, criteria, where, plan, group[0]["query"] if group else None))
    return group
