"""Reward functions with verl's `compute_score` signature (see `reward` for the contract)."""

from __future__ import annotations

import functools
import json
import math
import os
import reprlib
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from data_prep.criteria import CriteriaError

from reward.contracts import CORRECT, NO_PRED, UNKNOWN, WRONG
from reward.parser import _PARSERS, ResponseParser, get_parser, parser_for_row

VARIANTS = ("outcome", "ordinal", "format_penalty")
CONFIG_KEYS = ("variant", "ordinal_lambda", "format_penalty", "criteria")
# Keyword arguments verl's reward managers add on their own (naive.py passes
# these when a reward model router is configured); they are not for us.
VERL_PASSTHROUGH_KEYS = frozenset({"reward_router_address", "reward_model_tokenizer"})
UNVERIFIABLE = -1.0  # `step_acc` (and `consistent`) when there is nothing to check

RESULT_KEYS = (
    "score", "acc", "pred", "format_ok", "format_error", "num_steps", "step_acc",
    "num_verifiable", "num_correct", "consistent", "steps",
)


@dataclass(frozen=True)
class RewardConfig:
    variant: str = "outcome"
    ordinal_lambda: float = 0.5
    format_penalty: float = -1.0
    criteria: str | None = None

    def score_range(self) -> tuple[float, float]:
        """The closed interval every score of this variant lies in."""
        if self.variant == "format_penalty":
            return (self.format_penalty, 1.0)
        return (0.0, 1.0)


def _is_bool(value: Any) -> bool:
    # numpy's bool is not a subclass of bool, but float() and int() take it as 0/1 too.
    return isinstance(value, (bool, np.bool_))


def _number(name: str, value: Any, lo: float, hi: float) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        out = None
    if out is None or _is_bool(value):
        raise ValueError(f"reward kwarg {name}={value!r} is not a number")
    if not (lo <= out <= hi) or not math.isfinite(out):
        raise ValueError(f"reward kwarg {name}={out} must be a finite number in [{lo}, {hi}]")
    return out


def _criteria_name(value: Any, where: str) -> str | None:
    """A criteria name or path; None or "" select the default."""
    if value is None or value == "":
        return None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise ValueError(f"{where} must be a criteria name or a YAML path (text), "
                     f"got {type(value).__name__} {reprlib.repr(value)}")


def make_config(**kwargs: Any) -> RewardConfig:
    """Validate reward kwargs (verl's `reward.custom_reward_function.reward_kwargs`)."""
    unknown = set(kwargs) - set(CONFIG_KEYS) - VERL_PASSTHROUGH_KEYS
    if unknown:
        raise ValueError(f"unknown reward kwarg(s) {sorted(unknown)}; allowed: {list(CONFIG_KEYS)}")
    variant = str(kwargs.get("variant") or "outcome")
    if variant not in VARIANTS:
        raise ValueError(f"unknown reward variant {variant!r}; allowed: {list(VARIANTS)}")
    criteria = kwargs.get("criteria")
    return RewardConfig(
        variant=variant,
        ordinal_lambda=_number("ordinal_lambda", kwargs.get("ordinal_lambda", 0.5), 0.0, 1.0),
        format_penalty=_number("format_penalty", kwargs.get("format_penalty", -1.0), -math.inf, 0.0),
        criteria=_criteria_name(criteria, "reward kwarg criteria"),
    )


_DEFAULT_CONFIG = make_config()
_CONFIGS: dict[tuple, RewardConfig] = {}


def _config(kwargs: dict[str, Any]) -> RewardConfig:
    if not kwargs:
        return _DEFAULT_CONFIG
    try:
        key = tuple(sorted((k, v) for k, v in kwargs.items() if k not in VERL_PASSTHROUGH_KEYS))
        hash(key)
    except TypeError:  # unhashable values: validate without caching
        return make_config(**kwargs)
    cfg = _CONFIGS.get(key)
    if cfg is None:
        cfg = _CONFIGS[key] = make_config(**kwargs)
    return cfg


# -- ground truth and gold ---------------------------------------------------------


