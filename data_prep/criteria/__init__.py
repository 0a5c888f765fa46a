"""The criteria schema: labels, reasoning steps and their gold, loaded from YAML.

This module is the single definition of the step structure. The prompt renderer
(`data_prep.prompt`), the reward parser (`reward`) and SAM (`sam_advantage`) all
read steps from a `Criteria` object, never from their own lists of names.

A criteria file is named either by a built-in name (``default``, ``free_form``)
or by a path to a YAML file. A loaded criteria knows its identity: ``ref`` (the built-in
name, or the resolved path of another file), ``version`` and ``digest`` (a hash of its
content, bases included). Data rows carry all three, so the reward can tell when the file it
reads is not the one the prompts were written with.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import itertools
import json
import os
import re
import reprlib
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

BUILTIN_DIR = Path(__file__).parent
DEFAULT_CRITERIA = "default"
FORMATS = ("stepwise", "free_form")
TRACE_STYLES = ("full", "terse")  # the warm-up traces' wording (data_prep.traces)
DEFAULT_REASONING_TAG = "think"  # a free-form criteria's reasoning block, when it names none
LANGS = ("en", "zh")
_TAG_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Placeholders a prompt's `user` text must contain. The others it may use: tags,
# label_rules, step_instructions, step_tags, verdict_marker, label_values, answer_tag,
# reasoning_tag; an unknown name is shown literally.
REQUIRED_PLACEHOLDERS = ("query", "title", "content")
# The keys each mapping of a criteria file may have: a misspelt key is an error,
# not a silently ignored field.
TOP_KEYS = ("name", "version", "format", "labels", "verdict_marker", "verdict_marker_zh", "steps",
            "reasoning_tag", "answer", "label_rules", "prompt", "trace_style")
LABEL_KEYS = ("value", "name", "rule", "rule_zh")
STEP_KEYS = ("name", "tag", "title", "title_zh", "question", "question_zh", "verdicts",
             "gold_from_label")
ANSWER_KEYS = ("tag", "title", "title_zh")
RULE_KEYS = ("when", "label")
PROMPT_KEYS = ("system", "user")


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
    trace_style: str = "full"  # the warm-up traces' wording: full | terse (data_prep.traces)
    digest: str = ""  # content_digest of the mapping it was parsed from (bases included)
    _step_index: Mapping[str, int] = field(default_factory=dict, repr=False, compare=False)

    # -- lookups -------------------------------------------------------------
    # Cached: they are read for every row of a conversion and every reward call.
    @functools.cached_property
    def label_values(self) -> tuple[int, ...]:
        return tuple(lab.value for lab in self.labels)

    @functools.cached_property
    def step_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.steps)

    @property
    def ref(self) -> str:
        """How data rows name this criteria: the built-in name for a built-in file, else the
        resolved path (never a path relative to one process's working directory)."""
        if not self.source:
            return self.name
        path = Path(self.source)
        if path.parent == BUILTIN_DIR.resolve() and path.suffix == ".yaml":
            return path.stem
        return str(path.resolve())

    @property
    def identity(self) -> dict[str, Any]:
        """What a data row and a summary record about the criteria it was written with."""
        return {"criteria": self.ref, "criteria_version": self.version, "criteria_digest": self.digest}

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
        if label not in self.label_values:
            raise CriteriaError(
                f"criteria '{self.name}': {label!r} is not one of the labels {list(self.label_values)}")
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
                if isinstance(ann, str):
                    values = [ann]
                elif isinstance(ann, (list, tuple)) and ann:
                    values = list(ann)
                else:
                    raise CriteriaError(
                        f"criteria '{self.name}': annotation for step '{step.name}' must be a "
                        f"verdict or a non-empty list of verdicts, got {reprlib.repr(ann)}")
                # reprlib: a hostile annotation may nest deeper than repr() can recurse.
                bad = [v for v in values if not isinstance(v, str) or v not in step.verdicts]
                if bad:
                    raise CriteriaError(
                        f"criteria '{self.name}': annotation for step '{step.name}' has "
                        f"verdict(s) {reprlib.repr(bad)} not in {list(step.verdicts)}"
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
    if not isinstance(value, typ) or (isinstance(value, bool) and typ is int):
        names = "/".join("mapping" if t is Mapping else t.__name__
                         for t in (typ if isinstance(typ, tuple) else (typ,)))
        raise CriteriaError(f"{where}: field '{key}' must be {names}, got {type(value).__name__}")
    return value


def _check_keys(raw: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key in raw:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise CriteriaError(f"{where}: unknown field {key!r}; {hint}allowed: {list(allowed)}")


def _check_tag(tag: str, where: str) -> str:
    if not _TAG_RE.match(tag):
        raise CriteriaError(f"{where}: tag {tag!r} must be letters, digits, '_' or '-'")
    return tag


def _as_tuple(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str) and value.strip():
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) and v.strip() for v in value):
        return tuple(value)
    raise CriteriaError(f"{where}: expected a verdict or a list of verdicts (non-empty text), "
                        f"got {value!r}")


def _opt_str(raw: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value.strip():
        raise CriteriaError(f"{where}: field '{key}' must be non-empty text, got {value!r}")
    return value


def _check_user_prompt(user: str, where: str) -> None:
    """Placeholders are plain names; literal braces are written doubled."""
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(user)
                  if name is not None]
    except ValueError as exc:
        raise CriteriaError(f"{where}: field 'user' has unbalanced braces ({exc}); "
                            "write {{ and }} for literal braces") from None
    for name, spec, conv in fields:
        if not _NAME_RE.match(name) or spec or conv:
            shown = "{" + name + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise CriteriaError(f"{where}: field 'user' has the placeholder {shown!r}; placeholders "
                                f"are plain names like {{query}} (write {{{{ and }}}} for literal braces)")
    names = {name for name, _, _ in fields}
    for name in REQUIRED_PLACEHOLDERS:
        if name not in names:
            raise CriteriaError(f"{where}: field 'user' must contain the placeholder {{{name}}}")


def parse_criteria(raw: Any, source: str = "<dict>") -> Criteria:
    """Validate a criteria mapping (as read from YAML) and build a `Criteria`."""
    if not isinstance(raw, Mapping):
        raise CriteriaError(f"{source}: top level must be a mapping, got {type(raw).__name__}")
    name = _req(raw, "name", source, str)
    where = f"{source} (criteria '{name}')"
    _check_keys(raw, TOP_KEYS, where)
    fmt = raw.get("format", "stepwise")
    if fmt not in FORMATS:
        raise CriteriaError(f"{where}: field 'format' must be one of {FORMATS}, got {fmt!r}")
    version = raw.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CriteriaError(f"{where}: field 'version' must be int, got {type(version).__name__}")
    for key in ("steps", "label_rules"):
        if raw.get(key) is not None and not isinstance(raw[key], list):
            raise CriteriaError(f"{where}: field '{key}' must be a list, got {type(raw[key]).__name__}")

    labels = []
    for i, lab in enumerate(_req(raw, "labels", where, list)):
        lw = f"{where}: labels[{i}]"
        if not isinstance(lab, Mapping):
            raise CriteriaError(f"{lw}: must be a mapping")
        _check_keys(lab, LABEL_KEYS, lw)
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
    _check_keys(answer, ANSWER_KEYS, f"{where}: answer")
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
        _check_keys(st, STEP_KEYS, sw)
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
        folded = [v.casefold() for v in verdicts]
        if len(set(folded)) != len(folded):
            raise CriteriaError(f"{sw}: field 'verdicts' has verdicts that differ only in case "
                                f"{list(verdicts)}; a response's verdict is read case-insensitively")
        gold_raw = st.get("gold_from_label")
        gold_raw = {} if gold_raw is None else gold_raw
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
            if not accepted:
                raise CriteriaError(f"{sw}: gold_from_label[{key}] is empty; leave the label out "
                                    "when the step cannot be checked from it")
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
    reasoning_tag = raw.get("reasoning_tag", DEFAULT_REASONING_TAG if fmt == "free_form" else None)
    if reasoning_tag is not None:
        if not isinstance(reasoning_tag, str):
            raise CriteriaError(f"{where}: field 'reasoning_tag' must be str, "
                                f"got {type(reasoning_tag).__name__}")
        _check_tag(reasoning_tag, f"{where}: reasoning_tag")
        if reasoning_tag in seen_tags:
            raise CriteriaError(f"{where}: reasoning_tag '{reasoning_tag}' is also a step or answer tag")

    step_by_name = {s.name: s for s in steps}
    rules = []
    for i, rule in enumerate(raw.get("label_rules") or []):
        rw = f"{where}: label_rules[{i}]"
        if not isinstance(rule, Mapping):
            raise CriteriaError(f"{rw}: must be a mapping with 'when' and 'label'")
        _check_keys(rule, RULE_KEYS, rw)
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
        _check_keys(body, PROMPT_KEYS, pw)
        user = _req(body, "user", pw, str)
        _check_user_prompt(user, pw)
        system = body.get("system")
        if system is not None and not isinstance(system, str):
            raise CriteriaError(f"{pw}: field 'system' must be str, got {type(system).__name__}")
        prompts[lang] = {"system": system or "", "user": user}
    if "en" not in prompts:
        raise CriteriaError(f"{where}: field 'prompt' needs at least the 'en' prompt")

    trace_style = raw.get("trace_style", "full")
    if trace_style not in TRACE_STYLES:
        raise CriteriaError(f"{where}: field 'trace_style' must be one of {TRACE_STYLES}, got {trace_style!r}")

    criteria = Criteria(
        name=name, format=fmt, labels=tuple(labels), steps=tuple(steps), answer_tag=answer_tag,
        prompts=prompts, label_rules=tuple(rules),
        verdict_marker=_opt_str(raw, "verdict_marker", "Verdict:", where),
        verdict_marker_zh=_opt_str(raw, "verdict_marker_zh", "结论:", where),
        reasoning_tag=reasoning_tag,
        answer_title=str(answer.get("title", "Answer")),
        answer_title_zh=str(answer.get("title_zh", "结论")),
        source=source, version=version, trace_style=trace_style, digest=content_digest(raw),
        _step_index={s.name: i for i, s in enumerate(steps)},
    )
    _check_verdicts_read_back(criteria, where)
    return criteria


def _check_verdicts_read_back(crit: Criteria, where: str) -> None:
    """Every verdict, written as the prompt asks, must be read back as itself.

    The reward parser is the one definition of how a verdict is read, so it is
    asked directly instead of restating its rules here.
    """
    if not crit.steps:
        return
    from data_prep.prompt import format_response  # lazy: both modules read this one
    from reward.parser import ResponseParser

    parser = ResponseParser(crit)
    label = crit.label_values[0]
    usual = {s.name: ("x", s.verdicts[0]) for s in crit.steps}
    for k, step in enumerate(crit.steps):
        for verdict in step.verdicts:
            for lang in LANGS:
                text = format_response({**usual, step.name: ("x", verdict)}, label, crit, lang)
                # Both parser paths: the fast one also takes a verdict written exactly.
                got = parser.parse(text).steps[k][2]
                if got == verdict:
                    got = parser.parse_slow(text).steps[k][2]
                if got != verdict:
                    read = "as no verdict" if got is None else f"as {got!r}"
                    raise CriteriaError(
                        f"{where}: step '{step.name}': verdict {verdict!r} is read back {read} "
                        f"after '{crit.marker(lang)}'; a verdict is the rest of the marker's line "
                        "with surrounding spaces and punctuation dropped, so it must be one line "
                        "without tags or the verdict marker")


def _check_rules_agree_with_gold(rules, steps, label_values, where) -> None:
    """Every combination of a label's gold verdicts must lead to that label under label_rules.

    Rules are tried in order (the first match wins, as in `label_from_verdicts`);
    a condition on a step the label leaves unverifiable is taken as met, so a rule
    that could fire first for some verdict of that step counts.
    """
    if not rules:
        return
    for lv in label_values:
        derivable = {s.name: s.gold_for_label(lv) for s in steps if s.gold_for_label(lv)}
        if not derivable:
            continue
        names = list(derivable)
        for combo in itertools.product(*(derivable[n] for n in names)):
            verdicts = dict(zip(names, combo))
            first = next((r for r in rules if all(
                verdicts[step] in allowed for step, allowed in r.when.items() if step in verdicts
            )), None)
            if first is None or first.label != lv:
                got = "no rule matches" if first is None else f"the first matching rule gives {first.label}"
                raise CriteriaError(
                    f"{where}: label_rules disagree with gold_from_label: for label {lv} the gold "
                    f"verdicts {verdicts} lead to {got}, not {lv}"
                )


def resolve_criteria_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    builtin = BUILTIN_DIR / f"{text}.yaml"
    if "/" not in text and not text.endswith((".yaml", ".yml")) and builtin.exists():
        return builtin
    path = Path(text)
    if path.is_dir():
        raise CriteriaError(f"criteria {text!r}: is a directory, expected a YAML file")
    if path.exists():
        return path
    names = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
    raise CriteriaError(f"criteria {text!r}: no such file and not a built-in name (built-in: {names})")


def content_digest(raw: Any) -> str:
    """A short hash of a criteria mapping's content: key order, YAML layout and comments aside."""
    def canonical(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): canonical(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [canonical(v) for v in value]
        return value
    text = json.dumps(canonical(raw), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None  # gone: re-reading says so in a CriteriaError
    return st.st_mtime_ns, st.st_size


# Loaded criteria by resolved path, with the stamps of the files read: a file is re-read when
# it, or a base it extends, changes on disk (the reward's parsers are keyed on the digest).
_BY_PATH: dict[str, tuple[tuple[tuple[Path, tuple[int, int] | None], ...], Criteria]] = {}


def _load_path(path: Path) -> Criteria:
    key = str(path)
    hit = _BY_PATH.get(key)
    if hit is not None and all(_stamp(p) == stamp for p, stamp in hit[0]):
        return hit[1]
    read = [(path, _stamp(path))]  # stamped before reading: a write in between is seen next time
    raw = _with_base(_read_yaml(path), key, read=read)
    crit = parse_criteria(raw, source=key)
    _BY_PATH[key] = (tuple(read), crit)
    return crit


def _read_yaml(path: str | Path) -> Any:
    """A criteria file's raw YAML, or a CriteriaError that names the file and the problem."""
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise CriteriaError(f"{path}: not valid YAML{where}: {problem}") from None
    except UnicodeDecodeError as exc:
        raise CriteriaError(f"{path}: not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise CriteriaError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return raw


def _with_base(raw: Any, path: str, seen: tuple[Path, ...] = (), read: list | None = None) -> Any:
    """``raw`` over the criteria it names in ``extends``: a prompt variant restates only what differs.

    Top-level keys replace the base's whole (a variant's ``prompt`` replaces every language's
    prompt); the base is resolved like any criteria name or path and may extend another.
    """
    if not isinstance(raw, Mapping) or "extends" not in raw:
        return raw
    base_name = raw["extends"]
    if not isinstance(base_name, str) or not base_name.strip():
        raise CriteriaError(f"{path}: field 'extends' must name a criteria (a built-in name or a YAML path)")
    base_path = resolve_criteria_path(base_name).resolve()
    chain = (*seen, Path(path).resolve())
    if base_path in chain:
        raise CriteriaError(f"{path}: field 'extends' makes a cycle: {' -> '.join(p.name for p in chain)} "
                            f"-> {base_path.name}")
    if read is not None:
        read.append((base_path, _stamp(base_path)))
    base = _read_yaml(base_path)  # an error names the base file, the one to mend
    return {**_with_base(base, str(base_path), chain, read), **{k: v for k, v in raw.items() if k != "extends"}}


def load_criteria(name_or_path: str | Path | Criteria | None = None) -> Criteria:
    """Load (and cache) a criteria config by built-in name or path."""
    if isinstance(name_or_path, Criteria):
        return name_or_path
    text = os.fspath(name_or_path or DEFAULT_CRITERIA)
    # A relative path means another file in another working directory.
    key = (text, "" if os.path.isabs(text) or text in _BUILTIN_NAMES else os.getcwd())
    path = _RESOLVED.get(key)
    if path is None:
        path = _RESOLVED[key] = resolve_criteria_path(text).resolve()
    return _load_path(path)


_RESOLVED: dict[tuple[str, str], Path] = {}  # (name or path, working directory) -> resolved path
_BUILTIN_NAMES = frozenset(p.stem for p in BUILTIN_DIR.glob("*.yaml"))


def builtin_criteria() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))
