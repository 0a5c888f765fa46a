"""Read the RL parquet and score each response with the project's reward.

Two modes:

* ``generate``: the response is a criteria-guided judgement; it is scored by
  ``reward.compute_score`` with the row's ``extra_info`` (criteria, step_gold),
  exactly as in training, and its step verdicts are checked.
* ``classify``: a distilled student writes the label directly. The label is
  read from the first ``<answer>L</answer>`` (the closing tag may be cut off by
  the token limit) or, without an answer tag, from the first word of the
  response ("3", "-1.", "**2**"). The reward then scores the canonical
  ``<answer>L</answer>`` under the free-form criteria (outcome: 1 if the label
  is right). There are no steps; ``format_ok`` means a label was read, and the
  format error of an unreadable response is ``no_label``.
* ``score``: no generation; a one-pass scorer (`evaluation.label_scorer`) gives the label
  distribution, and its label is scored as in ``classify``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from reward import compute_score, get_parser, parse_label
from reward.contracts import CORRECT, NO_PRED, decode_steps, row_id
from reward.scoring import parse_ground_truth, resolve_gold

MODES = ("generate", "classify", "score")
NO_LABEL = "no_label"  # classify mode's format error when no label could be read
_CLASSIFY_CRITERIA = "free_form"  # answer-only criteria: no steps to check


class DataError(ValueError):
    """The evaluation data cannot be used as given: the file, or a row of it (named in the message)."""


def load_rows(path: str | Path, max_examples: int | None = None) -> list[dict[str, Any]]:
    """The first ``max_examples`` rows of a verl RL parquet as plain Python dicts."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: {'is a directory, expected' if path.is_dir() else 'no such'} file")
    try:
        pf = pq.ParquetFile(path)
        missing = {"prompt", "reward_model"} - set(pf.schema_arrow.names)
        if missing:
            raise DataError(f"{path}: not an RL parquet, missing column(s) {sorted(missing)}; "
                            "write one with `python -m data_prep convert`")
        rows: list[dict[str, Any]] = []
        # Read batch by batch so --max-examples on a large file reads only what it needs.
        for batch in pf.iter_batches(batch_size=1024):
            rows.extend(batch.to_pylist())
            if max_examples is not None and len(rows) >= max_examples:
                return rows[:max_examples]
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: not a readable parquet file ({' '.join(str(exc).split())})") from None
    return rows


def check_gold_labels(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Every row's gold label, checked before anything is generated (rows numbered from 1)."""
    for number, row in enumerate(rows, start=1):
        try:
            gold_label(row, number)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from None


def row_criteria(row: Mapping[str, Any]) -> str:
    info = row.get("extra_info") or {}
    return info.get("criteria") or "default"


def gold_label(row: Mapping[str, Any], index: int) -> int:
    truth = (row.get("reward_model") or {}).get("ground_truth")
    if truth is None or str(truth).strip() == "":
        raise ValueError(f"row {index} ({row_id(row, index)}) has no gold label; "
                         "evaluation needs a labelled split")
    try:
        return parse_ground_truth(truth, get_parser(row_criteria(row)))
    except ValueError as exc:
        raise ValueError(f"row {index} ({row_id(row, index)}): {exc}") from None


def _base_record(row: Mapping[str, Any], index: int, gold: int) -> dict[str, Any]:
    info = row.get("extra_info") or {}
    return {"id": row_id(row, index), "query": info.get("query"), "title": info.get("title"),
            "gold": gold}


def score_generated(row: Mapping[str, Any], index: int, text: str,
                    reward_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One criteria-guided response scored by the reward, with per-step verdicts."""
    gold = gold_label(row, index)
    info = dict(row.get("extra_info") or {})
    res = compute_score(row.get("data_source"), text, gold, info, **(reward_kwargs or {}))
    parser = get_parser((reward_kwargs or {}).get("criteria") or row_criteria(row))
    golds = resolve_gold(parser, gold, info.get("step_gold"))
    steps = []
    for step, g in zip(decode_steps(res["steps"]), golds):
        steps.append({"name": step["name"], "verdict": step["verdict"],
                      "verifiable": g is not None, "correct": step["correct"] == CORRECT})
    return _record(row, index, gold, res, steps, text)


_ANSWER_RES: dict[str, re.Pattern] = {}


def parse_direct_label(text: str, label_values, answer_tag: str = "answer") -> int | None:
    """A label written by a student: ``<answer>L</answer>`` (closing tag optional) or a bare label."""
    pattern = _ANSWER_RES.get(answer_tag)
    if pattern is None:
        tag = re.escape(answer_tag)
        pattern = _ANSWER_RES[answer_tag] = re.compile(f"<{tag}>([^<]*)(?:</{tag}>)?")
    m = pattern.search(text)
    if m is not None:
        return parse_label(m.group(1), label_values)
    words = text.split(maxsplit=1)
    return parse_label(words[0], label_values) if words else None


def score_classified(row: Mapping[str, Any], index: int, text: str,
                     reward_kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One direct-label response: the label is parsed here, the reward scores it."""
    gold = gold_label(row, index)
    parser = get_parser(_CLASSIFY_CRITERIA)
    pred = parse_direct_label(text, parser.label_values, parser.answer_tag)
    canonical = "" if pred is None else f"<{parser.answer_tag}>{pred}</{parser.answer_tag}>"
    kwargs = {**(reward_kwargs or {}), "criteria": _CLASSIFY_CRITERIA}
    res = compute_score(row.get("data_source"), canonical, gold, {}, **kwargs)
    if pred is None:
        res["format_error"] = NO_LABEL
    return _record(row, index, gold, res, [], text)


def _record(row, index, gold, res, steps, text) -> dict[str, Any]:
    rec = _base_record(row, index, gold)
    pred = None if res["pred"] == NO_PRED else int(res["pred"])
    rec.update({
        "pred": pred,
        "correct": pred == gold,
        "score": float(res["score"]),
        "format_ok": bool(res["format_ok"]),
        "format_error": res["format_error"],
        "consistent": res["consistent"],
        "num_steps": res["num_steps"],
        "num_verifiable": res["num_verifiable"],
        "num_correct": res["num_correct"],
        "steps": steps,
        "response": text,
    })
    return rec


# score: a one-pass scorer's label (evaluation.label_scorer), read as a student's answer.
SCORERS = {"generate": score_generated, "classify": score_classified, "score": score_classified}
