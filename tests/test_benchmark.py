"""The offline relevance benchmark: determinism, balance, gold consistency,
long-tail separation, warm-up traces and the command line (small sizes)."""

from __future__ import annotations

import argparse
import copy
import json
import re
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_prep import benchmark_lexicon as lex
from data_prep.benchmark import (
    LABELS, SPLITS, BenchmarkConfig, add_benchmark_args, check_no_leakage, generate_benchmark,
    rows_for_criteria, run_benchmark_cli, write_card,
)
from data_prep.criteria import load_criteria
from data_prep.traces import build_trace, label_only_response
from reward import compute_score
from reward.parser import get_parser

SMALL = dict(train_size=500, val_size=100, test_random_size=100, test_longtail_size=300, pool_size=60,
             sft_size=120, progress=False)
CRIT = load_criteria("default")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def en():
    return generate_benchmark(BenchmarkConfig(seed=7, lang="en", **SMALL))


@pytest.fixture(scope="module")
def zh():
    return generate_benchmark(BenchmarkConfig(seed=7, lang="zh", **SMALL))


def labelled(splits):
    return [r for name in SPLITS for r in splits[name]]


# -- lexicon -----------------------------------------------------------------------


def test_lexicon_is_valid_and_broad():
    lex.validate_lexicon()
    assert len(lex.DOMAINS) >= 10
    per_domain = Counter(e.domain for e in lex.ENTITIES.values())
    assert min(per_domain.values()) >= 15, per_domain
    for dom in lex.DOMAINS.values():
        for cat_name, ents, *_ in dom["categories"].values():
            assert len(ents) >= 4, cat_name  # siblings exist in every category
    assert any(lex.pick(c["keyword"], "zh") for c in lex.COLLISIONS)
    assert sum(1 for c in lex.COLLISIONS if lex.pick(c["keyword"], "en")) >= 8


# -- determinism and sizes ----------------------------------------------------------


def test_same_seed_same_rows_different_seed_different_rows(en):
    again = generate_benchmark(BenchmarkConfig(seed=7, lang="en", **SMALL))
    assert json.dumps(again, sort_keys=True) == json.dumps(en, sort_keys=True)
    other = generate_benchmark(BenchmarkConfig(seed=8, lang="en", **SMALL))
    assert [r["query"] for r in other["train"]] != [r["query"] for r in en["train"]]


def test_sizes_ids_and_no_duplicate_pairs(en):
    for name, size in BenchmarkConfig(**SMALL).sizes().items():
        assert len(en[name]) == size
    assert len(en["pool"]) == SMALL["pool_size"]
    rows = [r for rows in en.values() for r in rows]
    assert len({r["id"] for r in rows}) == len(rows)
    assert len({(r["query"], r["title"], r["content"]) for r in rows}) == len(rows)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_every_label_is_well_represented(lang, en, zh):
    splits = en if lang == "en" else zh
    for name in SPLITS:
        counts = Counter(r["label"] for r in splits[name])
        for label in LABELS:
            assert counts[label] / len(splits[name]) >= 0.12, (name, counts)


# -- gold consistency ---------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_step_gold_agrees_with_label_under_the_criteria(lang, en, zh):
    for row in labelled(en if lang == "en" else zh):
        gold = row["step_gold"]
        assert CRIT.label_from_verdicts(gold) == row["label"], row["id"]
        accepted = CRIT.gold_steps(row["label"], gold)  # raises on unknown steps or verdicts
        for step, verdict in gold.items():
            assert accepted[step] == [verdict]
        # Exactly the steps the label defines are annotated.
        expected = {"query_analysis", "subject_match"}
        if gold["subject_match"] == "exact":
            expected.add("need")
            if gold["need"] == "met":
                expected.add("constraints")
        assert set(gold) == expected
        assert gold["query_analysis"] == row["intent"]


def test_constraint_verdict_follows_the_stated_facts(en):
    for row in labelled(en):
        gold = row["step_gold"]
        if gold.get("constraints") == "none":
            assert row["constraints"] == []
        elif gold.get("constraints") == "satisfied":
            assert row["constraints"] and all(c["satisfied"] for c in row["constraints"])
        elif gold.get("constraints") == "violated":
            assert any(c["satisfied"] is False for c in row["constraints"])
        assert 0 <= len(row["constraints"]) <= 3
        assert len({c["type"] for c in row["constraints"]}) == len(row["constraints"])


