"""Ranking metrics (`evaluation.ranking`) against hand computations, and `python -m evaluation`
on a ranking split in one-pass score mode (the tiny model)."""

from __future__ import annotations

import json
import math
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from evaluation.ranking import dcg, ndcg_at_k, ranking_key, ranking_metrics, reciprocal_rank

LOG3 = math.log2(3)


def test_ndcg_and_rr_by_hand():
    # gold levels in the model's order -> gains 2^(l+1) - 1
    assert dcg([15, 0, 7], 5) == pytest.approx(15 + 7 / 2)
    assert ndcg_at_k([3, -1, 2], 5) == pytest.approx(18.5 / (15 + 7 / LOG3))
    assert ndcg_at_k([3, -1, 2], 2) == pytest.approx(15 / (15 + 7 / LOG3))
    assert ndcg_at_k([0, 1, 3], 10) == pytest.approx((1 + 3 / LOG3 + 15 / 2) / (15 + 3 / LOG3 + 1 / 2))
    assert ndcg_at_k([3, 2, 1, 0, -1], 5) == pytest.approx(1.0)
    assert ndcg_at_k([-1, -1], 5) is None  # nothing to gain: no ideal order
    assert reciprocal_rank([3, -1, 2]) == 1.0
    assert reciprocal_rank([0, 1, 3]) == pytest.approx(1 / 3)
    assert reciprocal_rank([1, 0, 2], relevant_min=1) == 1.0
    assert reciprocal_rank([1, 0, -1]) is None


def _rec(query, gold, expected=None, pred=None, logprob=None):
    return {"query": query, "gold": gold, "expected": expected, "pred": pred, "logprob": logprob}


def test_ranking_metrics_over_queries_by_hand():
    records = [
        _rec("a", 2, expected=0.1), _rec("a", -1, expected=1.5), _rec("a", 3, expected=2.9),  # 3, -1, 2
        _rec("b", 3, expected=-0.5), _rec("b", 0, expected=2.0), _rec("b", 1, expected=1.0),  # 0, 1, 3
        _rec("c", -1, expected=1.0), _rec("c", -1, expected=0.0),  # nothing relevant: left out
    ]
    m = ranking_metrics(records)
    a = 18.5 / (15 + 7 / LOG3)
    b = (1 + 3 / LOG3 + 15 / 2) / (15 + 3 / LOG3 + 1 / 2)
    assert m["ndcg@5"] == pytest.approx((a + b) / 2) and m["ndcg@10"] == pytest.approx((a + b) / 2)
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    assert (m["queries"], m["queries_skipped"], m["mrr_queries"]) == (3, 1, 2)


def test_generative_order_is_label_then_log_probability():
    # Equal labels are ordered by log-probability; an unread label ranks last.
    recs = [_rec("q", 1, pred=2, logprob=-3.0), _rec("q", 3, pred=2, logprob=-0.5), _rec("q", 2, pred=None),
            _rec("q", 0, pred=0, logprob=-0.1)]
    ranked = [r["gold"] for r in sorted(recs, key=ranking_key, reverse=True)]
    assert ranked == [3, 1, 0, 2]
    # Without log-probabilities, ties keep the file order.
    ties = [_rec("q", 1, pred=2), _rec("q", 3, pred=2)]
    assert ranking_metrics(ties)["mrr"] == pytest.approx(1 / 2)


def test_evaluation_cli_reports_ranking_on_a_ranking_split(tmp_path, capsys):
    import torch

    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.writer import write_splits
    from evaluation.__main__ import main as eval_main
    from model_zoo import resolve_model

    splits = generate_benchmark(BenchmarkConfig(seed=2, train_size=20, val_size=5, test_random_size=5,
                                                test_longtail_size=20, rank_queries=3, rank_candidates=5,
                                                sft_size=0, progress=False))
    write_splits(splits, tmp_path / "bench")
    tiny = resolve_model("tiny")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "eval"
        assert eval_main(["--model", str(tiny), "--data", str(tmp_path / "bench" / "rank_random.parquet"),
                          "--out", str(out), "--mode", "score", "--device", "cpu", "--batch-size", "4",
                          "--no-progress"]) == 0
    finally:
        torch.set_num_threads(threads)
    m = json.loads((out / "metrics.json").read_text())
    assert m["mode"] == "score" and m["n"] == 15 and m["pairs_per_s"] > 0
    preds = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(math.isclose(sum(p["probs"].values()), 1.0, abs_tol=1e-5) for p in preds)
    assert all(p["pred"] in (-1, 0, 1, 2, 3) and p["format_ok"] for p in preds)
    r = m["ranking"]
    assert (r["queries"], r["candidates_per_query"], r["queries_skipped"]) == (3, 5.0, 0)
    expected = ranking_metrics(preds)  # the same numbers from the written predictions
    assert r["ndcg@10"] == pytest.approx(expected["ndcg@10"]) and r["mrr"] == pytest.approx(expected["mrr"])
    assert 0 < r["ndcg@5"] <= 1 and 0 < r["mrr"] <= 1
    assert "NDCG@10" in capsys.readouterr().out and "## Ranking (3 queries" in (out / "summary.md").read_text()


def test_greedy_generation_records_the_mean_token_log_probability():
    """The log-probability that orders equal labels is the model's own: recomputed here from one
    teacher-forced pass over prompt + response."""
    import torch

    from evaluation.generation import SamplingConfig, load_generator
    from model_zoo import resolve_model

    gen = load_generator(str(resolve_model("tiny")), "hf", "cpu", batch_size=3)
    prompts = [gen.tokenizer(t)["input_ids"] for t in ("query: hotpot", "a longer query about ramen in tokyo", "x")]
    outs = gen.generate(prompts, SamplingConfig(max_new_tokens=6), progress=False)
    for ids, out in zip(prompts, outs):
        new = gen.tokenizer(out.text, add_special_tokens=False)["input_ids"]
        assert out.logprob is not None and out.logprob < 0
        # Re-tokenising the text may differ from the generated ids; use the ids generate produced.
        with torch.inference_mode():
            full = gen.model.generate(torch.tensor([ids]), max_new_tokens=6, do_sample=False,
                                      pad_token_id=gen.tokenizer.pad_token_id)[0].tolist()
            tokens = full[len(ids):][:out.num_tokens]
            logits = gen.model(torch.tensor([ids + tokens])).logits[0].float()
        logp = torch.log_softmax(logits, -1)
        own = [logp[len(ids) - 1 + k, t].item() for k, t in enumerate(tokens)]
        assert out.logprob == pytest.approx(sum(own) / len(own), abs=1e-4), new
    sampled = gen.generate(prompts[:1], SamplingConfig(max_new_tokens=4, temperature=1.0), progress=False)
    assert sampled[0].logprob is None
