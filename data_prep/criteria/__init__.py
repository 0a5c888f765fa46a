"""The criteria schema: labels, reasoning steps and their gold, loaded from YAML.

This module is the single definition of the step structure. The prompt renderer
(`data_prep.prompt`), the reward parser (`reward`) and SAM (`sam_advantage`) all
read steps from a `Criteria` object, never from their own lists of names.

A criteria file is named either by a built-in name (``default``, ``free_form``)
or by a path to a YAML file.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

BUILTIN_DIR = Path(__file__).parent
DEFAULT_CRITERIA = "default"
FORMATS = ("stepwise", "free_form")
LANGS = ("en", "zh")
_TAG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


class CriteriaError(ValueError):
    """A criteria config is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Label:
    value: int
    name: str
    rule: str = ""
    rule_zh: str = ""


@dataclass(frozen=True)
class Step:
    name: str
    tag: str
    title: str
    question: str
    verdicts: tuple[str, ...]
    # label value -> verdicts that count as correct; labels absent here leave the
    # step unverifiable from the label alone.
    gold_from_label: Mapping[int, tuple[str, ...]]
    title_zh: str = ""
    question_zh: str = ""

    def gold_for_label(self, label: int) -> tuple[str, ...] | None:
        return self.gold_from_label.get(int(label))


@dataclass(frozen=True)
class LabelRule:
    when: Mapping[str, tuple[str, ...]]
    label: int

    def matches(self, verdicts: Mapping[str, str]) -> bool:
        return all(verdicts.get(step) in allowed for step, allowed in self.when.items())


@dataclass(frozen=True)
class Criteria:
    name: str
    format: str
    labels: tuple[Label, ...]
    steps: tuple[Step, ...]
    answer_tag: str
    prompts: Mapping[str, Mapping[str, str]]
    label_rules: tuple[LabelRule, ...] = ()
    verdict_marker: str = "Verdict:"
    verdict_marker_zh: str = "结论:"
    reasoning_tag: str | None = None
    answer_title: str = "Answer"
    answer_title_zh: str = "结论"
    source: str = ""
    version: int = 1
    _step_index: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    # -- lookups -------------------------------------------------------------
    @property
    def label_values(self) -> tuple[int, ...]:
        return tuple(lab.value for lab in self.labels)

    @property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @property
    def num_steps(self) -> int:
        return len(self.steps)

    def step(self, name: str) -> Step:
        return self.steps[self._step_index[name]]

    def step_position(self, name: str) -> int:
        return self._step_index[name]

    def marker(self, lang: str = "en") -> str:
        return self.verdict_marker_zh if lang == "zh" else self.verdict_marker

    # -- gold ----------------------------------------------------------------
    def gold_steps(
        self, label: int, annotations: Mapping[str, Any] | None = None
    ) -> dict[str, list[str] | None]:
        """Accepted verdicts per step for one example.

        Label-derived gold is the default; a per-step annotation (one verdict or
        a list) overrides it. ``None`` means the step cannot be verified.
        """
        gold: dict[str, list[str] | None] = {}
        annotations = annotations or {}
        unknown = set(annotations) - set(self.step_names)
        if unknown:
            raise CriteriaError(
                f"criteria '{self.name}': annotations name unknown steps {sorted(unknown)}; "
                f"steps are {list(self.step_names)}"
            )
        for step in self.steps:
            ann = annotations.get(step.name)
            if ann is not None and ann != "":
                values = [ann] if isinstance(ann, str) else list(ann)
                bad = [v for v in values if v not in step.verdicts]
                if bad:
                    raise CriteriaError(
                        f"criteria '{self.name}': annotation for step '{step.name}' has "
                        f"verdict(s) {bad} not in {list(step.verdicts)}"
                    )
                gold[step.name] = values
            else:
                derived = step.gold_for_label(label)
                gold[step.name] = list(derived) if derived is not None else None
        return gold

    def label_from_verdicts(self, verdicts: Mapping[str, str]) -> int | None:
        for rule in self.label_rules:
            if rule.matches(verdicts):
                return rule.label
        return None


# -- loading -------------------------------------------------------------------


def _req(raw: Mapping[str, Any], key: str, where: str, typ: type | tuple[type, ...]) -> Any:
    if key not in raw:
        raise CriteriaError(f"{where}: missing required field '{key}'")
    value = raw[key]
    if not isinstance(value, typ):
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise CriteriaError(f"{where}: field '{key}' must be {names}, got {type(value).__name__}")
    return value


