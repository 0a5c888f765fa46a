"""A criteria's identity (ref, version, content digest) travels with the data it wrote, and the
reward follows, or refuses, a criteria file edited since."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from data_prep.__main__ import main as data_prep_main
from data_prep.criteria import BUILTIN_DIR, load_criteria, parse_criteria
from reward import CriteriaChangedError, compute_score, get_parser
from reward import parser as parser_module

RAW_DEFAULT = yaml.safe_load((BUILTIN_DIR / "default.yaml").read_text(encoding="utf-8"))
RAW_FREE = yaml.safe_load((BUILTIN_DIR / "free_form.yaml").read_text(encoding="utf-8"))


def write_yaml(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def renamed_verdict(raw: dict, step: str, old: str, new: str) -> dict:
    """``raw`` with one step's verdict renamed everywhere it is named."""
    text = json.dumps(raw, ensure_ascii=False)
    out = json.loads(text)
    for st in out["steps"]:
        if st["name"] != step:
            continue
        st["verdicts"] = [new if v == old else v for v in st["verdicts"]]
        for key, vals in (st.get("gold_from_label") or {}).items():
            vals = [vals] if isinstance(vals, str) else vals
            st["gold_from_label"][key] = [new if v == old else v for v in vals]
    for rule in out.get("label_rules") or []:
        vals = rule["when"].get(step)
        if vals is not None:
            vals = [vals] if isinstance(vals, str) else vals
            rule["when"][step] = [new if v == old else v for v in vals]
    return out


def test_builtin_identity_is_its_name_and_a_stable_digest():
    crit = load_criteria("default")
    assert crit.ref == "default" and crit.version == 1
    assert len(crit.digest) == 16 and crit.digest == parse_criteria(RAW_DEFAULT).digest
    assert crit.identity == {"criteria": "default", "criteria_version": 1, "criteria_digest": crit.digest}
    digests = {load_criteria(name).digest for name in ("default", "compact", "free_form", "paper")}
    assert len(digests) == 4


def test_digest_ignores_layout_and_follows_content():
    reordered = dict(reversed(list(RAW_DEFAULT.items())))
    assert parse_criteria(reordered).digest == parse_criteria(RAW_DEFAULT).digest
    changed = {**RAW_DEFAULT, "version": 2}
    assert parse_criteria(changed).digest != parse_criteria(RAW_DEFAULT).digest


def test_a_file_is_named_by_its_resolved_path_whatever_the_working_directory(tmp_path, monkeypatch):
    path = write_yaml(tmp_path / "mine.yaml", RAW_DEFAULT)
    monkeypatch.chdir(tmp_path)
    crit = load_criteria("mine.yaml")
    assert crit.ref == str(path.resolve())
    assert crit.digest == load_criteria("default").digest  # same content, same digest


def test_an_edited_file_and_an_edited_base_are_read_again(tmp_path):
    base = write_yaml(tmp_path / "base.yaml", RAW_DEFAULT)
    variant = tmp_path / "variant.yaml"
    variant.write_text(f"extends: {base}\nname: variant\n", encoding="utf-8")
    first = load_criteria(str(variant))
    assert load_criteria(str(variant)) is first  # unchanged files: the cached object
    write_yaml(base, renamed_verdict(RAW_DEFAULT, "need", "met", "satisfied_need"))
    second = load_criteria(str(variant))
    assert second.digest != first.digest and "satisfied_need" in second.step("need").verdicts


def test_free_form_reasoning_tag_default_is_set_by_the_loader():
    raw = {k: v for k, v in RAW_FREE.items() if k != "reasoning_tag"}
    raw["prompt"] = {"en": {"user": "{query} {title} {content} <think></think>"}}
    crit = parse_criteria(raw)
    assert crit.reasoning_tag == "think" and get_parser(crit).reasoning_tag == "think"
    assert load_criteria("default").reasoning_tag is None  # a stepwise criteria has no reasoning block


def test_the_parser_follows_an_edited_file(tmp_path):
    path = write_yaml(tmp_path / "crit.yaml", RAW_DEFAULT)
    assert "satisfied_need" not in get_parser(str(path)).criteria.step("need").verdicts
    write_yaml(path, renamed_verdict(RAW_DEFAULT, "need", "met", "satisfied_need"))
    assert "satisfied_need" in get_parser(str(path)).criteria.step("need").verdicts


