"""Prompt rendering (en/zh, stepwise and free-form) and the response format round trip."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from data_prep.criteria import load_criteria
from data_prep.prompt import format_response, get_renderer, render_prompt, tags_text

DEFAULT = load_criteria("default")
FREE = load_criteria("free_form")

try:  # the reward parser, when it is there, must read back what format_response writes
    from reward import compute_score
except ImportError:  # pragma: no cover
    compute_score = None


def user_text(*args, **kwargs) -> str:
    messages = render_prompt(*args, **kwargs)
    assert [m["role"] for m in messages] == ["system", "user"]
    return messages[1]["content"]


def test_english_prompt_has_system_and_row_fields():
    messages = render_prompt("cheap hotpot chengdu", "Best hotpot in town", "We queued for an hour.",
                             ["food", "#travel"])
    assert messages[0] == {"role": "system", "content": DEFAULT.prompts["en"]["system"]}
    user = messages[1]["content"]
    assert user == user.strip()
    assert "Query: cheap hotpot chengdu\n" in user
    assert "Note title: Best hotpot in town\n" in user
    assert "Note content: We queued for an hour.\n" in user
    assert user.endswith("Note tags: #food #travel")
    assert "one of 3, 2, 1, 0, -1" in user and "<answer>level</answer>" in user


def test_chinese_prompt():
    messages = render_prompt("成都 火锅", "成都火锅推荐", "排队一小时。", ["美食"], lang="zh")
    assert messages[0]["content"] == DEFAULT.prompts["zh"]["system"]
    user = messages[1]["content"]
    assert "查询：成都 火锅" in user and "笔记标题：成都火锅推荐" in user and "笔记标签：#美食" in user
    for step in DEFAULT.steps:
        assert f"{step.title_zh} <{step.tag}>" in user
    for label in DEFAULT.labels:
        assert label.rule_zh in user
    assert "结论:" in user and "Verdict:" not in user


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_step_tag_and_verdict_is_in_the_prompt(lang):
    user = user_text("q", "t", "c", criteria=DEFAULT, lang=lang)
    marker = DEFAULT.marker(lang)
    for step in DEFAULT.steps:
        line = next(ln for ln in user.splitlines() if f"<{step.tag}>...</{step.tag}>" in ln)
        assert f"({marker} {' / '.join(step.verdicts)})" in line
    assert f"<{DEFAULT.answer_tag}>" in user
    positions = [user.index(f"<{s.tag}>") for s in DEFAULT.steps]
    assert positions == sorted(positions)  # steps listed in schema order


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_free_form_prompt_has_no_steps(lang):
    user = user_text("q", "t", "c", criteria="free_form", lang=lang)
    assert "<think></think>" in user and "<answer>" in user
    assert "3, 2, 1, 0, -1" in user
    for step in DEFAULT.steps:
        assert f"<{step.tag}>" not in user
    assert "{" not in user  # every placeholder filled


@pytest.mark.parametrize("tags,shown", [
    (["food", "travel"], "#food #travel"),
    (["#food", "##travel"], "#food #travel"),
    ("#already #text", "#already #text"),
    ([], "-"),
    (None, "-"),
    ("", "-"),
])
def test_tags_rendering(tags, shown):
    assert tags_text(tags) == shown
    assert user_text("q", "t", "c", tags).endswith(f"Note tags: {shown}")


@pytest.mark.parametrize("text", ["{query}", "{0}", "{}", "{{x}}", "}{", "{title!r:>9}", "100% {", "%s %(x)s"])
def test_braces_and_percent_in_row_text_are_kept(text):
    user = user_text(text, f"title {text}", f"content {text}", [text])
    assert f"Query: {text}\n" in user
    assert f"Note title: title {text}\n" in user
    assert f"Note content: content {text}\n" in user
    assert user.endswith(f"Note tags: #{text.lstrip('#')}")


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match=r"no prompt for language 'fr' \(has \['en', 'zh'\]\)"):
        render_prompt("q", "t", "c", lang="fr")


def test_criteria_by_name_object_or_path(tmp_path):
    by_name = render_prompt("q", "t", "c", criteria="default")
    assert render_prompt("q", "t", "c", criteria=DEFAULT) == by_name
    assert render_prompt("q", "t", "c") == by_name
    path = tmp_path / "copy.yaml"
    path.write_text(Path(DEFAULT.source).read_text(encoding="utf-8"), encoding="utf-8")
    assert render_prompt("q", "t", "c", criteria=str(path)) == by_name
    assert get_renderer(DEFAULT, "en") is get_renderer("default", "en")  # built once


def test_custom_prompt_placeholders(tmp_path):
    raw = yaml.safe_load(Path(DEFAULT.source).read_text(encoding="utf-8"))
    raw["prompt"] = {"en": {"user": "  {content} | {title} | {query} | {note_id} | {{literal}} | "
                                     "{answer_tag} {verdict_marker} {tags} {content}\n\n"}}
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    messages = render_prompt("Q", "T", "C", ["x"], criteria=str(path))
    assert messages == [{"role": "user", "content":  # no system prompt: one message
                         "C | T | Q | {note_id} | {literal} | answer Verdict: #x C"}]


def _response(label: int, lang: str = "en") -> str:
    verdicts = {}
    for step in DEFAULT.steps:
        gold = step.gold_for_label(label)
        verdicts[step.name] = gold[0] if gold else ("n/a" if "n/a" in step.verdicts else step.verdicts[0])
    assert DEFAULT.label_from_verdicts(verdicts) == label
    steps = {name: (f"Reasoning about {name}.\nSecond line {{with braces}}.", v) for name, v in verdicts.items()}
    return format_response(steps, label, DEFAULT, lang=lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("label", [3, 2, 1, 0, -1])
def test_format_response_round_trips(label, lang):
    text = _response(label, lang)
    marker = re.escape(DEFAULT.marker(lang))
    pattern = "".join(rf"<{s.tag}>\n(?P<t{i}>.*?)\n{marker} (?P<v{i}>\S+)\n</{s.tag}>\n"
                      for i, s in enumerate(DEFAULT.steps)) + r"<answer>(?P<label>-?\d)</answer>"
    match = re.fullmatch(pattern, text, flags=re.S)
    assert match, text
    verdicts = {s.name: match[f"v{i}"] for i, s in enumerate(DEFAULT.steps)}
    assert int(match["label"]) == label
    assert DEFAULT.label_from_verdicts(verdicts) == label
    assert match["t1"] == "Reasoning about subject_match.\nSecond line {with braces}."


@pytest.mark.skipif(compute_score is None, reason="the reward package is not importable")
@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("label", [3, 2, 1, 0, -1])
def test_format_response_scores_full_marks(label, lang):
    out = compute_score("grm_relevance", _response(label, lang), str(label), {"lang": lang})
    assert out["score"] == 1.0 and out["format_ok"] == 1.0 and out["pred"] == label


def test_free_form_response_round_trips():
    text = format_response({}, -1, FREE, reasoning="  thinking it over  ")
    assert text == "<think>\nthinking it over\n</think>\n<answer>-1</answer>"
    if compute_score is not None:
        assert compute_score("grm_relevance", text, -1, {"criteria": "free_form"})["score"] == 1.0
