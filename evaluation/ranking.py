"""Ranking metrics over candidates grouped by query: NDCG@k with graded gains, and MRR.

* Gains are graded by the relevance level: gain(l) = 2^(l - lowest) - 1, so with labels -1..3
  an irrelevant note gains 0 and a fully relevant one 15. DCG@k = sum_{i<k} gain_i / log2(i + 2);
  NDCG@k = DCG@k of the model's order / DCG@k of the ideal (gold) order. A query whose
  candidates all gain 0 has no ideal order and is left out (counted in ``queries_skipped``).
* MRR: the mean over queries of 1 / (rank of the first relevant candidate), relevant meaning a
  level of at least ``relevant_min`` (default 2: the subject matches and the need is met); a
  query without a relevant candidate is left out of MRR.
* Order: by the ranking key, highest first. Scorers rank by E[y]; generative models by their
  label, then by the response's mean token log-probability when there is one (greedy
  decoding). Candidates with equal keys keep their order in the file (the ranking splits
  shuffle the candidates' levels).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Hashable, Iterable, Mapping, Sequence

KS = (5, 10)
RELEVANT_MIN = 2


def dcg(gains: Sequence[float], k: int) -> float:
    return sum(g / math.log2(i + 2) for i, g in enumerate(gains[:k]))


def ndcg_at_k(ranked_labels: Sequence[int], k: int, lowest: int = -1) -> float | None:
    """NDCG@k of gold labels listed in the model's order (None when no candidate gains)."""
    gains = [2.0 ** (lab - lowest) - 1.0 for lab in ranked_labels]
    ideal = dcg(sorted(gains, reverse=True), k)
    return dcg(gains, k) / ideal if ideal > 0 else None


def reciprocal_rank(ranked_labels: Sequence[int], relevant_min: int = RELEVANT_MIN) -> float | None:
    """1 / rank of the first relevant candidate (None when the query has none)."""
    for i, lab in enumerate(ranked_labels):
        if lab >= relevant_min:
            return 1.0 / (i + 1)
    return None


def group_by_query(records: Iterable[Mapping[str, Any]], query: Callable[[Mapping[str, Any]], Hashable]
                   ) -> dict[Hashable, list[Mapping[str, Any]]]:
    groups: dict[Hashable, list[Mapping[str, Any]]] = {}
    for rec in records:
        groups.setdefault(query(rec), []).append(rec)
    return groups


def ranking_key(rec: Mapping[str, Any]) -> tuple[float, float]:
    """E[y] for a scorer's record; else (label, log-probability), an unread label ranking last."""
    if rec.get("expected") is not None:
        return (float(rec["expected"]), 0.0)
    pred = rec.get("pred")
    logprob = rec.get("logprob")
    return (float(pred) if pred is not None else -math.inf, float(logprob) if logprob is not None else 0.0)


def ranking_metrics(records: Sequence[Mapping[str, Any]], ks: Sequence[int] = KS, lowest: int = -1,
                    relevant_min: int = RELEVANT_MIN,
                    key: Callable[[Mapping[str, Any]], Any] = ranking_key,
                    query: Callable[[Mapping[str, Any]], Hashable] = lambda r: r["query"]) -> dict[str, Any]:
    """``ndcg@k`` per k, ``mrr``, and the query counts, over records with ``gold`` and a query."""
    per_k: dict[int, list[float]] = {k: [] for k in ks}
    rrs: list[float] = []
    groups = group_by_query(records, query)
    skipped = 0
    for group in groups.values():
        ranked = [r["gold"] for r in sorted(group, key=key, reverse=True)]  # sorted() is stable
        for k in ks:
            v = ndcg_at_k(ranked, k, lowest)
            if v is not None:
                per_k[k].append(v)
        if ndcg_at_k(ranked, max(ks), lowest) is None:
            skipped += 1
        rr = reciprocal_rank(ranked, relevant_min)
        if rr is not None:
            rrs.append(rr)
    out: dict[str, Any] = {f"ndcg@{k}": (sum(v) / len(v) if v else None) for k, v in per_k.items()}
    out.update({"mrr": sum(rrs) / len(rrs) if rrs else None, "queries": len(groups),
                "queries_skipped": skipped, "mrr_queries": len(rrs),
                "candidates_per_query": len(records) / len(groups) if groups else None,
                "relevant_min": relevant_min})
    return out


__all__ = ["KS", "RELEVANT_MIN", "dcg", "group_by_query", "ndcg_at_k", "ranking_key", "ranking_metrics",
           "reciprocal_rank"]
