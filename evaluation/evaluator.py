"""`evaluate`: generate for a labelled parquet, score with the reward, write the report."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from evaluation import metrics as M
from evaluation.generation import SamplingConfig, load_generator, render_prompts
from evaluation.ranking import ranking_metrics
from evaluation.scoring import MODES, SCORERS, DataError, check_gold_labels, load_rows, row_criteria
from reward import get_parser

# Defaults per mode: a judgement needs room for four steps; a student writes one label.
DEFAULT_MAX_NEW_TOKENS = {"generate": 1024, "classify": 8, "score": 1}  # score: no generation


def summarize(records: Sequence[Mapping[str, Any]], labels: Sequence[int] = M.LABELS,
              criteria=None) -> dict[str, Any]:
    """All quality metrics of scored records (see `evaluation.metrics` for the definitions).

    With the rows' ``criteria`` (a `data_prep.criteria.Criteria`), ``implied_accuracy`` is the
    share of responses whose step verdicts imply the gold label by its label rules: how often the
    reasoning was right, whatever answer followed it (None without step-wise records).
    """
    golds = [r["gold"] for r in records]
    preds = [r["pred"] for r in records]
    out = M.classification_report(golds, preds, labels)
    has_steps = any(r["num_verifiable"] for r in records)
    out.update({
        "step_accuracy": M.step_accuracy((r["num_correct"] for r in records),
                                         (r["num_verifiable"] for r in records)),
        "per_step_accuracy": M.per_step_accuracy(
            [(s["name"], s["verifiable"], s["correct"]) for s in r["steps"]] for r in records)
        if has_steps else {},
        "format_error_rate": 1.0 - M.mean(float(r["format_ok"]) for r in records) if records else None,
        "format_errors": M.format_error_counts(r["format_error"] for r in records),
        "mean_reward": M.mean(r["score"] for r in records),
        # Verdicts that imply the predicted label, among responses where that is decidable.
        "consistency_rate": M.mean(float(r["consistent"]) for r in records if r["consistent"] >= 0),
        "implied_accuracy": M.mean(float(_implied(criteria, r) == r["gold"]) for r in records)
        if has_steps and criteria is not None else None,
        "n": len(records),
    })
    return out


def _implied(criteria, record: Mapping[str, Any]) -> int | None:
    """The label a response's step verdicts imply by the criteria's label rules (None: none does)."""
    return criteria.label_from_verdicts({s["name"]: s["verdict"] for s in record["steps"] if s.get("verdict")})


def _labels_of(rows: Sequence[Mapping[str, Any]]) -> tuple[int, ...]:
    """The confusion-matrix order: the criteria's labels, highest first (3, 2, 1, 0, -1)."""
    if not rows:
        return M.LABELS
    return tuple(sorted(get_parser(row_criteria(rows[0])).label_values, reverse=True))


def _criteria_of(rows: Sequence[Mapping[str, Any]]):
    return get_parser(row_criteria(rows[0])).criteria if rows else None


def default_out_dir(model: str, data: str) -> Path:
    from model_zoo import cache_dir

    name = Path(str(model).rstrip("/")).name or "model"
    return cache_dir() / "eval" / f"{name}__{Path(data).stem}"