def test_hard_cases_are_planted_by_construction(en):
    rows = labelled(en)
    cases = Counter(r["case"] for r in rows)
    for case in ("exact_match", "constraint_violated", "other_intent", "passing_mention", "sibling",
                 "keyword_collision", "unrelated"):
        assert cases[case] > 0, case
    for r in rows:
        note_text = (r["title"] + "\n" + r["content"]).lower()
        if r["case"] == "keyword_collision":
            kw = r["collision_keyword"]
            assert kw in r["query"].lower() and kw in note_text
            assert r["note_domain"] != r["domain"]
        elif r["case"] == "passing_mention":
            # The exact subject is named, yet the note is about something else.
            assert r["subject"].lower() in note_text
            assert r["note_entity"] != r["entity"] and r["note_domain"] != r["domain"]
        elif r["case"] == "sibling":
            assert r["note_category"] == r["category"] and r["note_entity"] != r["entity"]
            assert r["note_entity"] != r["compare_entity"]
        elif r["case"] == "other_intent":
            assert r["note_entity"] == r["entity"] and r["note_intent"] != r["intent"]
        elif r["case"] in ("exact_match", "constraint_violated"):
            assert r["note_entity"] == r["entity"] and r["note_intent"] == r["intent"]
            for c in r["constraints"]:
                assert c["note_value"]  # the note states every asked-for fact
    # Single-constraint violations dominate label 2.
    violated = [r for r in rows if r["case"] == "constraint_violated"]
    single = sum(1 for r in violated if sum(c["satisfied"] is False for c in r["constraints"]) == 1)
    assert single / len(violated) > 0.6


# -- long tail ---------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_longtail_is_disjoint_from_training(lang, en, zh):
    splits = en if lang == "en" else zh
    check_no_leakage(splits)  # generate_benchmark ran it too; it must pass here as well
    assert all(lex.is_heldout(r["entity"]) for r in splits["test_longtail"])
    for name in ("train", "val", "test_random", "pool"):
        for r in splits[name]:
            assert not lex.is_heldout(r["entity"])
            assert not any((r["intent"], c["type"]) in lex.HELDOUT_COMPOSITIONS for c in r["constraints"])
    longtail = splits["test_longtail"]
    assert {lex.ENTITIES[r["entity"]].domain for r in longtail} >= set(lex.HELDOUT_DOMAINS)
    novel = sum(any((r["intent"], c["type"]) in lex.HELDOUT_COMPOSITIONS for c in r["constraints"])
                for r in longtail)
    assert novel / len(longtail) > 0.2


def _longtail_row(splits):
    return next(r for r in splits["test_longtail"] if r["case"] == "exact_match")


def test_leakage_check_catches_an_injected_row(en):
    leaked = copy.deepcopy(en)
    row = _longtail_row(leaked)
    leaked["train"].append(dict(row, id="injected"))
    with pytest.raises(ValueError, match=re.escape(row["entity"])):
        check_no_leakage(leaked)


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("field", ["query", "content", "title"])
def test_leakage_check_catches_a_surface_name(lang, field, en, zh):
    splits = copy.deepcopy(en if lang == "en" else zh)
    row = _longtail_row(splits)
    name = row["subject"]
    target = splits["train"][3]
    target[field] = target[field] + " also " + (name.upper() if lang == "en" else name)
    with pytest.raises(ValueError, match=re.escape(row["entity"])):
        check_no_leakage(splits)


def test_leakage_check_catches_other_language_names_and_hashtags(en):
    splits = copy.deepcopy(en)
    row = _longtail_row(splits)
    zh_name = lex.ENTITIES[row["entity"]].name("zh")
    splits["val"][0]["content"] += zh_name
    with pytest.raises(ValueError, match=re.escape(row["entity"])):
        check_no_leakage(splits)
    splits = copy.deepcopy(en)
    glued = re.sub(r"[^0-9a-z]", "", row["subject"].lower())
    splits["test_random"][0]["tags"] = splits["test_random"][0]["tags"] + [glued]
    with pytest.raises(ValueError, match=re.escape(row["entity"])):
        check_no_leakage(splits)


def test_leakage_check_matches_whole_words_only(en):
    splits = copy.deepcopy(en)
    multi = next(r for r in splits["test_longtail"] if len(r["subject"].split()) > 1)
    first_word = multi["subject"].split()[0]
    splits["train"][0]["content"] += f" {first_word} alone is fine"
    check_no_leakage(splits)