def _converted_row(tmp_path: Path, criteria: str) -> tuple[dict, dict]:
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "r1", "query": "hotpot chengdu", "title": "Chengdu hotpot guide",
                               "content": "Where to eat hotpot.", "tags": [], "label": 3}) + "\n",
                   encoding="utf-8")
    out = tmp_path / "out"
    assert data_prep_main(["convert", "--input", str(src), "--out", str(out), "--no-progress",
                           "--criteria", criteria]) == 0
    row = pq.read_table(out / "train.parquet").to_pylist()[0]
    return row, json.loads((out / "summary.json").read_text(encoding="utf-8"))


def test_rows_and_summary_carry_the_identity(tmp_path):
    path = write_yaml(tmp_path / "crit.yaml", RAW_DEFAULT)
    row, summary = _converted_row(tmp_path, str(path))
    crit = load_criteria(str(path))
    for record in (row["extra_info"], summary):
        assert record["criteria"] == str(path.resolve())
        assert record["criteria_version"] == 1 and record["criteria_digest"] == crit.digest


def test_the_reward_refuses_rows_of_a_criteria_edited_since(tmp_path):
    path = write_yaml(tmp_path / "crit.yaml", RAW_DEFAULT)
    row, _ = _converted_row(tmp_path, str(path))
    info = row["extra_info"]
    good = compute_score(solution_str="", ground_truth="3", extra_info=info)  # the file as the data was written: no complaint
    assert good["format_error"]
    write_yaml(path, renamed_verdict(RAW_DEFAULT, "need", "met", "satisfied_need"))
    # In this process the old content was read before: its rows keep their own parser.
    assert compute_score(solution_str="", ground_truth="3", extra_info=info)["format_error"] == good["format_error"]
    # A fresh process (no parser of the old content) says what changed and what to do.
    parser_module._BY_DIGEST.clear()  # caches only: what they held is built again on demand
    parser_module._PARSERS.clear()
    with pytest.raises(CriteriaChangedError, match=r"has changed since the data was written.*write the data again"):
        compute_score(solution_str="", ground_truth="3", extra_info=info)


def test_launcher_refuses_data_whose_criteria_changed_and_never_rewrites_it(tmp_path):
    from recipes.launch import StaleDataError, ensure_benchmark

    path = write_yaml(tmp_path / "crit.yaml", RAW_DEFAULT)
    _converted_row(tmp_path, str(path))
    out = tmp_path / "out"
    (out / "val.parquet").write_bytes((out / "train.parquet").read_bytes())
    assert ensure_benchmark(out, criteria="compact") == out  # data of another criteria: used as it is
    write_yaml(path, renamed_verdict(RAW_DEFAULT, "need", "met", "satisfied_need"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(StaleDataError, match=r"which now has digest \w+; write the data again"):
        ensure_benchmark(out, criteria="compact")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_launcher_writes_a_stale_cached_benchmark_again(tmp_path):
    from data_prep.benchmark import BenchmarkConfig, build_benchmark
    from recipes.launch import ensure_benchmark

    out = tmp_path / "bench"  # a small compact benchmark written before its criteria file was edited
    build_benchmark(BenchmarkConfig(criteria="compact", train_size=20, val_size=5, test_random_size=5,
                                    test_longtail_size=10, sft_size=0, rank_queries=0, progress=False), out)
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    (out / "summary.json").write_text(json.dumps({**summary, "criteria_digest": "0" * 16}), encoding="utf-8")
    assert ensure_benchmark(out, criteria="compact") == out
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["criteria"] == "compact" and summary["criteria_digest"] == load_criteria("compact").digest
    assert pq.ParquetFile(out / "train.parquet").metadata.num_rows == BenchmarkConfig().train_size


def test_launcher_uses_another_criterias_benchmark_as_it_is(tmp_path):
    """The free-form twin passed as --data-dir to a recipe whose prompts are the compact criteria's:
    its rows carry their own criteria, and the folder is never written over."""
    from data_prep.benchmark import BenchmarkConfig, build_benchmark
    from recipes.launch import StaleDataError, ensure_benchmark

    out = tmp_path / "bench-free"
    build_benchmark(BenchmarkConfig(criteria="free_form", train_size=20, val_size=5, test_random_size=5,
                                    test_longtail_size=10, sft_size=0, rank_queries=0, progress=False), out)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert ensure_benchmark(out, criteria="compact") == out
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    with pytest.raises(StaleDataError, match="without the unlabelled pool"):
        ensure_benchmark(out, criteria="compact", pool_size=8)
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before