def _check_tag(tag: str, where: str) -> str:
    if not _TAG_RE.match(tag):
        raise CriteriaError(f"{where}: tag {tag!r} must be letters, digits, '_' or '-'")
    return tag


def _as_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise CriteriaError(f"{where}: expected a verdict or a list of verdicts, got {value!r}")


def parse_criteria(raw: Any, source: str = "<dict>") -> Criteria:
    """Validate a criteria mapping (as read from YAML) and build a `Criteria`."""
    if not isinstance(raw, Mapping):
        raise CriteriaError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    name = _req(raw, "name", source, str)
    where = f"{source} (criteria '{name}')"
    fmt = raw.get("format", "stepwise")
    if fmt not in FORMATS:
        raise CriteriaError(f"{where}: field 'format' must be one of {FORMATS}, got {fmt!r}")

    labels = []
    for i, lab in enumerate(_req(raw, "labels", where, list)):
        lw = f"{where}: labels[{i}]"
        if not isinstance(lab, Mapping):
            raise CriteriaError(f"{lw}: must be a mapping")
        value = _req(lab, "value", lw, int)
        labels.append(
            Label(value=value, name=_req(lab, "name", lw, str),
                  rule=str(lab.get("rule", "")), rule_zh=str(lab.get("rule_zh", "")))
        )
    if len(labels) < 2:
        raise CriteriaError(f"{where}: field 'labels' needs at least two labels")
    label_values = [lab.value for lab in labels]
    if len(set(label_values)) != len(label_values):
        raise CriteriaError(f"{where}: field 'labels' has duplicate values {label_values}")

    answer = _req(raw, "answer", where, Mapping)
    answer_tag = _check_tag(_req(answer, "tag", f"{where}: answer", str), f"{where}: answer")

    steps: list[Step] = []
    seen_names: set[str] = set()
    seen_tags: set[str] = {answer_tag}
    for i, st in enumerate(raw.get("steps") or []):
        sw = f"{where}: steps[{i}]"
        if not isinstance(st, Mapping):
            raise CriteriaError(f"{sw}: must be a mapping")
        sname = _req(st, "name", sw, str)
        sw = f"{where}: step '{sname}'"
        if sname in seen_names:
            raise CriteriaError(f"{sw}: duplicate step name")
        tag = _check_tag(str(st.get("tag", sname)), sw)
        if tag in seen_tags:
            raise CriteriaError(f"{sw}: tag '{tag}' is used twice (steps and answer need distinct tags)")
        verdicts = _as_tuple(_req(st, "verdicts", sw, list), f"{sw}: verdicts")
        if not verdicts:
            raise CriteriaError(f"{sw}: field 'verdicts' is empty")
        if len(set(verdicts)) != len(verdicts):
            raise CriteriaError(f"{sw}: field 'verdicts' has duplicates {list(verdicts)}")
        gold_raw = st.get("gold_from_label") or {}
        if not isinstance(gold_raw, Mapping):
            raise CriteriaError(f"{sw}: field 'gold_from_label' must be a mapping label -> verdicts")
        gold: dict[int, tuple[str, ...]] = {}
        for key, val in gold_raw.items():
            try:
                lv = int(key)
            except (TypeError, ValueError):
                raise CriteriaError(f"{sw}: gold_from_label key {key!r} is not a label value") from None
            if lv not in label_values:
                raise CriteriaError(f"{sw}: gold_from_label key {lv} is not one of the labels {label_values}")
            accepted = _as_tuple(val, f"{sw}: gold_from_label[{key}]")
            bad = [v for v in accepted if v not in verdicts]
            if bad:
                raise CriteriaError(f"{sw}: gold_from_label[{key}] has verdict(s) {bad} not in {list(verdicts)}")
            gold[lv] = accepted
        steps.append(
            Step(name=sname, tag=tag, title=str(st.get("title", sname)),
                 question=_req(st, "question", sw, str), verdicts=verdicts,
                 gold_from_label=gold, title_zh=str(st.get("title_zh", "")),
                 question_zh=str(st.get("question_zh", "")))
        )
        seen_names.add(sname)
        seen_tags.add(tag)

    if fmt == "stepwise" and not steps:
        raise CriteriaError(f"{where}: a 'stepwise' criteria needs at least one step")
    if fmt == "free_form" and steps:
        raise CriteriaError(f"{where}: a 'free_form' criteria must not define steps")

    step_by_name = {s.name: s for s in steps}
    rules = []
    for i, rule in enumerate(raw.get("label_rules") or []):
        rw = f"{where}: label_rules[{i}]"
        when = _req(rule, "when", rw, Mapping)
        lv = _req(rule, "label", rw, int)
        if lv not in label_values:
            raise CriteriaError(f"{rw}: label {lv} is not one of {label_values}")
        cond: dict[str, tuple[str, ...]] = {}
        for sname, val in when.items():
            if sname not in step_by_name:
                raise CriteriaError(f"{rw}: unknown step '{sname}'")
            accepted = _as_tuple(val, f"{rw}: when.{sname}")
            bad = [v for v in accepted if v not in step_by_name[sname].verdicts]
            if bad:
                raise CriteriaError(f"{rw}: verdict(s) {bad} not allowed for step '{sname}'")
            cond[sname] = accepted
        rules.append(LabelRule(when=cond, label=lv))
    _check_rules_agree_with_gold(rules, steps, label_values, where)

    prompts_raw = _req(raw, "prompt", where, Mapping)
    prompts: dict[str, dict[str, str]] = {}
    for lang, body in prompts_raw.items():
        pw = f"{where}: prompt.{lang}"
        if lang not in LANGS:
            raise CriteriaError(f"{pw}: language must be one of {LANGS}")
        if not isinstance(body, Mapping):
            raise CriteriaError(f"{pw}: must be a mapping with 'system' and 'user'")
        user = _req(body, "user", pw, str)
        for placeholder in ("{query}", "{title}", "{content}"):
            if placeholder not in user:
                raise CriteriaError(f"{pw}: field 'user' must contain the placeholder {placeholder}")
        prompts[lang] = {"system": str(body.get("system", "")), "user": user}
    if "en" not in prompts:
        raise CriteriaError(f"{where}: field 'prompt' needs at least the 'en' prompt")

    return Criteria(
        name=name, format=fmt, labels=tuple(labels), steps=tuple(steps), answer_tag=answer_tag,
        prompts=prompts, label_rules=tuple(rules),
        verdict_marker=str(raw.get("verdict_marker", "Verdict:")),
        verdict_marker_zh=str(raw.get("verdict_marker_zh", "结论:")),
        reasoning_tag=raw.get("reasoning_tag"),
        answer_title=str(answer.get("title", "Answer")),
        answer_title_zh=str(answer.get("title_zh", "结论")),
        source=source, version=int(raw.get("version", 1)),
        _step_index={s.name: i for i, s in enumerate(steps)},
    )