def test_leakage_check_catches_a_heldout_composition(en):
    splits = copy.deepcopy(en)
    intent, ctype = lex.HELDOUT_COMPOSITIONS[0]
    row = splits["train"][0]
    row["intent"] = intent
    row["constraints"] = [{"type": ctype, "value": "x", "note_value": "x", "satisfied": True}]
    with pytest.raises(ValueError, match="composition"):
        check_no_leakage(splits)


# -- pool ----------------------------------------------------------------------------


def test_pool_rows_are_unlabelled(en):
    for r in en["pool"]:
        assert r["label"] is None and r["step_gold"] is None and r["reasoning"] is None
        assert r["case"] is None and r["note_entity"] is None
        assert r["query"] and r["content"]
        assert all(set(c) == {"type", "value"} for c in r["constraints"])


# -- traces --------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_warmup_traces_parse_back_to_the_gold(lang, en, zh):
    splits = en if lang == "en" else zh
    traced = [r for r in splits["train"] if r["reasoning"]]
    assert len(traced) == SMALL["sft_size"]
    assert all(r["reasoning"] is None for r in splits["train"][SMALL["sft_size"]:])
    parser = get_parser("default")
    marker = CRIT.marker(lang)
    for r in traced:
        text = r["reasoning"]
        tags = re.findall(r"<(/?)([a-z_]+)>", text)
        expected = []
        for step in CRIT.steps:
            expected += [("", step.tag), ("/", step.tag)]
        expected += [("", "answer"), ("/", "answer")]
        assert tags == expected, r["id"]
        assert text.count(marker) == len(CRIT.steps)
        parsed = parser.parse(text)
        assert parsed.ok and parsed.pred == r["label"], (r["id"], parsed)
        verdicts = dict(zip(CRIT.step_names, (s[2] for s in parsed.steps)))
        for step in CRIT.step_names:
            assert verdicts[step] == r["step_gold"].get(step, "n/a")
        # The reward the RL run uses gives the trace full credit, every step right.
        res = compute_score("grm_relevance", text, str(r["label"]),
                            {"step_gold": json.dumps(r["step_gold"]), "criteria": "default"})
        assert res["score"] == 1.0 and res["step_acc"] == 1.0, (r["id"], res)
        assert r["subject"] in text
        if lang == "zh":
            assert CJK.search(text)


def test_trace_explains_constraints_and_subject_relation(en):
    rows = labelled(en)
    violated = next(r for r in rows if r["case"] == "constraint_violated")
    text = build_trace(violated)
    bad = next(c for c in violated["constraints"] if not c["satisfied"])
    assert bad["note_value"] in text and "violated" in text
    collision = next(r for r in rows if r["case"] == "keyword_collision")
    assert f'"{collision["collision_keyword"]}"' in build_trace(collision)
    sibling = next(r for r in rows if r["case"] == "sibling")
    assert sibling["note_subject"] in build_trace(sibling)


def test_label_only_and_free_form_responses(en):
    assert label_only_response(3) == "<answer>3</answer>"
    assert label_only_response(-1, "free_form") == "<answer>-1</answer>"
    row = en["train"][0]
    free = build_trace(row, "free_form")
    assert free.startswith("<think>") and free.endswith(f"<answer>{row['label']}</answer>")
    parsed = get_parser("free_form").parse(free)
    assert parsed.ok and parsed.pred == row["label"]
    with pytest.raises(ValueError):
        build_trace(en["pool"][0])


# -- Chinese ---------------------------------------------------------------------------


def test_chinese_rows_are_chinese(zh):
    rows = labelled(zh)
    assert all(r["lang"] == "zh" for r in rows)
    share = sum(bool(CJK.search(r["query"])) and bool(CJK.search(r["content"])) for r in rows) / len(rows)
    assert share > 0.95
    # Chinese collisions share a Chinese keyword (e.g. 苹果, 小米).
    collisions = [r for r in rows if r["case"] == "keyword_collision"]
    assert collisions and all(CJK.search(r["collision_keyword"]) for r in collisions)