def parse_ground_truth(ground_truth: Any, parser: ResponseParser) -> int:
    """The gold label from an int, a numpy scalar, or a string like "3" / "-1"."""
    if _is_bool(ground_truth):  # int(True) is 1: a bool is a data bug, not the label 1
        raise ValueError(f"ground_truth {ground_truth!r} is a bool, not a label of criteria "
                         f"'{parser.criteria.name}' {sorted(parser.label_values)}")
    try:
        label = int(str(ground_truth).strip())
    except (TypeError, ValueError):
        try:
            as_float = float(ground_truth)
            label = int(as_float) if as_float.is_integer() else None
        except (TypeError, ValueError):
            label = None
    if label is None or label not in parser.label_values:
        raise ValueError(
            f"ground_truth {ground_truth!r} is not a label of criteria "
            f"'{parser.criteria.name}' {sorted(parser.label_values)}"
        )
    return label


Gold = tuple  # per step in schema order: frozenset of accepted verdicts, or None


@functools.lru_cache(maxsize=None)
def _label_gold(parser: ResponseParser, label: int) -> Gold:
    gold = parser.criteria.gold_steps(label)
    return tuple(None if gold[s.name] is None else frozenset(gold[s.name])
                 for s in parser.criteria.steps)


def _gold_from_mapping(parser: ResponseParser, label: int, mapping: Mapping[str, Any]) -> Gold:
    """Per-example gold: entries override the label-derived gold; null = unverifiable."""
    crit = parser.criteria
    annotations: dict[str, Any] = {}
    unverifiable = []
    for name, value in mapping.items():
        if hasattr(value, "tolist"):  # numpy arrays from parquet
            value = value.tolist()
        if value is None or value == "" or value == []:
            unverifiable.append(str(name))
        else:
            annotations[str(name)] = value
    unknown = [n for n in unverifiable if n not in crit.step_names]
    if unknown:
        raise CriteriaError(f"step_gold names unknown steps {unknown}; steps are {list(crit.step_names)}")
    gold = crit.gold_steps(label, annotations)  # validates names and verdicts
    for name in unverifiable:
        gold[name] = None
    return tuple(None if gold[s.name] is None else frozenset(gold[s.name]) for s in crit.steps)


@functools.lru_cache(maxsize=65536)
def _gold_from_json(parser: ResponseParser, label: int, text: str) -> Gold:
    try:
        mapping = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"extra_info['step_gold'] is not valid JSON: {exc}: {text[:200]!r}") from None
    except RecursionError:  # json nests by recursion: "[[[[..." deeper than the stack
        raise ValueError(f"extra_info['step_gold'] is nested too deeply to be step annotations: "
                         f"{text[:200]!r}") from None
    if not isinstance(mapping, dict):
        raise ValueError(f"extra_info['step_gold'] must be a JSON object, got {text[:200]!r}")
    return _gold_from_mapping(parser, label, mapping)


def resolve_gold(parser: ResponseParser, label: int, step_gold: Any) -> Gold:
    # None, "" and NaN (a missing value in a pandas column) mean "no annotations".
    if step_gold is None or (isinstance(step_gold, str) and not step_gold.strip()) \
            or (isinstance(step_gold, float) and math.isnan(step_gold)):
        return _label_gold(parser, label)
    if isinstance(step_gold, str):
        return _gold_from_json(parser, label, step_gold)
    if isinstance(step_gold, Mapping):
        return _gold_from_mapping(parser, label, step_gold)
    raise ValueError(f"extra_info['step_gold'] must be a JSON string or a mapping, "
                     f"got {type(step_gold).__name__}")


# -- the reward ------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _steps_layout(parser: ResponseParser) -> tuple[str, tuple[dict, ...]]:
    """A %-template for the steps JSON and each step's verdict -> JSON text.

    The JSON is filled in by hand because json.dumps of the nested structure
    would cost more than the whole parse; a test checks it round-trips.
    """
    items = ", ".join(
        '{"name": %s, "verdict": %%s, "correct": %%d, "start": %%d, "end": %%d}'
        % json.dumps(name).replace("%", "%%") for name in parser.step_names)
    template = '{"steps": [' + items + '], "answer": {"start": %d, "end": %d}}'
    verdicts = tuple({None: "null", **{v: json.dumps(v) for v in s.verdicts}}
                     for s in parser.criteria.steps)
    return template, verdicts


@functools.lru_cache(maxsize=4096)
def _consistent(parser: ResponseParser, verdicts: tuple, pred: int) -> float:
    implied = parser.criteria.label_from_verdicts(dict(zip(parser.criteria.step_names, verdicts)))
    return 1.0 if implied == pred else 0.0


