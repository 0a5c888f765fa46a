"""Warm-up responses built from a benchmark row's annotations.

`build_trace` writes the criteria-guided reasoning a good judge would give for
the row (what the query asks, whether the note is about that subject, whether
it serves the need, whether each constraint holds) and the label, through
`data_prep.prompt.format_response`, so the reward parser reads back exactly the
annotated verdicts. `label_only_response` is the ablation without reasoning.

Steps a label leaves undefined (need for an unrelated note, constraints for an
unmet need) are written with the verdict "n/a", as the prompt instructs.

The paper-shaped criteria (`paper`) gets its own steps from the same
annotations: how much of the note is about the query, category match, keyword
hits, an initial label from subject and need alone, and a label calibrated by
the constraint rules, so the two labels differ exactly where a constraint is
violated (initial 3, calibrated 2).
"""

from __future__ import annotations

from typing import Any, Mapping

from data_prep import benchmark_lexicon as lex
from data_prep.criteria import Criteria, load_criteria
from data_prep.prompt import format_answer, format_response

NA = "n/a"

_TEXT = {
    "en": {
        "need": {
            "how-to": "step-by-step instructions", "recommendation": "recommended picks",
            "review": "a review based on real experience", "place": "where to go for it",
            "purchase": "where and how to buy it", "comparison": "a comparison of the two",
            "inspiration": "ideas and inspiration",
        },
        "kind": {
            "how-to": "a step-by-step guide", "recommendation": "a list of recommended picks",
            "review": "a personal review", "place": "a guide to a place", "purchase": "a buying and deals post",
            "comparison": "a side-by-side comparison", "inspiration": "a post of ideas and inspiration",
        },
        "ctype": {"place": "place", "price": "price", "audience": "audience", "time": "time",
                  "attribute": "attribute"},
        "query": "The query \"{query}\" is about {subject} ({domain}). The user wants {need}.",
        "compare": " It compares {subject} with {other}.",
        "constraints": " Explicit constraints: {items}.",
        "no_constraints": " There are no explicit constraints.",
        "c_item": "{ctype} = {value}",
        "at_most": "at most {v}",
        "exact": "The note is about {subject} itself, the same subject as the query.",
        "passing": "The note mentions {subject}, the query's subject, but its main topic is {note_subject}.",
        "sibling": "The note is about {note_subject}, not {subject}. Both are {category} in {domain}, "
                   "so the subject is related but not the same.",
        "collision": "The note is about {note_subject} ({note_domain}). It only shares the word "
                     "\"{keyword}\" with {subject} ({domain}); they are different things.",
        "unrelated": "The note is about {note_subject} ({note_domain}), which has nothing to do with "
                     "{subject} ({domain}).",
        "met": "The note is {kind} about {subject}, which serves what the query wants: {need}.",
        "unmet_intent": "The note is {kind}, but the query wants {need}, so the need is not met.",
        "unmet_passing": "The note only mentions {subject} in passing; it does not give {need}.",
        "need_na": "The note is not about the query's subject, so the need is not assessed.",
        "c_none": "The query has no explicit constraint.",
        "c_check": "{ctype}: the query asks for {value}; the note says {note_value}, {verdict}.",
        "c_price": "price: the query asks for at most {value}; the note says {note_value}, {verdict}.",
        "c_ok": "satisfied", "c_bad": "violated",
        "c_na": "An earlier step already failed, so the constraints are not checked.",
    },
    "zh": {
        "need": {
            "how-to": "具体的操作步骤", "recommendation": "推荐的选择", "review": "真实的使用评价",
            "place": "去哪里的信息", "purchase": "购买渠道和价格", "comparison": "两者的对比",
            "inspiration": "灵感和创意",
        },
        "kind": {
            "how-to": "步骤教程", "recommendation": "推荐清单", "review": "个人测评", "place": "地点攻略",
            "purchase": "购买攻略", "comparison": "横向对比", "inspiration": "灵感合集",
        },
        "ctype": {"place": "地点", "price": "价格", "audience": "人群", "time": "时间", "attribute": "属性"},
        "query": "查询“{query}”的主体是{subject}（{domain}），用户想要{need}。",
        "compare": "查询把{subject}和{other}做比较。",
        "constraints": "显式限定：{items}。",
        "no_constraints": "没有显式限定。",
        "c_item": "{ctype}={value}",
        "at_most": "不超过{v}",
        "exact": "笔记讲的就是{subject}本身，与查询主体一致。",
        "passing": "笔记提到了查询主体{subject}，但主要讲的是{note_subject}。",
        "sibling": "笔记讲的是{note_subject}，不是{subject}。两者同属{domain}的{category}，主体相关但不相同。",
        "collision": "笔记讲的是{note_subject}（{note_domain}），只是和{subject}（{domain}）共用了“{keyword}”"
                     "这个词，两者完全不是一回事。",
        "unrelated": "笔记讲的是{note_subject}（{note_domain}），与{subject}（{domain}）无关。",
        "met": "笔记是关于{subject}的{kind}，正好提供了查询想要的{need}。",
        "unmet_intent": "笔记是{kind}，而查询想要的是{need}，需求没有满足。",
        "unmet_passing": "笔记只是顺带提到{subject}，没有提供{need}。",
        "need_na": "笔记主体与查询不一致，不评估需求。",
        "c_none": "查询没有显式限定。",
        "c_check": "{ctype}：查询要求{value}，笔记写的是{note_value}，{verdict}。",
        "c_price": "价格：查询要求不超过{value}，笔记写的是{note_value}，{verdict}。",
        "c_ok": "满足", "c_bad": "不满足",
        "c_na": "前面的步骤已不满足，不再检查限定条件。",
    },
}


