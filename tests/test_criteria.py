"""Criteria configs: the built-ins, validation errors (naming the file and the field),
gold verdicts from a label and from annotations, and the label rules."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import pytest
import yaml

from data_prep.criteria import (
    BUILTIN_DIR,
    Criteria,
    CriteriaError,
    builtin_criteria,
    load_criteria,
    parse_criteria,
)

DEFAULT = load_criteria("default")
RAW_DEFAULT = yaml.safe_load((BUILTIN_DIR / "default.yaml").read_text(encoding="utf-8"))
RAW_FREE = yaml.safe_load((BUILTIN_DIR / "free_form.yaml").read_text(encoding="utf-8"))


def write(tmp_path: Path, raw, name: str = "crit.yaml") -> Path:
    path = tmp_path / name
    path.write_text(raw if isinstance(raw, str) else yaml.safe_dump(raw, allow_unicode=True),
                    encoding="utf-8")
    return path


def step(raw: dict, name: str) -> dict:
    return next(s for s in raw["steps"] if s["name"] == name)


# -- built-ins ------------------------------------------------------------------------


def test_builtins_are_listed_and_load():
    assert {"default", "free_form"} <= set(builtin_criteria())
    for name in builtin_criteria():
        crit = load_criteria(name)
        assert isinstance(crit, Criteria) and crit.name == name
        assert set(crit.prompts) == {"en", "zh"}


def test_default_criteria_matches_the_method():
    crit = load_criteria()  # no name: the default
    assert crit is DEFAULT  # cached
    assert crit.format == "stepwise"
    assert crit.label_values == (3, 2, 1, 0, -1)
    assert crit.step_names == ("query_analysis", "subject_match", "need", "constraints")
    assert crit.answer_tag == "answer"
    assert crit.marker("en") == "Verdict:" and crit.marker("zh") == "结论:"
    assert crit.step("need").verdicts == ("met", "unmet", "n/a")
    assert crit.step_position("constraints") == 3


def test_free_form_has_no_steps():
    crit = load_criteria("free_form")
    assert crit.format == "free_form" and crit.steps == () and crit.reasoning_tag == "think"
    assert crit.gold_steps(3) == {}
    assert crit.label_from_verdicts({}) is None  # no rules


def test_a_criteria_object_and_a_path_load_too(tmp_path):
    assert load_criteria(DEFAULT) is DEFAULT
    path = write(tmp_path, RAW_DEFAULT)
    crit = load_criteria(path)
    assert crit.source == str(path.resolve())
    assert crit.steps == DEFAULT.steps and crit.labels == DEFAULT.labels
    assert load_criteria(str(path)) is crit  # cached while the file is unchanged


def test_unknown_builtin_name_lists_the_builtins():
    with pytest.raises(CriteriaError, match=r"'no_such_criteria'.*not a built-in name.*default.*free_form"):
        load_criteria("no_such_criteria")


def test_bad_yaml_names_the_file(tmp_path):
    path = write(tmp_path, "name: x\nlabels: [1, 2\n")
    with pytest.raises(CriteriaError, match=r"crit\.yaml: not valid YAML at line 3, column 1: ") as err:
        load_criteria(path)
    assert "\n" not in str(err.value)


def test_not_utf8_names_the_file(tmp_path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(CriteriaError, match=r"latin1\.yaml: not UTF-8"):
        load_criteria(path)


def test_a_directory_is_not_a_criteria_file(tmp_path):
    with pytest.raises(CriteriaError, match="is a directory"):
        load_criteria(tmp_path)


@pytest.mark.parametrize("text,kind", [("", "NoneType"), ("- a\n- b\n", "list"), ("just text\n", "str")])
def test_top_level_must_be_a_mapping(tmp_path, text, kind):
    with pytest.raises(CriteriaError, match=rf"crit\.yaml: top level must be a mapping, got {kind}"):
        load_criteria(write(tmp_path, text))


# -- validation errors: each names the file and the field ----------------------------------


def _del(*keys):
    def f(raw):
        node = raw
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]
    return f


def _set(value, *keys):
    def f(raw):
        node = raw
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return f


def _step_set(name, key, value):
    def f(raw):
        step(raw, name)[key] = value
    return f


def _step_del(name, key):
    def f(raw):
        del step(raw, name)[key]
    return f


def _dup_step(raw):
    raw["steps"].append(copy.deepcopy(step(raw, "need")))


def _dup_tag(raw):
    step(raw, "need")["tag"] = "subject_match"


def _rules_swap(raw):  # "exact -> 1" before the rules for 2 and 3: label 3's gold gives 1
    raw["label_rules"].insert(0, {"when": {"subject_match": "exact"}, "label": 1})


def _rule_for_3_removed(raw):
    raw["label_rules"] = [r for r in raw["label_rules"] if r["label"] != 3]


BROKEN = {
    # missing fields
    "no name": (_del("name"), "missing required field 'name'"),
    "no labels": (_del("labels"), "missing required field 'labels'"),
    "no answer": (_del("answer"), "missing required field 'answer'"),
    "no answer tag": (_del("answer", "tag"), "answer: missing required field 'tag'"),
    "no prompt": (_del("prompt"), "missing required field 'prompt'"),
    "no user prompt": (_del("prompt", "en", "user"), "prompt.en: missing required field 'user'"),
    "no label value": (_del("labels", 0, "value"), "labels[0]: missing required field 'value'"),
    "no label name": (_del("labels", 1, "name"), "labels[1]: missing required field 'name'"),
    "no step question": (_step_del("need", "question"), "step 'need': missing required field 'question'"),
    "no step verdicts": (_step_del("need", "verdicts"), "step 'need': missing required field 'verdicts'"),
    "no step name": (_step_del("need", "name"), "steps[2]: missing required field 'name'"),
    # wrong types
    "name not text": (_set(5, "name"), "field 'name' must be str, got int"),
    "labels not a list": (_set({"3": "x"}, "labels"), "field 'labels' must be list, got dict"),
    "label value text": (_set("3", "labels", 0, "value"), "labels[0]: field 'value' must be int, got str"),
    "label value bool": (_set(True, "labels", 0, "value"), "labels[0]: field 'value' must be int, got bool"),
    "label not a mapping": (_set(3, "labels", 0), "labels[0]: must be a mapping"),
    "steps not a list": (_set({"a": 1}, "steps"), "field 'steps' must be a list, got dict"),
    "step not a mapping": (_set("need", "steps", 2), "steps[2]: must be a mapping"),
    "verdicts not a list": (_step_set("need", "verdicts", "met"), "step 'need': field 'verdicts' must be list"),
    "verdict not text": (_step_set("need", "verdicts", ["met", 3]), "step 'need': verdicts: expected a verdict"),
    "yaml yes/no verdicts": (_step_set("need", "verdicts", [True, False]), "step 'need': verdicts"),
    "version not int": (_set("one", "version"), "field 'version' must be int, got str"),
    "answer not a mapping": (_set("answer", "answer"), "field 'answer' must be mapping, got str"),
    "prompt not a mapping": (_set("hello", "prompt"), "field 'prompt' must be mapping, got str"),
    "user prompt not text": (_set(["a"], "prompt", "en", "user"), "prompt.en: field 'user' must be str"),
    "system prompt not text": (_set(3, "prompt", "en", "system"), "prompt.en: field 'system' must be str"),
    "gold not a mapping": (_step_set("need", "gold_from_label", ["met"]), "field 'gold_from_label' must be a mapping"),
    "empty verdict marker": (_set("", "verdict_marker"), "field 'verdict_marker' must be non-empty text"),
    "label_rules not a list": (_set({"when": {}}, "label_rules"), "field 'label_rules' must be a list"),
    "label rule not a mapping": (_set("x", "label_rules", 0), "label_rules[0]: must be a mapping"),
    "rule label text": (_set("3", "label_rules", 0, "label"), "label_rules[0]: field 'label' must be int"),
    # values
    "unknown format": (_set("tree", "format"), "field 'format' must be one of"),
    "duplicate step name": (_dup_step, "step 'need': duplicate step name"),
    "duplicate step tag": (_dup_tag, "step 'need': tag 'subject_match' is used twice"),
    "step tag = answer tag": (_step_set("need", "tag", "answer"), "tag 'answer' is used twice"),
    "bad tag characters": (_step_set("need", "tag", "need step"), "step 'need': tag 'need step' must be"),
    "duplicate verdicts": (_step_set("need", "verdicts", ["met", "met"]), "field 'verdicts' has duplicates"),
    "empty verdicts": (_step_set("need", "verdicts", []), "step 'need': field 'verdicts' is empty"),
    "duplicate label values": (_set(3, "labels", 1, "value"), "field 'labels' has duplicate values"),
    "one label": (lambda raw: raw.update(labels=raw["labels"][:1]), "needs at least two labels"),
    "gold verdict not a verdict": (_step_set("need", "gold_from_label", {"3": ["maybe"]}),
                                   "gold_from_label[3] has verdict(s) ['maybe'] not in"),
    "gold key not a number": (_step_set("need", "gold_from_label", {"high": ["met"]}),
                              "gold_from_label key 'high' is not a label value"),
    "gold key not a label": (_step_set("need", "gold_from_label", {"7": ["met"]}),
                             "gold_from_label key 7 is not one of the labels"),
    "gold list empty": (_step_set("need", "gold_from_label", {"3": []}), "gold_from_label[3] is empty"),
    "stepwise without steps": (_set([], "steps"), "'stepwise' criteria needs at least one step"),
    "free_form with steps": (_set("free_form", "format"), "'free_form' criteria must not define steps"),
    # label rules
    "rule names unknown step": (_set({"topic": "exact"}, "label_rules", 0, "when"),
                                "label_rules[0]: unknown step 'topic'"),
    "rule verdict not allowed": (_set({"subject_match": "same"}, "label_rules", 0, "when"),
                                 "label_rules[0]: verdict(s) ['same'] not allowed for step 'subject_match'"),
    "rule label not a label": (_set(9, "label_rules", 0, "label"), "label_rules[0]: label 9 is not one of"),
    "rule without when": (_del("label_rules", 0, "when"), "label_rules[0]: missing required field 'when'"),
    "no rule for a label": (_rule_for_3_removed, "label_rules disagree with gold_from_label: for label 3"),
    "rules in the wrong order": (_rules_swap, ("for label 3 the gold verdicts", "the first matching rule gives 1")),
    # prompts
    "missing {content}": (_set("Query: {query} Title: {title}", "prompt", "en", "user"),
                          "prompt.en: field 'user' must contain the placeholder {content}"),
    "missing {query} in zh": (_set("{title} {content}", "prompt", "zh", "user"),
                              "prompt.zh: field 'user' must contain the placeholder {query}"),
    "unbalanced brace": (_set("{query} {title} {content", "prompt", "en", "user"),
                         "prompt.en: field 'user' has unbalanced braces"),
    "positional placeholder": (_set("{query} {title} {content} {}", "prompt", "en", "user"),
                               "prompt.en: field 'user' has the placeholder '{}'"),
    "format spec": (_set("{query:>9} {title} {content}", "prompt", "en", "user"),
                    "has the placeholder '{query:>9}'"),
    "json in prompt": (_set('{query} {title} {content} {"label": 3}', "prompt", "en", "user"),
                       "placeholders are plain names"),
    "no english prompt": (_del("prompt", "en"), "field 'prompt' needs at least the 'en' prompt"),
    "unknown language": (_set({"user": "{query}{title}{content}"}, "prompt", "fr"),
                         "prompt.fr: language must be one of"),
    # misspelt fields are errors, not ignored
    "misspelt top-level field": (_set([], "lable_rules"),
                                 ("unknown field 'lable_rules'", "did you mean 'label_rules'?")),
    "misspelt step field": (_step_set("need", "verdict", ["met"]),
                            ("step 'need': unknown field 'verdict'", "did you mean 'verdicts'?")),
    "misspelt label field": (lambda raw: raw["labels"][0].update(rules="x"),
                             ("labels[0]: unknown field 'rules'", "did you mean 'rule'?")),
    "misspelt answer field": (_set("Answer", "answer", "titel"), "answer: unknown field 'titel'"),
    "misspelt rule field": (lambda raw: raw["label_rules"][0].update(lable=-1),
                            "label_rules[0]: unknown field 'lable'"),
    "misspelt prompt field": (_set("x", "prompt", "en", "sytem"), "prompt.en: unknown field 'sytem'"),
    # verdicts the reward could never read back
    "verdicts differing in case": (_step_set("query_analysis", "verdicts", ["how-to", "How-To"]),
                                   "step 'query_analysis': field 'verdicts' has verdicts that differ only in case"),
    "verdict with a trailing space": (_step_set("query_analysis", "verdicts", ["how-to", "review "]),
                                      "verdict 'review ' is read back as no verdict"),
    "verdict with a newline": (_step_set("query_analysis", "verdicts", ["how-to", "re\nview"]),
                               "verdict 're\\nview' is read back as no verdict"),
    "verdict with a tag": (_step_set("query_analysis", "verdicts", ["how-to", "see <answer>"]),
                           "verdict 'see <answer>' is read back as no verdict"),
    "verdict holding the marker": (_step_set("query_analysis", "verdicts", ["how-to", "Verdict: how-to"]),
                                   "verdict 'Verdict: how-to' is read back as 'how-to'"),
    "verdict in brackets": (_step_set("query_analysis", "verdicts", ["how-to", "(review)"]),
                            "verdict '(review)' is read back as no verdict"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_config_names_the_file_and_the_field(tmp_path, case):
    mutate, message = BROKEN[case]
    raw = copy.deepcopy(RAW_DEFAULT)
    mutate(raw)
    path = write(tmp_path, raw, name="broken.yaml")
    with pytest.raises(CriteriaError) as err:
        load_criteria(path)
    text = str(err.value)
    assert text.startswith(str(path.resolve())), text  # the file comes first
    for part in (message,) if isinstance(message, str) else message:
        assert part in text, text
    assert "\n" not in text  # one line


def test_verdicts_with_inner_spaces_and_symbols_are_read_back(tmp_path):
    raw = copy.deepcopy(RAW_DEFAULT)
    step(raw, "query_analysis")["verdicts"] = ["how to", "n/a", "A+B", "无结论", "verdict"]
    crit = load_criteria(write(tmp_path, raw))
    assert crit.step("query_analysis").verdicts == ("how to", "n/a", "A+B", "无结论", "verdict")


def test_free_form_reasoning_tag_must_differ_from_the_answer_tag(tmp_path):
    raw = copy.deepcopy(RAW_FREE)
    raw["reasoning_tag"] = "answer"
    with pytest.raises(CriteriaError, match="reasoning_tag 'answer' is also a step or answer tag"):
        load_criteria(write(tmp_path, raw))
    raw["reasoning_tag"] = "<think>"
    with pytest.raises(CriteriaError, match="reasoning_tag: tag '<think>' must be"):
        load_criteria(write(tmp_path, raw))


def test_parse_criteria_names_its_source():
    with pytest.raises(CriteriaError, match=r"^team\.yaml \(criteria 'default'\): missing required field 'answer'"):
        raw = copy.deepcopy(RAW_DEFAULT)
        del raw["answer"]
        parse_criteria(raw, source="team.yaml")


def test_a_custom_criteria_changes_steps_without_code(tmp_path):
    raw = {
        "name": "two_step", "labels": [{"value": 1, "name": "yes"}, {"value": 0, "name": "no"}],
        "verdict_marker": "Decision:",
        "steps": [{"name": "topic", "tag": "topic-check", "question": "Same topic?",
                   "verdicts": ["same", "other"], "gold_from_label": {1: "same", 0: "other"}}],
        "answer": {"tag": "level"},
        "label_rules": [{"when": {"topic": "same"}, "label": 1}, {"when": {"topic": "other"}, "label": 0}],
        "prompt": {"en": {"user": "Is {title} / {content} about {query}? {step_instructions}"}},
    }
    crit = load_criteria(write(tmp_path, raw))
    assert crit.step_names == ("topic",) and crit.answer_tag == "level" and crit.marker() == "Decision:"
    assert crit.gold_steps(1) == {"topic": ["same"]}
    assert crit.label_from_verdicts({"topic": "other"}) == 0
    assert crit.prompts["en"]["system"] == ""


# -- gold from the label and from annotations ----------------------------------------------

GOLD_BY_LABEL = {  # method.md, section 2
    3: {"query_analysis": None, "subject_match": ["exact"], "need": ["met"], "constraints": ["satisfied", "none"]},
    2: {"query_analysis": None, "subject_match": ["exact"], "need": ["met"], "constraints": ["violated"]},
    1: {"query_analysis": None, "subject_match": ["exact"], "need": ["unmet"], "constraints": None},
    0: {"query_analysis": None, "subject_match": ["related"], "need": None, "constraints": None},
    -1: {"query_analysis": None, "subject_match": ["unrelated"], "need": None, "constraints": None},
}


@pytest.mark.parametrize("label", sorted(GOLD_BY_LABEL))
def test_gold_steps_from_the_label(label):
    assert DEFAULT.gold_steps(label) == GOLD_BY_LABEL[label]


def test_annotations_override_the_label_gold():
    gold = DEFAULT.gold_steps(3, {"query_analysis": "review", "constraints": ["none"]})
    assert gold == {**GOLD_BY_LABEL[3], "query_analysis": ["review"], "constraints": ["none"]}
    # an annotation may make a step checkable that the label leaves open
    assert DEFAULT.gold_steps(0, {"need": "unmet"})["need"] == ["unmet"]
    # empty annotations change nothing
    assert DEFAULT.gold_steps(2, {"need": None, "query_analysis": ""}) == GOLD_BY_LABEL[2]
    assert DEFAULT.gold_steps(2, None) == GOLD_BY_LABEL[2]


@pytest.mark.parametrize("annotations,message", [
    ({"topic": "exact"}, r"annotations name unknown steps \['topic'\]"),
    ({"need": "maybe"}, r"annotation for step 'need' has verdict\(s\) \['maybe'\] not in"),
    ({"need": ["met", "perhaps"]}, r"verdict\(s\) \['perhaps'\]"),
    ({"need": []}, "must be a verdict or a non-empty list"),
    ({"need": 3}, "must be a verdict or a non-empty list"),
    ({"need": {"met": 1}}, "must be a verdict or a non-empty list"),
])
def test_bad_annotations_raise(annotations, message):
    with pytest.raises(CriteriaError, match=message):
        DEFAULT.gold_steps(3, annotations)


@pytest.mark.parametrize("label", [5, None, "3"])
def test_gold_steps_of_a_value_that_is_not_a_label_raises(label):
    with pytest.raises(CriteriaError, match="is not one of the labels"):
        DEFAULT.gold_steps(label)


# -- label rules ------------------------------------------------------------------------------


@pytest.mark.parametrize("verdicts,label", [
    ({"subject_match": "unrelated"}, -1),
    ({"subject_match": "related", "need": "n/a"}, 0),
    ({"subject_match": "exact", "need": "unmet", "constraints": "n/a"}, 1),
    ({"subject_match": "exact", "need": "met", "constraints": "violated"}, 2),
    ({"subject_match": "exact", "need": "met", "constraints": "satisfied"}, 3),
    ({"subject_match": "exact", "need": "met", "constraints": "none", "query_analysis": "review"}, 3),
    ({"subject_match": "exact", "need": "met"}, None),  # constraints missing
    ({"subject_match": "exact", "need": "n/a"}, None),
    ({}, None),
])
def test_label_from_verdicts(verdicts, label):
    assert DEFAULT.label_from_verdicts(verdicts) == label


def test_every_combination_of_gold_verdicts_gives_its_label():
    for label in DEFAULT.label_values:
        gold = DEFAULT.gold_steps(label)
        checkable = {name: accepted for name, accepted in gold.items() if accepted}
        for combo in itertools.product(*checkable.values()):
            verdicts = dict(zip(checkable, combo))
            for step_ in DEFAULT.steps:  # unverifiable steps: any verdict
                if step_.name not in verdicts:
                    for v in step_.verdicts:
                        assert DEFAULT.label_from_verdicts({**verdicts, step_.name: v}) == label
            assert DEFAULT.label_from_verdicts(verdicts) == label