def evaluate(
    model: Any,
    data: str | os.PathLike,
    out_dir: str | os.PathLike | None = None,
    *,
    max_examples: int | None = None,
    batch_size: int = 16,
    max_new_tokens: int | None = None,
    backend: str = "auto",
    device: str = "auto",
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int = 0,
    mode: str = "generate",
    reward_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
    write: bool = True,
    ranking: bool | None = None,
) -> dict[str, Any]:
    """Evaluate a model on a labelled RL parquet and return the metrics dict.

    ``model`` is a model folder, a built-in name of `model_zoo` ("tiny"), or a
    generator from `evaluation.generation.load_generator` (reuse one loaded
    model for several test files; ``backend``/``device``/``batch_size`` are then
    its own). With ``write`` the report files go to ``out_dir`` (default:
    ``<cache>/eval/<model>__<data>``): metrics.json, summary.md,
    predictions.jsonl, confusion_matrix.png. The metrics dict also holds the
    ``out_dir`` it was written to.

    ``mode="score"`` reads a label-only student in one forward pass per pair
    (`evaluation.label_scorer`; ``model`` may also be a loaded scorer): no generation, each
    record also holds ``expected`` (E[y]) and ``probs``. ``ranking`` adds ``metrics["ranking"]``
    (NDCG@5, NDCG@10, MRR over the rows grouped by query, `evaluation.ranking`); by default it
    is on for the benchmark's ranking splits (rank_random, rank_longtail).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if max_new_tokens is None:
        max_new_tokens = DEFAULT_MAX_NEW_TOKENS[mode]
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    data = Path(data)
    rows = load_rows(data, max_examples)
    if not rows:
        raise DataError(f"{data}: no rows to evaluate")
    check_gold_labels(rows, data)  # a bad label found now, not after all the generation

    if mode == "score":
        generator, records, prompt_ids, gen_seconds, generations = _score_one_pass(
            model, rows, device, batch_size, reward_kwargs, progress)
    else:
        if hasattr(model, "generate") and hasattr(model, "tokenizer"):
            generator = model
        else:
            from model_zoo import resolve_model

            generator = load_generator(str(resolve_model(model)), backend, device, batch_size)
        prompt_ids = render_prompts(generator.tokenizer, [row["prompt"] for row in rows])
        cfg = SamplingConfig(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, seed=seed)
        start = time.perf_counter()
        generations = generator.generate(prompt_ids, cfg, progress=progress)
        gen_seconds = time.perf_counter() - start
        if len(generations) != len(rows):
            raise RuntimeError(f"the generator returned {len(generations)} responses for {len(rows)} prompts")
        records = score_all(rows, [g.text for g in generations], mode, reward_kwargs)
        for rec, gen in zip(records, generations):
            rec["num_tokens"], rec["truncated"], rec["logprob"] = gen.num_tokens, gen.truncated, gen.logprob
    model_path = generator.model_path

    n = len(records)
    result = summarize(records, _labels_of(rows), _criteria_of(rows))
    result.update({
        # Throughput latency: generation wall time over all pairs at this batch
        # size (model loading and scoring excluded), not single-request latency.
        "latency_s_per_pair": gen_seconds / n,
        "pairs_per_s": n / gen_seconds if gen_seconds > 0 else None,
        "generation_seconds": gen_seconds,
        "load_seconds": getattr(generator, "load_seconds", None),
        "mean_prompt_tokens": M.mean(len(p) for p in prompt_ids),
        "mean_response_tokens": M.mean(g.num_tokens for g in generations) if generations else None,
        "truncated_rate": M.mean(float(g.truncated) for g in generations) if generations else None,
        "model": str(model_path),
        "data": str(data),
        "mode": mode,
        "backend": getattr(generator, "backend", None) or generator.kind,
        "device": generator.device,
        "batch_size": generator.batch_size,
        "max_new_tokens": max_new_tokens,
        "temperature": temperature,
        "top_p": top_p,
        "seed": seed,
        "reward_kwargs": dict(reward_kwargs or {}),
    })
    if ranking or (ranking is None and is_ranking_split(rows)):
        result["ranking"] = ranking_metrics(records, lowest=min(_labels_of(rows)))
    return _write(result, records, out_dir, write)


def is_ranking_split(rows: Sequence[Mapping[str, Any]]) -> bool:
    from data_prep.ranking import RANK_SPLITS

    return bool(rows) and (rows[0].get("extra_info") or {}).get("split") in RANK_SPLITS


def _score_one_pass(model: Any, rows, device: str, batch_size: int, reward_kwargs, progress: bool):
    """(scorer, records, prompt ids, seconds, no generations) of a one-pass scorer over the rows."""
    from evaluation.label_scorer import load_scorer

    if hasattr(model, "score") and hasattr(model, "tokenizer"):
        scorer = model
    else:
        from model_zoo import resolve_model

        scorer = load_scorer(str(resolve_model(model)), device=device, batch_size=batch_size)
    prompt_ids = render_prompts(scorer.tokenizer, [row["prompt"] for row in rows])
    start = time.perf_counter()
    scores = scorer.score(prompt_ids, progress=progress)
    seconds = time.perf_counter() - start
    records = score_all(rows, [f"<answer>{s.label}</answer>" for s in scores], "score", reward_kwargs)
    for rec, s in zip(records, scores):
        rec.update(expected=s.expected, probs={str(k): p for k, p in s.probs.items()}, label_mass=s.label_mass)
    return scorer, records, prompt_ids, seconds, []


def score_all(rows: Sequence[Mapping[str, Any]], texts: Sequence[str], mode: str = "generate",
              reward_kwargs: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """One scored record per (row, response)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    score = SCORERS[mode]
    return [score(row, i, text, reward_kwargs) for i, (row, text) in enumerate(zip(rows, texts))]


def evaluate_responses(
    data: str | os.PathLike,
    responses: Sequence[str],
    out_dir: str | os.PathLike | None = None,
    *,
    mode: str = "generate",
    reward_kwargs: Mapping[str, Any] | None = None,
    model: str = "responses",
    write: bool = True,
) -> dict[str, Any]:
    """Score responses made elsewhere (one per row, in file order, for the first rows).

    The same metrics and files as `evaluate`, without generation: speed fields are None.
    """
    data = Path(data)
    rows = load_rows(data, len(responses))
    if len(rows) != len(responses) or not rows:
        raise DataError(f"{data}: {len(responses)} responses but {len(rows)} rows to score")
    check_gold_labels(rows, data)
    records = score_all(rows, list(responses), mode, reward_kwargs)
    result = summarize(records, _labels_of(rows), _criteria_of(rows))
    result.update({
        "latency_s_per_pair": None, "pairs_per_s": None, "generation_seconds": None,
        "load_seconds": None, "model": model, "data": str(data), "mode": mode,
        "backend": None, "device": None, "batch_size": None, "max_new_tokens": None,
        "temperature": None, "reward_kwargs": dict(reward_kwargs or {}),
    })
    return _write(result, records, out_dir, write)


def _write(result: dict[str, Any], records: list[dict[str, Any]],
           out_dir: str | os.PathLike | None, write: bool) -> dict[str, Any]:
    if write:
        from evaluation.report import write_report

        out = Path(out_dir) if out_dir is not None else default_out_dir(result["model"], result["data"])
        write_report(result, records, out)
        result["out_dir"] = str(out)
    return result