_PAPER_TEXT = {
    "en": {
        "coverage": {"most": "Nearly all of the note is about what the query asks.",
                     "part": "The note is about the query's subject, but for another need.",
                     "mention": "The query's subject only comes up in passing.",
                     "none": "The note is about something other than the query's subject."},
        "category": "The query's subject is {category} in {domain}; the note's subject is {note_category} "
                    "in {note_domain}.",
        "hit": "The query's words (\"{word}\") appear in the note.",
        "miss": "The query's words (\"{word}\") do not appear in the note.",
        "initial": "From the subject and the need alone the level is {level}.",
        "calibrated_same": "The business rules do not change the level: it stays {level}.",
        "calibrated_down": "A condition of the query is broken, so the level drops from {initial} to {level}.",
    },
    "zh": {
        "coverage": {"most": "笔记几乎全部在讲查询所问的内容。", "part": "笔记讲的是查询主体，但对应别的需求。",
                     "mention": "笔记只是顺带提到查询主体。", "none": "笔记讲的不是查询主体。"},
        "category": "查询主体属于{domain}的{category}；笔记主体属于{note_domain}的{note_category}。",
        "hit": "查询的关键词（“{word}”）出现在笔记中。",
        "miss": "查询的关键词（“{word}”）没有出现在笔记中。",
        "initial": "只看主体和需求，等级为 {level}。",
        "calibrated_same": "业务规则不改变等级：仍为 {level}。",
        "calibrated_down": "查询的条件没有满足，等级从 {initial} 降为 {level}。",
    },
}
_COVERAGE = {"exact_match": "most", "constraint_violated": "most", "other_intent": "part",
             "passing_mention": "mention"}  # any other case: "none"
# The initial label: what subject and need alone give, before the constraint rules.
_INITIAL = {"unrelated": -1, "related": 0, "unmet": 1, "met": 3}