def score_response(
    solution_str: Any, ground_truth: Any, extra_info: Any = None, cfg: RewardConfig = _DEFAULT_CONFIG
) -> dict[str, Any]:
    # `type(...) is dict` first: an ABC isinstance check costs more than the parse of a step.
    if type(extra_info) is dict or isinstance(extra_info, Mapping):
        info = extra_info
    elif extra_info is None:
        info = {}
    else:
        raise ValueError(f"extra_info must be a mapping (or None), got {type(extra_info).__name__} "
                         f"{reprlib.repr(extra_info)}")
    criteria = cfg.criteria
    if criteria is None:
        criteria = info.get("criteria")
        if type(criteria) is not str:
            criteria = _criteria_name(criteria, "extra_info['criteria']")
        criteria = criteria or "default"
    parser = _PARSERS.get(criteria) or get_parser(criteria)
    # Rows the project writes carry their criteria's digest: a criteria edited since then
    # is caught here (one string compare per call when nothing changed).
    digest = info.get("criteria_digest")
    if digest and digest != parser.criteria.digest:
        parser = parser_for_row(criteria, str(digest), parser)
    label = ground_truth if type(ground_truth) is int and ground_truth in parser.label_values \
        else parse_ground_truth(ground_truth, parser)
    step_gold = info.get("step_gold")
    gold = _label_gold(parser, label) if step_gold is None else resolve_gold(parser, label, step_gold)

    if isinstance(solution_str, str):
        text = solution_str
    elif solution_str is None:
        text = ""
    elif isinstance(solution_str, bytes):
        text = solution_str.decode("utf-8", errors="replace")
    else:
        text = str(solution_str)
    parsed = parser.parse(text)

    template, verdict_js = _steps_layout(parser)
    values: list = []
    verifiable = correct_n = 0
    for (start, end, verdict), g, vjs in zip(parsed.steps, gold, verdict_js):
        if g is None:
            correct = UNKNOWN
        else:
            verifiable += 1
            if start < 0:
                correct = UNKNOWN  # absent: no span to credit or blame
            elif verdict in g:
                correct = CORRECT
                correct_n += 1
            else:
                correct = WRONG
        values += (vjs[verdict], correct, start, end)
    values += (parsed.answer_start, parsed.answer_end)

    pred = parsed.pred
    verdicts = tuple([s[2] for s in parsed.steps])
    if pred is None or None in verdicts or not parser.criteria.label_rules:
        consistent = UNVERIFIABLE
    else:
        consistent = _consistent(parser, verdicts, pred)

    ok = not parsed.error
    if not ok:
        score = cfg.format_penalty if cfg.variant == "format_penalty" else 0.0
    elif pred == label:
        score = 1.0
    elif cfg.variant == "ordinal" and abs(parser.rank[pred] - parser.rank[label]) == 1:
        score = cfg.ordinal_lambda
    else:
        score = 0.0

    return {
        "score": score,
        "acc": 1.0 if pred == label else 0.0,
        "pred": NO_PRED if pred is None else pred,
        "format_ok": 1.0 if ok else 0.0,
        "format_error": parsed.error,
        "num_steps": parsed.num_steps,
        "step_acc": correct_n / verifiable if verifiable else UNVERIFIABLE,
        "num_verifiable": verifiable,
        "num_correct": correct_n,
        "consistent": consistent,
        "steps": template % tuple(values),
    }


def compute_score(data_source=None, solution_str=None, ground_truth=None, extra_info=None, **kwargs):
    """verl reward function; the variant and criteria come from `reward_kwargs`."""
    return score_response(solution_str, ground_truth, extra_info, _config(kwargs))


def _fixed_variant(variant: str):
    def fn(data_source=None, solution_str=None, ground_truth=None, extra_info=None, **kwargs):
        if kwargs.get("variant", variant) != variant:
            raise ValueError(f"compute_score_{variant} fixes variant={variant!r}, "
                             f"but reward_kwargs ask for {kwargs['variant']!r}")
        kwargs["variant"] = variant
        return score_response(solution_str, ground_truth, extra_info, _config(kwargs))

    fn.__name__ = fn.__qualname__ = f"compute_score_{variant}"
    fn.__doc__ = f"`compute_score` with variant={variant!r} (for selection by name= in verl config)."
    return fn


compute_score_outcome = _fixed_variant("outcome")
compute_score_ordinal = _fixed_variant("ordinal")
compute_score_format_penalty = _fixed_variant("format_penalty")
