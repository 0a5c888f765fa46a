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

The wording of every step is data, in `trace_templates.yaml` next to this module.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from data_prep import benchmark_lexicon as lex
from data_prep.criteria import Criteria, load_criteria
from data_prep.prompt import format_answer, format_response

NA = "n/a"

TEMPLATES_FILE = Path(__file__).with_name("trace_templates.yaml")
# The templates each language of a style must define; the nested ones map a name to a template.
_FULL_KEYS = ("need", "kind", "ctype", "query", "compare", "constraints", "no_constraints", "c_item", "at_most",
              "exact", "passing", "sibling", "collision", "unrelated", "met", "unmet_intent", "unmet_passing",
              "need_na", "c_none", "c_check", "c_price", "c_ok", "c_bad", "c_na")
_PAPER_KEYS = ("coverage", "category", "hit", "miss", "initial", "calibrated_same", "calibrated_down")


@dataclass(frozen=True)
class TraceTemplates:
    full: Mapping[str, Mapping[str, Any]]  # lang -> template name -> text (or name -> text)
    terse: Mapping[str, Mapping[str, Any]]  # lang -> the templates that replace full's; no entry: no terse style
    paper: Mapping[str, Mapping[str, Any]]  # lang -> the paper criteria's own steps


_COVERAGE = {"exact_match": "most", "constraint_violated": "most", "other_intent": "part",
             "passing_mention": "mention"}  # any other case: "none"
# The initial label: what subject and need alone give, before the constraint rules.
_INITIAL = {"unrelated": -1, "related": 0, "unmet": 1, "met": 3}
_NESTED_KEYS = {"need": lex.INTENTS, "kind": lex.INTENTS, "ctype": lex.CONSTRAINT_TYPES,
                "coverage": (*dict.fromkeys(_COVERAGE.values()), "none")}


def _read_language(f: lex.DataFile, node: Any, field: str, required: tuple, optional: tuple = ()) -> dict:
    out = {}
    for key, value in f.mapping(node, field, required, optional).items():
        where = f"{field}.{key}"
        if key in _NESTED_KEYS:
            nested = f.mapping(value, where, _NESTED_KEYS[key])
            out[key] = {k: f.string(v, f"{where}.{k}") for k, v in nested.items()}
        else:  # a terse style leaves skipped steps empty
            out[key] = f.string(value, where, allow_empty=True)
    return out


@functools.lru_cache(maxsize=None)
def load_trace_templates(path: str | Path = TEMPLATES_FILE) -> TraceTemplates:
    """The trace wording, read once per file; a malformed file raises `lex.DataFileError`."""
    f = lex.DataFile(path)
    top = f.mapping(f.data, "", ("full", "terse", "paper"))
    return TraceTemplates(
        full=f.table(top["full"], "full", lex.LANGS, lambda n, fl: _read_language(f, n, fl, _FULL_KEYS)),
        terse={lang: _read_language(f, n, f"terse.{lang}", (), _FULL_KEYS)
               for lang, n in f.mapping(top["terse"], "terse", (), lex.LANGS).items()},
        paper=f.table(top["paper"], "paper", lex.LANGS, lambda n, fl: _read_language(f, n, fl, _PAPER_KEYS)))


def _paper_step_texts(row: Mapping[str, Any], lang: str,
                      texts: Mapping[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """(text, verdict) for the paper criteria's own steps, from the same annotations."""
    t = load_trace_templates().paper[lang]
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


def _templates(lang: str, style: str) -> Mapping[str, Any]:
    templates = load_trace_templates()
    if style == "full":
        return templates.full[lang]
    if lang not in templates.terse:
        raise ValueError(f"the {style!r} trace style has no {lang!r} templates (has {sorted(templates.terse)})")
    return {**templates.full[lang], **templates.terse[lang]}


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
    for a free-form criteria the same reasoning goes into its reasoning tag. The answer is the
    row's ``answer_label`` where a teacher's view set one (`data_prep.teacher`), else its label.
    """
    crit = load_criteria(criteria)
    lang = lang or row.get("lang") or "en"
    if row.get("label") is None or not row.get("step_gold"):
        raise ValueError(f"row {row.get('id')}: a trace needs a label and step annotations")
    texts = _step_texts(row, lang, crit.trace_style)
    answer = int(row.get("answer_label", row["label"]))
    if crit.format == "free_form":
        reasoning = "\n".join(text for text, _ in texts.values())
        return format_response({}, answer, crit, lang, reasoning=reasoning)
    texts = {**texts, **_paper_step_texts(row, lang, texts)}
    unknown = [s for s in crit.step_names if s not in texts]
    if unknown:
        raise ValueError(f"criteria '{crit.name}' has steps {unknown} that benchmark rows do not annotate")
    return format_response({s: texts[s] for s in crit.step_names}, answer, crit, lang)


def label_only_response(label: int, criteria: Criteria | str | None = None) -> str:
    """Just the answer, e.g. ``<answer>3</answer>`` (the no-reasoning SFT ablation)."""
    return format_answer(int(label), load_criteria(criteria))