# -- properties over seeds ----------------------------------------------------------------


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), lang=st.sampled_from(["en", "zh"]))
def test_any_seed_gives_a_consistent_separated_benchmark(seed, lang):
    splits = generate_benchmark(BenchmarkConfig(seed=seed, lang=lang, train_size=150, val_size=25,
                                                test_random_size=25, test_longtail_size=60, sft_size=20,
                                                progress=False))
    for r in labelled(splits):
        assert CRIT.label_from_verdicts(r["step_gold"]) == r["label"]
    check_no_leakage(splits)


# -- output ----------------------------------------------------------------------------


def test_card_and_criteria_projection(en, tmp_path):
    cfg = BenchmarkConfig(seed=7, lang="en", **SMALL)
    card = write_card(tmp_path, en, cfg).read_text(encoding="utf-8")
    for name in SPLITS:
        assert f"| {name} |" in card
    assert "seed: 7" in card and "plants" in card
    free = rows_for_criteria(en, load_criteria("free_form"))
    assert all(r["step_gold"] == {} for r in free["train"])
    assert en["train"][0]["step_gold"]  # the original rows are untouched


def test_cli_writes_parquet_and_card(tmp_path):
    parser = add_benchmark_args(argparse.ArgumentParser())
    args = parser.parse_args(["--out", str(tmp_path), "--seed", "1", "--lang", "zh", "--train-size", "100",
                              "--val-size", "20", "--test-random-size", "20", "--test-longtail-size", "40",
                              "--pool-size", "10", "--sft-size", "15", "--no-progress"])
    assert run_benchmark_cli(args) == 0
    for name in SPLITS:
        assert (tmp_path / f"{name}.parquet").exists()
    assert (tmp_path / "sft_train.parquet").exists()
    assert (tmp_path / "README.md").exists()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["rows_rejected"] == 0 and summary["sft_splits"]["train"] == 15


# -- sizes and other user errors: one line, exit code 2, before anything is generated -----------

_SMALL = ["--train-size", "20", "--val-size", "5", "--test-random-size", "5", "--test-longtail-size", "10",
          "--sft-size", "0", "--no-progress"]


@pytest.mark.parametrize("option,value,message", [
    ("--train-size", "0", "argument --train-size: must be >= 1, got 0"),
    ("--val-size", "-5", "argument --val-size: must be >= 1, got -5"),
    ("--test-random-size", "0", "argument --test-random-size: must be >= 1"),
    ("--test-longtail-size", "x", "argument --test-longtail-size: expected an integer, got 'x'"),
    ("--pool-size", "-1", "argument --pool-size: must be >= 0, got -1"),
    ("--sft-size", "-3", "argument --sft-size: must be >= 0, got -3"),
])
def test_sizes_must_be_counts(tmp_path, capsys, option, value, message):
    from data_prep.__main__ import main

    with pytest.raises(SystemExit) as exit_:
        main(["benchmark", "--out", str(tmp_path / "b"), *_SMALL, option, value])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("args,message", [
    (["--pool-size", str(10**12)], "rows need about"),  # refused at once, not a MemoryError later
    (["--sft-size", "21"], "--sft-size 21 is larger than --train-size 20"),
    (["--criteria", "nonexistent"], "'nonexistent': no such file and not a built-in name"),
])
def test_user_errors_are_one_line(tmp_path, capsys, args, message):
    import time

    from data_prep.__main__ import main

    start = time.perf_counter()
    rc = main(["benchmark", "--out", str(tmp_path / "b"), *_SMALL, *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert time.perf_counter() - start < 5 and not (tmp_path / "b").exists()


def test_output_folder_that_is_a_file(tmp_path, capsys):
    from data_prep.__main__ import main

    (tmp_path / "b").write_text("x")
    rc = main(["benchmark", "--out", str(tmp_path / "b"), *_SMALL])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith(f"error: {tmp_path / 'b'}"), err


def test_memory_estimate_against_what_is_available():
    from data_prep.benchmark import BenchmarkConfig, size_problem

    cfg = BenchmarkConfig(train_size=1000, val_size=10, test_random_size=10, test_longtail_size=10, pool_size=970,
                          sft_size=0)
    assert size_problem(cfg, available=10**9) is None
    assert "2000 rows need about" in size_problem(cfg, available=10**6)


def test_default_sft_size_follows_a_small_train_split(tmp_path):
    from data_prep.benchmark import config_from_args

    args = add_benchmark_args(argparse.ArgumentParser()).parse_args(["--out", str(tmp_path), "--train-size", "30"])
    assert config_from_args(args).sft_size == 30