def _paper_step_texts(row: Mapping[str, Any], lang: str,
                      texts: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """(text, verdict) for the paper criteria's own steps, from the same annotations."""
    t = _PAPER_TEXT[lang]
    gold, label = row["step_gold"], int(row["label"])
    coverage = _COVERAGE.get(row.get("case"), "none")
    names = dict(category=lex.category_name(row["category"], lang), domain=lex.domain_name(row["domain"], lang),
                 note_category=lex.category_name(row["note_category"], lang),
                 note_domain=lex.domain_name(row["note_domain"], lang))
    word = row.get("collision_keyword") or row["subject"]
    note_text = f"{row['title']}\n{row['content']}".lower()
    hit = "hit" if word.lower() in note_text else "miss"
    subject = gold["subject_match"]
    initial = _INITIAL[gold.get("need", subject) if subject == "exact" else subject]
    sep = " " if lang == "en" else ""
    if initial == label:
        calibrated = t["calibrated_same"].format(level=label)
    else:
        calibrated = t["calibrated_down"].format(initial=initial, level=label)
    return {
        "coverage": (texts["subject_match"][0] + sep + t["coverage"][coverage], coverage),
        "category_match": (t["category"].format(**names), "same" if label >= 0 else "different"),
        "keyword_hits": (t[hit].format(word=word), hit),
        "initial_label": (texts["need"][0] + sep + t["initial"].format(level=initial), str(initial)),
        "calibration": (f"{texts['constraints'][0]}\n{calibrated}", str(label)),
    }


# The terse style keeps what each step finds (the subjects, the need, each constraint's values)
# and drops the restated query and the boilerplate of skipped steps: a response of ~1/3 the
# tokens, for models small enough that generation length sets the cost (the CPU miniature).
_TERSE = {
    "en": {
        "query": "Subject: {subject}. Wants: {need}.",
        "compare": " Versus {other}.",
        "constraints": " Constraints: {items}.",
        "no_constraints": " No constraints.",
        "c_item": "{ctype} {value}",
        "exact": "Note: {subject}.",
        "passing": "Note: {note_subject}; {subject} in passing.",
        "sibling": "Note: {note_subject}, a sibling.",
        "collision": "Note: {note_subject}; only \"{keyword}\" is shared.",
        "unrelated": "Note: {note_subject}.",
        "met": "Note gives {need}.",
        "unmet_intent": "Note is {kind}.",
        "unmet_passing": "Only a passing mention.",
        "need_na": "",
        "c_none": "",
        "c_check": "{ctype} {value}: note {note_value}, {verdict}.",
        "c_price": "price at most {value}: note {note_value}, {verdict}.",
        "c_na": "",
    },
}

def _templates(lang: str, style: str) -> Mapping[str, Any]:
    if style == "full":
        return _TEXT[lang]
    if lang not in _TERSE:
        raise ValueError(f"the {style!r} trace style has no {lang!r} templates (has {sorted(_TERSE)})")
    return {**_TEXT[lang], **_TERSE[lang]}


def _step_texts(row: Mapping[str, Any], lang: str, style: str = "full") -> dict[str, tuple[str, str]]:
    """(text, verdict) for each step of the benchmark's annotation schema."""
    t = _templates(lang, style)
    gold = row["step_gold"]
    intent = row["intent"]
    names = dict(
        query=row["query"], subject=row["subject"], need=t["need"][intent],
        domain=lex.domain_name(row["domain"], lang),
        note_subject=row.get("note_subject") or "",
        note_domain=lex.domain_name(row["note_domain"], lang) if row.get("note_domain") else "",
        category=lex.category_name(row["category"], lang),
        keyword=row.get("collision_keyword") or "", kind=t["kind"].get(row.get("note_intent") or "", ""),
    )
    constraints = row.get("constraints") or []

    qa = t["query"].format(**names)
    if row.get("compare_with"):
        qa += t["compare"].format(subject=row["subject"], other=row["compare_with"])
    if constraints:
        items = ("; " if lang == "en" else "；").join(
            t["c_item"].format(ctype=t["ctype"][c["type"]],
                               value=(t["at_most"] if c["type"] == "price" else "{v}").format(v=c["value"]))
            for c in constraints)
        qa += t["constraints"].format(items=items)
    else:
        qa += t["no_constraints"]

    subject_verdict = gold["subject_match"]
    case = row.get("case")
    if subject_verdict == "exact":
        sm = t["passing" if case == "passing_mention" else "exact"].format(**names)
    elif subject_verdict == "related":
        sm = t["sibling"].format(**names)
    else:
        sm = t["collision" if row.get("collision_keyword") else "unrelated"].format(**names)

    need_verdict = gold.get("need", NA)
    if need_verdict == "met":
        need = t["met"].format(**names)
    elif need_verdict == "unmet":
        need = t["unmet_passing" if case == "passing_mention" else "unmet_intent"].format(**names)
    else:
        need = t["need_na"]

    c_verdict = gold.get("constraints", NA)
    if c_verdict == NA:
        ctext = t["c_na"]
    elif c_verdict == "none":
        ctext = t["c_none"]
    else:
        parts = []
        for c in constraints:
            tpl = t["c_price"] if c["type"] == "price" else t["c_check"]
            parts.append(tpl.format(ctype=t["ctype"][c["type"]], value=c["value"], note_value=c["note_value"],
                                    verdict=t["c_ok"] if c["satisfied"] else t["c_bad"]))
        ctext = ("\n" if lang == "en" else "\n").join(parts)

    return {
        "query_analysis": (qa, gold["query_analysis"]),
        "subject_match": (sm, subject_verdict),
        "need": (need, need_verdict),
        "constraints": (ctext, c_verdict),
    }


def build_trace(row: Mapping[str, Any], criteria: Criteria | str | None = None, lang: str | None = None) -> str:
    """The full warm-up response for a labelled benchmark row.

    For a step-wise criteria every step must be one the benchmark annotates;
    for a free-form criteria the same reasoning goes into its reasoning tag.
    """
    crit = load_criteria(criteria)
    lang = lang or row.get("lang") or "en"
    if row.get("label") is None or not row.get("step_gold"):
        raise ValueError(f"row {row.get('id')}: a trace needs a label and step annotations")
    texts = _step_texts(row, lang, crit.trace_style)
    if crit.format == "free_form":
        reasoning = "\n".join(text for text, _ in texts.values())
        return format_response({}, int(row["label"]), crit, lang, reasoning=reasoning)
    texts = {**texts, **_paper_step_texts(row, lang, texts)}
    unknown = [s for s in crit.step_names if s not in texts]
    if unknown:
        raise ValueError(f"criteria '{crit.name}' has steps {unknown} that benchmark rows do not annotate")
    return format_response({s: texts[s] for s in crit.step_names}, int(row["label"]), crit, lang)


def label_only_response(label: int, criteria: Criteria | str | None = None) -> str:
    """Just the answer, e.g. ``<answer>3</answer>`` (the no-reasoning SFT ablation)."""
    return format_answer(int(label), load_criteria(criteria))
