"""Validate one raw query-note row and turn it into verl RL / SFT records.

Validation never drops a row silently: a bad row becomes a `Rejection` with a
reason code and a human-readable detail naming the field.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from data_prep.criteria import Criteria, CriteriaError
from data_prep.prompt import render_prompt

REQUIRED_FIELDS = ("query", "title", "content")
ABILITY = "relevance"
DEFAULT_DATA_SOURCE = "grm_relevance"

# Reason codes written to rejected.jsonl (documented in the README).
REASONS = (
    "missing_field",
    "bad_type",
    "label_out_of_range",
    "empty_note",
    "too_long",
    "bad_encoding",
    "duplicate_id",
    "bad_annotation",
)


@dataclass
class Limits:
    max_query_chars: int = 256
    max_note_chars: int = 8000


@dataclass
class Rejection:
    reason: str
    detail: str


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:  # pandas/pyarrow NaN for missing CSV cells
        return value != value
    except Exception:
        return False


def _has_surrogates(text: str) -> bool:
    # Undecodable bytes survive reading as lone surrogates (errors="surrogateescape");
    # encoding them fails, which is a C-speed check.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _parse_tags(value: Any) -> list[str] | Rejection:
    if _is_missing(value) or value == "":
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except json.JSONDecodeError:
                return Rejection("bad_type", f"field 'tags': not a JSON list: {text[:60]!r}")
            value = parsed
        else:
            return [t.lstrip("#") for t in text.replace(",", " ").split() if t.strip("#")]
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        return [t.lstrip("#") for t in value]
    return Rejection("bad_type", f"field 'tags': expected a list of strings, got {type(value).__name__}")


def _parse_label(value: Any, crit: Criteria) -> int | None | Rejection:
    if _is_missing(value) or value == "":
        return None
    if isinstance(value, bool):
        return Rejection("bad_type", f"field 'label': expected an integer, got {value!r}")
    try:
        as_float = float(value)
    except (TypeError, ValueError):
        return Rejection("bad_type", f"field 'label': expected an integer, got {value!r}")
    if not as_float.is_integer():
        return Rejection("label_out_of_range", f"field 'label': {value!r} is not an integer label")
    label = int(as_float)
    if label not in crit.label_values:
        return Rejection(
            "label_out_of_range", f"field 'label': {label} not in {sorted(crit.label_values)}"
        )
    return label


def _parse_annotations(value: Any) -> dict | Rejection:
    if _is_missing(value) or value == "":
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return Rejection("bad_annotation", f"field 'step_gold': not JSON: {value[:60]!r}")
    if not isinstance(value, Mapping):
        return Rejection("bad_annotation", "field 'step_gold': expected an object step -> verdict")
    return {k: v for k, v in value.items() if not _is_missing(v)}


class RecordBuilder:
    """Turns raw rows into RL and SFT records for one criteria and language."""

    def __init__(
        self,
        criteria: Criteria,
        lang: str = "en",
        limits: Limits | None = None,
        data_source: str = DEFAULT_DATA_SOURCE,
        criteria_ref: str | None = None,
        require_label: bool = True,
    ):
        if lang not in criteria.prompts:
            raise CriteriaError(f"criteria '{criteria.name}' has no prompt for language {lang!r}")
        self.crit = criteria
        self.lang = lang
        self.limits = limits or Limits()
        self.data_source = data_source
        # What the reward reads back to find the same criteria (name or path).
        self.criteria_ref = criteria_ref or criteria.name
        self.require_label = require_label
        self._seen_ids: set[str] = set()
        self._label_gold_json: dict[int, str] = {}

    def validate(self, raw: Mapping[str, Any], row_number: int) -> dict | Rejection:
        for name in REQUIRED_FIELDS:
            if name not in raw or _is_missing(raw[name]):
                return Rejection("missing_field", f"field '{name}' is missing")
        clean: dict[str, Any] = {}
        for name in REQUIRED_FIELDS:
            value = raw[name]
            if not isinstance(value, str):
                return Rejection("bad_type", f"field '{name}': expected text, got {type(value).__name__}")
            if _has_surrogates(value):
                return Rejection("bad_encoding", f"field '{name}': bytes that are not valid UTF-8")
            clean[name] = value.strip()
        if not clean["query"]:
            return Rejection("missing_field", "field 'query' is empty")
        if not clean["title"] and not clean["content"]:
            return Rejection("empty_note", "fields 'title' and 'content' are both empty")
        if len(clean["query"]) > self.limits.max_query_chars:
            return Rejection("too_long", f"field 'query': {len(clean['query'])} chars > {self.limits.max_query_chars}")
        note_len = len(clean["title"]) + len(clean["content"])
        if note_len > self.limits.max_note_chars:
            return Rejection("too_long", f"fields 'title'+'content': {note_len} chars > {self.limits.max_note_chars}")

        tags = _parse_tags(raw.get("tags"))
        if isinstance(tags, Rejection):
            return tags
        label = _parse_label(raw.get("label"), self.crit)
        if isinstance(label, Rejection):
            return label
        if label is None and self.require_label:
            return Rejection("missing_field", "field 'label' is missing")

        annotations = _parse_annotations(raw.get("step_gold"))
        if isinstance(annotations, Rejection):
            return annotations
        if annotations or label is None:
            try:
                gold = self.crit.gold_steps(label, annotations) if label is not None else {}
            except CriteriaError as exc:
                return Rejection("bad_annotation", f"field 'step_gold': {exc}")
            gold_json = json.dumps(gold, ensure_ascii=False)
        else:  # label-derived gold: one JSON string per label, computed once
            gold_json = self._label_gold_json.get(label)
            if gold_json is None:
                gold_json = self._label_gold_json[label] = json.dumps(
                    self.crit.gold_steps(label), ensure_ascii=False)

        row_id = raw.get("id")
        row_id = f"row-{row_number}" if _is_missing(row_id) or row_id == "" else str(row_id)
        if row_id in self._seen_ids:
            return Rejection("duplicate_id", f"field 'id': {row_id!r} already seen")
        self._seen_ids.add(row_id)

        reasoning = raw.get("reasoning")
        if _is_missing(reasoning) or not str(reasoning).strip():
            reasoning = None
        elif _has_surrogates(str(reasoning)):
            return Rejection("bad_encoding", "field 'reasoning': bytes that are not valid UTF-8")

        clean.update(id=row_id, tags=tags, label=label, step_gold=gold_json, reasoning=reasoning)
        return clean

    def rl_record(self, row: Mapping[str, Any], split: str, index: int) -> dict:
        label = row["label"]
        return {
            "data_source": self.data_source,
            "prompt": render_prompt(row["query"], row["title"], row["content"], row["tags"],
                                    criteria=self.crit, lang=self.lang),
            "ability": ABILITY,
            "reward_model": {"style": "rule", "ground_truth": "" if label is None else str(label)},
            "extra_info": {
                "split": split,
                "index": index,
                "id": row["id"],
                "criteria": self.criteria_ref,
                "lang": self.lang,
                "step_gold": row["step_gold"],
                "query": row["query"],
                "title": row["title"],
            },
        }

    def sft_record(self, rl: Mapping[str, Any], response: str) -> dict:
        messages = [dict(m) for m in rl["prompt"]]
        messages.append({"role": "assistant", "content": response})
        return {"messages": messages, "extra_info": rl["extra_info"]}
