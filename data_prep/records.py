"""Validate one raw query-note row and turn it into verl RL / SFT records.

Validation never drops a row silently: a bad row becomes a `Rejection` with a
reason code and a human-readable detail naming the field.

What a row may hold (JSON types; CSV cells are text):
  query, title, content   text; `query` must be non-empty, `title` and `content`
                          not both empty (a null title or content counts as empty)
  tags                    optional: a list of text, or one string "#a #b" / "a,b"
                          / a JSON list
  label                   an integer label of the criteria (3, "3" and 3.0 are
                          the same); optional only for an unlabelled pool
  step_gold               optional per-step annotations {step: verdict or [verdicts]},
                          a mapping or its JSON text; null entries are ignored
  reasoning               optional warm-up response (makes an SFT row)
  id                      optional text or number, unique; default "row-<number>"
  split                   optional split name (letters, digits, '_', '-', '.')

This module is on the hot path of `convert` (one call per input row): the
common shapes take a few type checks, anything unusual goes to the slow
helpers below, which also write the error detail.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

from data_prep.criteria import Criteria, CriteriaError
from data_prep.prompt import get_renderer

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

_SPLIT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}\Z")
_GOLD_CACHE_SIZE = 4096
_EXACT_FLOAT = 2.0 ** 53  # from here on floats skip integers (and JSON parsers give big ids as floats)


@dataclass
class Limits:
    max_query_chars: int = 256
    max_note_chars: int = 8000


@dataclass
class Rejection:
    reason: str
    detail: str
    row_id: Any = None  # the row's id when a reader refused a row it could still partly read


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:  # pandas/pyarrow NaN for missing CSV cells
        return bool(value != value)
    except Exception:
        return False


def _has_surrogates(text: str) -> bool:
    # Undecodable bytes survive reading as lone surrogates (errors="surrogateescape",
    # or a JSON "\udcff" escape); encoding them fails, which is a C-speed check.
    if text.isascii():  # O(1) in CPython
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _text_fields(raw: Mapping[str, Any]) -> tuple[str, str, str] | Rejection:
    """query, title, content as str, or why not (the slow path of `validate`)."""
    out = []
    for name in REQUIRED_FIELDS:
        value = raw[name]
        if isinstance(value, str):
            out.append(str(value))
        elif _is_missing(value):
            if name == "query":
                return Rejection("missing_field", "field 'query' is missing")
            out.append("")  # a note without a title (or body) is still a note
        else:
            return Rejection("bad_type", f"field '{name}': expected text, got {type(value).__name__}")
    return out[0], out[1], out[2]


def _nul(name: str, text: str) -> Rejection:
    """A NUL character would reach the prompt (and cut it short in C-based tokenizers)."""
    return Rejection("bad_encoding", f"field '{name}': a NUL character at position {text.index(chr(0))}; "
                                     "remove it")


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
            value = text.replace(",", " ").split()
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and all(isinstance(t, str) for t in value):
        tags = [t.strip().lstrip("#").strip() for t in value]
        tags = [t for t in tags if t]
        if any(_has_surrogates(t) for t in tags):
            return Rejection("bad_encoding", "field 'tags': bytes that are not valid UTF-8")
        joined = " ".join(tags)
        if "\x00" in joined:
            return _nul("tags", joined)
        return tags
    return Rejection("bad_type", f"field 'tags': expected a list of strings, got {type(value).__name__}")


_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?\Z")  # ASCII digits: no "1_0", no full-width


def _parse_label(value: Any, label_values) -> int | None | Rejection:
    if value is None or value == "":
        return None
    shown = value
    if isinstance(value, bool):
        return Rejection("bad_type", f"field 'label': expected an integer, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not _INTEGER_TEXT.match(text):
            return Rejection("bad_type", f"field 'label': expected an integer, got {value!r}")
        value = int(text) if "." not in text else float(text)
    if isinstance(value, float):
        if not math.isfinite(value):  # a NaN label is a value, not a missing one
            return Rejection("bad_type", f"field 'label': expected an integer, got {value!r}")
        if not value.is_integer():
            return Rejection("label_out_of_range", f"field 'label': {shown!r} is not an integer label")
        value = int(value)
    if not isinstance(value, int):
        return Rejection("bad_type", f"field 'label': expected an integer, got {type(value).__name__}")
    if value not in label_values:  # shown as given: int(1e30) would print digits nobody wrote
        return Rejection("label_out_of_range", f"field 'label': {shown!r} not in {sorted(label_values)}")
    return value


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
    return {k: (v.tolist() if hasattr(v, "tolist") else v)
            for k, v in value.items() if not _is_missing(v)}


def _parse_id(value: Any, row_number: int) -> str | Rejection:
    if isinstance(value, str):
        value = value.strip()
        if not value:
            return f"row-{row_number}"
        if _has_surrogates(value):
            return Rejection("bad_encoding", "field 'id': bytes that are not valid UTF-8")
        return str(value)
    if _is_missing(value):
        return f"row-{row_number}"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return Rejection("bad_type", f"field 'id': expected text or a number, got {type(value).__name__}")
    if isinstance(value, float):
        if not math.isfinite(value) or abs(value) >= _EXACT_FLOAT:
            return Rejection("bad_type", f"field 'id': {value!r} is too large a number to keep exactly; "
                                         "write the id as text")
        if value.is_integer():
            value = int(value)  # an integer id read back as float (a CSV/parquet column with gaps)
    return str(value)


def _parse_optional_text(name: str, value: Any) -> str | None | Rejection:
    if _is_missing(value):
        return None
    if not isinstance(value, str):
        return Rejection("bad_type", f"field '{name}': expected text, got {type(value).__name__}")
    if not value.strip():
        return None
    if _has_surrogates(value):
        return Rejection("bad_encoding", f"field '{name}': bytes that are not valid UTF-8")
    if "\x00" in value:
        return _nul(name, value)
    return str(value)


def _parse_split(value: Any) -> str | None | Rejection:
    if _is_missing(value) or value == "":
        return None
    if isinstance(value, str) and _SPLIT_RE.match(value):
        return str(value)
    return Rejection("bad_type", f"field 'split': {value!r} is not a split name "
                                 "(letters, digits, '_', '-', '.'; at most 64)")


def check_split_name(split: str) -> str:
    """A split name is used as a file name: letters, digits, '_', '-', '.' (not first)."""
    if not isinstance(split, str) or not _SPLIT_RE.match(split):
        raise ValueError(f"{split!r} is not a split name (letters, digits, '_', '-', '.'; at most 64)")
    return split


def _gold_key(label: int, annotations: dict) -> tuple | None:
    try:
        key = (label, tuple((k, tuple(v) if isinstance(v, list) else v)
                            for k, v in annotations.items()))
        hash(key)
    except TypeError:
        return None
    return key


class RecordBuilder:
    """Turns raw rows into RL and SFT records for one criteria and language."""

    def __init__(
        self,
        criteria: Criteria,
        lang: str = "en",
        limits: Limits | None = None,
        data_source: str = DEFAULT_DATA_SOURCE,
        require_label: bool = True,
    ):
        if lang not in criteria.prompts:
            raise CriteriaError(f"criteria '{criteria.name}' has no prompt for language {lang!r}")
        self.crit = criteria
        self.lang = lang
        self.limits = limits or Limits()
        self.data_source = data_source
        # What the reward reads back to find, and check, the same criteria: the built-in name or
        # the resolved path, the version and the content digest.
        self.identity = criteria.identity
        self.require_label = require_label
        self.renderer = get_renderer(criteria, lang)
        self._seen_ids: set[str] = set()
        self._labels = frozenset(criteria.label_values)
        # Label-derived gold: one JSON string per label, shared by every row with that label.
        self._label_gold_json: dict[int | None, str] = {
            lv: json.dumps(criteria.gold_steps(lv), ensure_ascii=False) for lv in criteria.label_values}
        self._label_gold_json[None] = "{}"
        self._annotated_gold_json: dict[tuple, str] = {}

    # -- validation -------------------------------------------------------------

    def validate(self, raw: Mapping[str, Any], row_number: int) -> dict | Rejection:
        """The clean row (query, title, content, tags, label, step_gold JSON, id,
        reasoning, split), or the first reason to refuse it."""
        try:
            query, title, content = raw["query"], raw["title"], raw["content"]
        except KeyError:
            missing = next(name for name in REQUIRED_FIELDS if name not in raw)
            return Rejection("missing_field", f"field '{missing}' is missing")
        except TypeError:
            return Rejection("bad_type", f"expected an object with fields, got {type(raw).__name__}")
        if type(query) is not str or type(title) is not str or type(content) is not str:
            texts = _text_fields(raw)
            if type(texts) is Rejection:
                return texts
            query, title, content = texts
        for name, value in (("query", query), ("title", title), ("content", content)):
            if not value.isascii() and _has_surrogates(value):
                return Rejection("bad_encoding", f"field '{name}': bytes that are not valid UTF-8")
            if "\x00" in value:
                return _nul(name, value)
        query, title, content = query.strip(), title.strip(), content.strip()
        if not query:
            return Rejection("missing_field", "field 'query' is empty")
        if not title and not content:
            return Rejection("empty_note", "fields 'title' and 'content' are both empty")
        limits = self.limits
        if len(query) > limits.max_query_chars:
            return Rejection("too_long", f"field 'query': {len(query)} chars > {limits.max_query_chars}")
        note_len = len(title) + len(content)
        if note_len > limits.max_note_chars:
            return Rejection("too_long", f"fields 'title'+'content': {note_len} chars > {limits.max_note_chars}")

        get = raw.get
        tags = get("tags")
        if tags is None:
            tags = []
        else:
            tags = self._tags(tags)
            if type(tags) is Rejection:
                return tags

        label = get("label")
        if type(label) is not int or label not in self._labels:  # bools and text take the slow path
            label = _parse_label(label, self._labels)
            if type(label) is Rejection:
                return label
            if label is None and self.require_label:
                return Rejection("missing_field", "field 'label' is missing")

        annotations = get("step_gold")
        if annotations is None:
            gold_json = self._label_gold_json[label]
        else:
            gold_json = self._gold_json(annotations, label)
            if type(gold_json) is Rejection:
                return gold_json

        row_id = get("id")
        if type(row_id) is str and row_id and row_id.isascii() and not row_id.isspace():
            row_id = row_id.strip()
        else:
            row_id = _parse_id(row_id, row_number)
            if type(row_id) is Rejection:
                return row_id

        reasoning = get("reasoning")
        if reasoning is not None:
            reasoning = _parse_optional_text("reasoning", reasoning)
            if type(reasoning) is Rejection:
                return reasoning
        split = get("split")
        if split is not None:
            split = _parse_split(split)
            if type(split) is Rejection:
                return split

        # Last, so that a refused row never claims its id.
        if row_id in self._seen_ids:
            return Rejection("duplicate_id", f"field 'id': {row_id!r} already seen")
        self._seen_ids.add(row_id)
        return {"query": query, "title": title, "content": content, "tags": tags, "label": label,
                "step_gold": gold_json, "id": row_id, "reasoning": reasoning, "split": split}

    @staticmethod
    def _tags(value: Any) -> list[str] | Rejection:
        if type(value) is list:
            try:
                joined = "".join(value)
            except TypeError:
                joined = None
            # Common case: clean text tags, nothing to strip.
            if joined is not None and "#" not in joined and " " not in joined and "" not in value \
                    and "\x00" not in joined and not _has_surrogates(joined):
                return value
        return _parse_tags(value)

    def _gold_json(self, value: Any, label: int | None) -> str | Rejection:
        annotations = _parse_annotations(value)
        if type(annotations) is Rejection:
            return annotations
        if not annotations or label is None:
            return self._label_gold_json[label]
        key = _gold_key(label, annotations)
        hit = self._annotated_gold_json.get(key) if key is not None else None
        if hit is not None:
            return hit
        try:
            gold = self.crit.gold_steps(label, annotations)
        except CriteriaError as exc:
            return Rejection("bad_annotation", f"field 'step_gold': {exc}")
        contradiction = self._contradiction(label, gold, annotations)
        if contradiction is not None:
            return contradiction
        text = json.dumps(gold, ensure_ascii=False)
        if key is not None:
            if len(self._annotated_gold_json) >= _GOLD_CACHE_SIZE:
                self._annotated_gold_json.clear()
            self._annotated_gold_json[key] = text
        return text

    def _contradiction(self, label: int, gold: Mapping[str, Any], annotations: Mapping[str, Any]) -> Rejection | None:
        """An annotated step whose verdicts the label rules out (label 3 with subject_match
        'unrelated'): one of the two is wrong, and training on it would teach both."""
        for name in annotations:
            implied = self.crit.step(name).gold_for_label(label)
            if implied is not None and not set(gold[name]) & set(implied):
                return Rejection("bad_annotation", f"field 'step_gold': step '{name}' {gold[name]} contradicts "
                                                   f"label {label}, which needs {list(implied)}")
        return None

    # -- records ----------------------------------------------------------------

    def user_prompt(self, row: Mapping[str, Any]) -> str:
        """The user message of a clean row (the system message is `renderer.system`)."""
        tags = row["tags"]
        return self.renderer.user(row["query"], row["title"], row["content"],
                                  "#" + " #".join(tags) if tags else "-")

    def extra_info(self, row: Mapping[str, Any], split: str, index: int) -> dict:
        return {
            "split": split,
            "index": index,
            "id": row["id"],
            **self.identity,
            "lang": self.lang,
            "step_gold": row["step_gold"],
            "query": row["query"],
            "title": row["title"],
        }

    def rl_record(self, row: Mapping[str, Any], split: str, index: int) -> dict:
        label = row["label"]
        prompt = [{"role": "user", "content": self.user_prompt(row)}]
        if self.renderer.system:
            prompt.insert(0, {"role": "system", "content": self.renderer.system})
        return {
            "data_source": self.data_source,
            "prompt": prompt,
            "ability": ABILITY,
            "reward_model": {"style": "rule", "ground_truth": "" if label is None else str(label)},
            "extra_info": self.extra_info(row, split, index),
        }

    def sft_record(self, rl: Mapping[str, Any], response: str) -> dict:
        messages = [dict(m) for m in rl["prompt"]]
        messages.append({"role": "assistant", "content": response})
        return {"messages": messages, "extra_info": rl["extra_info"]}