def _check_rules_agree_with_gold(rules, steps, label_values, where) -> None:
    """Every label-derived gold verdict must lead to that label under label_rules."""
    if not rules:
        return
    for lv in label_values:
        derivable = {s.name: s.gold_for_label(lv) for s in steps if s.gold_for_label(lv)}
        if not derivable:
            continue
        hits = [r for r in rules if all(
            set(r.when.get(name, accepted)) & set(accepted) for name, accepted in derivable.items()
        ) and r.label == lv]
        if not hits:
            raise CriteriaError(
                f"{where}: label_rules give no rule for label {lv} that agrees with its "
                f"gold_from_label verdicts {derivable}"
            )


def resolve_criteria_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    builtin = BUILTIN_DIR / f"{text}.yaml"
    if "/" not in text and not text.endswith((".yaml", ".yml")) and builtin.exists():
        return builtin
    path = Path(text)
    if path.exists():
        return path
    names = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
    raise CriteriaError(f"criteria {text!r}: no such file and not a built-in name (built-in: {names})")


@functools.lru_cache(maxsize=32)
def _load_cached(path: str, mtime: float) -> Criteria:
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CriteriaError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise CriteriaError(f"{path}: not UTF-8 text: {exc}") from None
    return parse_criteria(raw, source=path)


def load_criteria(name_or_path: str | Path | Criteria | None = None) -> Criteria:
    """Load (and cache) a criteria config by built-in name or path."""
    if isinstance(name_or_path, Criteria):
        return name_or_path
    path = resolve_criteria_path(name_or_path or DEFAULT_CRITERIA)
    return _load_cached(str(path.resolve()), path.stat().st_mtime)


def builtin_criteria() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
