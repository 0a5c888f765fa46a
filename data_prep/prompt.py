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


_TEMPLATE_CACHE: dict[tuple[int, str], tuple[Criteria, str]] = {}


class _KeepDynamic(dict):
    """First formatting pass: fill the criteria parts, keep per-row placeholders."""

    def __missing__(self, key: str) -> str:
        if key in ("query", "title", "content", "tags"):
            return "{" + key + "}"
        return "{{" + key + "}}"  # unknown placeholder: shown literally


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


def _user_template(crit: Criteria, lang: str) -> str:
    """The user prompt with everything but the row's fields filled in, built once per criteria."""
    key = (id(crit), lang)
    hit = _TEMPLATE_CACHE.get(key)
    if hit is None or hit[0] is not crit:
        static = _KeepDynamic(
            label_rules=_escape(_label_rules_text(crit, lang)),
            step_instructions=_escape("\n".join(
                _step_instruction(i + 1, s, crit, lang) for i, s in enumerate(crit.steps))),
            verdict_marker=_escape(crit.marker(lang)),
            label_values=", ".join(str(v) for v in crit.label_values),
            answer_tag=crit.answer_tag,
            reasoning_tag=crit.reasoning_tag or "think",
        )
        template = crit.prompts[lang]["user"].format_map(static).strip()
        hit = _TEMPLATE_CACHE[key] = (crit, template)
    return hit[1]


def render_prompt(
    query: str,
    title: str,
    content: str,
    tags: Sequence[str] | str | None = None,
    criteria: Criteria | str | None = None,
    lang: str = "en",
) -> list[dict[str, str]]:
    """Chat messages (system + user) asking for a criteria-guided judgement."""
    crit = load_criteria(criteria)
    if lang not in crit.prompts:
        raise ValueError(f"criteria '{crit.name}' has no prompt for language {lang!r} "
                         f"(has {sorted(crit.prompts)})")
    if isinstance(tags, str):
        tag_text = tags
    else:
        tag_text = " ".join(f"#{t.lstrip('#')}" for t in (tags or []))
    body = crit.prompts[lang]
    user = _user_template(crit, lang).format(
        query=query, title=title, content=content, tags=tag_text or "-")
    messages = []
    if body.get("system"):
        messages.append({"role": "system", "content": body["system"]})
    messages.append({"role": "user", "content": user})
    return messages


def format_step(step: Step, text: str, verdict: str, crit: Criteria, lang: str = "en") -> str:
    return f"<{step.tag}>\n{text.strip()}\n{crit.marker(lang)} {verdict}\n</{step.tag}>"


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
        tag = crit.reasoning_tag or "think"
        parts.append(f"<{tag}>\n{(reasoning or '').strip()}\n</{tag}>")
    for step in crit.steps:
        text, verdict = step_texts[step.name]
        parts.append(format_step(step, text, verdict, crit, lang))
    parts.append(format_answer(label, crit))
    return "\n".join(parts)
