"""Render the chat prompt for a (query, note) pair, and the response format.

The response format written here (by warm-up traces) is the one the reward
parser reads back:

    <query_analysis>
    free text ...
    Verdict: how-to
    </query_analysis>
    ...
    <answer>3</answer>
"""

from __future__ import annotations

import string
from typing import Mapping, Sequence

from data_prep.criteria import Criteria, Step, load_criteria


def _step_instruction(i: int, step: Step, crit: Criteria, lang: str) -> str:
    title = step.title_zh if lang == "zh" and step.title_zh else step.title
    question = step.question_zh if lang == "zh" and step.question_zh else step.question
    verdicts = " / ".join(step.verdicts)
    return f"{i}. {title} <{step.tag}>...</{step.tag}>: {question} ({crit.marker(lang)} {verdicts})"


def _label_rules_text(crit: Criteria, lang: str) -> str:
    lines = []
    for lab in crit.labels:
        rule = lab.rule_zh if lang == "zh" and lab.rule_zh else lab.rule
        lines.append(f"{lab.value} ({lab.name}): {rule}".rstrip(": "))
    return "\n".join(lines)


_ROW_FIELDS = ("query", "title", "content", "tags")


def _static_fields(crit: Criteria, lang: str) -> dict[str, str]:
    return {
        "label_rules": _label_rules_text(crit, lang),
        "step_instructions": "\n".join(
            _step_instruction(i + 1, s, crit, lang) for i, s in enumerate(crit.steps)),
        "verdict_marker": crit.marker(lang),
        "label_values": ", ".join(str(v) for v in crit.label_values),
        "step_tags": " ".join(f"<{s.tag}>" for s in crit.steps),  # the steps' order, in a few tokens
        "answer_tag": crit.answer_tag,
        # Only a free-form criteria has a reasoning block (the loader gives it its default tag).
        **({"reasoning_tag": crit.reasoning_tag} if crit.reasoning_tag else {}),
    }


class PromptRenderer:
    """The chat prompt of one criteria and language, with every constant part built once.

    The user template is split into its literal pieces and the row's fields
    (query, title, content, tags); a row is rendered by one string join, so text
    from the row (braces included) is inserted as it is. Placeholders the
    criteria does not know are shown literally.
    """

    def __init__(self, crit: Criteria, lang: str = "en"):
        if lang not in crit.prompts:
            raise ValueError(f"criteria '{crit.name}' has no prompt for language {lang!r} "
                             f"(has {sorted(crit.prompts)})")
        self.criteria, self.lang = crit, lang
        self.system: str = crit.prompts[lang].get("system") or ""
        static = _static_fields(crit, lang)
        literals, fields, text = [], [], ""
        for literal, name, _spec, _conv in string.Formatter().parse(crit.prompts[lang]["user"]):
            text += literal
            if name is None:
                continue
            if name in _ROW_FIELDS:
                literals.append(text)
                fields.append(name)
                text = ""
            else:
                text += static.get(name, "{" + name + "}")
        literals.append(text)
        literals[0] = literals[0].lstrip()  # the template is stripped, as str.strip() would
        literals[-1] = literals[-1].rstrip()
        # "".join over a tuple of literals and arguments: no template scanning per row.
        parts = []
        for i, name in enumerate(fields):
            parts += [f"L{i}", name]
        parts.append(f"L{len(fields)}")
        namespace = {f"L{i}": lit for i, lit in enumerate(literals)}
        self.user = eval(  # noqa: S307 - source built from fixed identifiers only
            f"lambda {', '.join(_ROW_FIELDS)}: ''.join(({', '.join(parts)},))", namespace)

    def messages(self, query: str, title: str, content: str, tags: str) -> list[dict[str, str]]:
        user = {"role": "user", "content": self.user(query, title, content, tags)}
        if self.system:
            return [{"role": "system", "content": self.system}, user]
        return [user]


_RENDERERS: dict[tuple[int, str], PromptRenderer] = {}


def get_renderer(criteria: Criteria | str | None = None, lang: str = "en") -> PromptRenderer:
    """The cached renderer of a criteria (object, built-in name or path) and language."""
    crit = criteria if isinstance(criteria, Criteria) else load_criteria(criteria)
    hit = _RENDERERS.get((id(crit), lang))
    if hit is None or hit.criteria is not crit:
        hit = _RENDERERS[(id(crit), lang)] = PromptRenderer(crit, lang)
    return hit


def tags_text(tags: Sequence[str] | str | None) -> str:
    """Tags as shown in the prompt: "#a #b", a string as given, "-" for none."""
    if isinstance(tags, str):
        return tags or "-"
    if not tags:
        return "-"
    return "#" + " #".join([t.lstrip("#") for t in tags])


def render_prompt(
    query: str,
    title: str,
    content: str,
    tags: Sequence[str] | str | None = None,
    criteria: Criteria | str | None = None,
    lang: str = "en",
) -> list[dict[str, str]]:
    """Chat messages (system + user) asking for a criteria-guided judgement."""
    return get_renderer(criteria, lang).messages(query, title, content, tags_text(tags))


def format_step(step: Step, text: str, verdict: str, crit: Criteria, lang: str = "en") -> str:
    body = f"{text.strip()}\n" if text.strip() else ""  # a terse trace's skipped step: the verdict alone
    return f"<{step.tag}>\n{body}{crit.marker(lang)} {verdict}\n</{step.tag}>"


def format_answer(label: int, crit: Criteria) -> str:
    return f"<{crit.answer_tag}>{label}</{crit.answer_tag}>"


def format_response(
    step_texts: Mapping[str, tuple[str, str]],
    label: int,
    criteria: Criteria | str | None = None,
    lang: str = "en",
    reasoning: str | None = None,
) -> str:
    """A well-formed response: each step as (text, verdict), then the answer.

    For a free-form criteria, ``reasoning`` goes into the reasoning tag.
    """
    crit = load_criteria(criteria)
    parts = []
    if crit.format == "free_form":
        tag = crit.reasoning_tag
        parts.append(f"<{tag}>\n{(reasoning or '').strip()}\n</{tag}>")
    for step in crit.steps:
        text, verdict = step_texts[step.name]
        parts.append(format_step(step, text, verdict, crit, lang))
    parts.append(format_answer(label, crit))
    return "\n".join(parts)
