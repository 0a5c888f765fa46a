"""`python -m data_prep convert`: every rejection reason, the reject log and summary,
round trips from JSONL / CSV / parquet, SFT and unlabelled output, whole-file errors,
and verl's own datasets reading what it writes."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_prep.__main__ import main
from data_prep.convert import convert_file
from data_prep.criteria import load_criteria
from data_prep.readers import InputError
from data_prep.records import REASONS, Limits
from data_prep.writer import RL_SCHEMA, SFT_SCHEMA, DatasetWriter

DEFAULT = load_criteria("default")
DROP = object()  # row(..., field=DROP) leaves the field out


def row(i: int = 1, **changes) -> dict:
    base = {"id": f"r{i}", "query": "cheap hotpot chengdu", "title": f"Chengdu hotpot guide {i}",
            "content": "Where to eat hotpot for under 100 yuan, with a map.", "tags": ["food", "travel"],
            "label": [3, 2, 1, 0, -1][i % 5]}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not DROP}


def write_jsonl(path: Path, rows) -> Path:
    with open(path, "wb") as fh:
        for r in rows:
            if isinstance(r, bytes):
                fh.write(r.rstrip(b"\n") + b"\n")
            elif isinstance(r, str):
                fh.write(r.encode("utf-8") + b"\n")
            else:  # ensure_ascii keeps "\udcff" escapes as they are
                fh.write(json.dumps(r, ensure_ascii=True).encode("ascii") + b"\n")
    return path


def run(tmp_path: Path, rows_or_path, *args: str, out: str = "out") -> tuple[int, Path]:
    src = rows_or_path if isinstance(rows_or_path, Path) else write_jsonl(tmp_path / "in.jsonl", rows_or_path)
    out_dir = tmp_path / out
    rc = main(["convert", "--input", str(src), "--out", str(out_dir), "--no-progress", *args])
    return rc, out_dir


def summary_of(out_dir: Path) -> dict:
    return json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))


def rejected_of(out_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (out_dir / "rejected.jsonl").read_text(encoding="utf-8").splitlines()]


def rl_rows(out_dir: Path, split: str = "train") -> list[dict]:
    return pq.read_table(out_dir / f"{split}.parquet").to_pylist()


# -- every rejection reason ---------------------------------------------------------------

LONG = "x" * 257
REJECTED_ROWS = {
    # name: (row, reason, detail fragment)
    "no query": (row(2, query=DROP), "missing_field", "field 'query' is missing"),
    "no title": (row(2, title=DROP), "missing_field", "field 'title' is missing"),
    "no content": (row(2, content=DROP), "missing_field", "field 'content' is missing"),
    "null query": (row(2, query=None), "missing_field", "field 'query' is missing"),
    "blank query": (row(2, query="  \t"), "missing_field", "field 'query' is empty"),
    "no label": (row(2, label=DROP), "missing_field", "field 'label' is missing"),
    "null label": (row(2, label=None), "missing_field", "field 'label' is missing"),
    "query a number": (row(2, query=5), "bad_type", "field 'query': expected text, got int"),
    "title a list": (row(2, title=["a"]), "bad_type", "field 'title': expected text, got list"),
    "content an object": (row(2, content={"a": 1}), "bad_type", "field 'content': expected text, got dict"),
    "label text": (row(2, label="x"), "bad_type", "field 'label': expected an integer, got 'x'"),
    "label bool": (row(2, label=True), "bad_type", "field 'label': expected an integer, got True"),
    "label a list": (row(2, label=[3]), "bad_type", "field 'label': expected an integer"),
    "tags a number": (row(2, tags=5), "bad_type", "field 'tags': expected a list of strings, got int"),
    "tags with numbers": (row(2, tags=["a", 1]), "bad_type", "field 'tags': expected a list of strings"),
    "tags broken JSON": (row(2, tags='["a", '), "bad_type", "field 'tags': not a JSON list"),
    "id a list": (row(2, id=[1]), "bad_type", "field 'id': expected text or a number, got list"),
    "reasoning a number": (row(2, reasoning=5), "bad_type", "field 'reasoning': expected text, got int"),
    "split a path": (row(2, split="../elsewhere"), "bad_type", "field 'split': '../elsewhere' is not a split name"),
    "split a number": (row(2, split=3), "bad_type", "field 'split': 3 is not a split name"),
    "label 5": (row(2, label=5), "label_out_of_range", "field 'label': 5 not in [-1, 0, 1, 2, 3]"),
    "label -2": (row(2, label=-2), "label_out_of_range", "field 'label': -2 not in"),
    "label 2.5": (row(2, label=2.5), "label_out_of_range", "field 'label': 2.5 is not an integer label"),
    "label '2.5'": (row(2, label="2.5"), "label_out_of_range", "'2.5' is not an integer label"),
    "label '7'": (row(2, label="7"), "label_out_of_range", "field 'label': '7' not in"),
    "label '1_0'": (row(2, label="1_0"), "bad_type", "field 'label': expected an integer, got '1_0'"),
    "label in full-width digits": (row(2, label="\uff13"), "bad_type", "expected an integer, got '\uff13'"),
    # integers past 64 bits stay exact (not int(1e30)'s digits)
    "label 10**30": ('{"id": "r2", "query": "q", "title": "t", "content": "c", "label": 1' + "0" * 30 + "}",
                     "label_out_of_range", "field 'label': 1" + "0" * 30 + " not in"),
    "id 1e30": (row(2, id=1e30), "bad_type",
                "field 'id': 1e+30 is too large a number to keep exactly; write the id as text"),
    "label 1e30": (row(2, label=1e30), "label_out_of_range", "field 'label': 1e+30 not in"),
    "empty note": (row(2, title="", content=""), "empty_note", "fields 'title' and 'content' are both empty"),
    "blank note": (row(2, title="  ", content=None), "empty_note", "both empty"),
    "long query": (row(2, query=LONG), "too_long", "field 'query': 257 chars > 256"),
    "long note": (row(2, title="t" * 4000, content="c" * 4001), "too_long",
                  "fields 'title'+'content': 8001 chars > 8000"),
    "surrogate in query": (row(2, query="caf\udce9"), "bad_encoding", "field 'query': bytes that are not valid UTF-8"),
    "surrogate in content": (row(2, content="\udcff"), "bad_encoding", "field 'content'"),
    "surrogate in tags": (row(2, tags=["ok", "\udcff"]), "bad_encoding", "field 'tags'"),
    "surrogate in reasoning": (row(2, reasoning="x\udcff"), "bad_encoding", "field 'reasoning'"),
    "surrogate in id": (row(2, id="r\udcff"), "bad_encoding", "field 'id': bytes that are not valid UTF-8"),
    "duplicate id": (row(1, title="another note"), "duplicate_id", "field 'id': 'r1' already seen"),
    "duplicate numeric id": (row(2, id=1), "duplicate_id", "field 'id': '1' already seen"),
    "annotation unknown step": (row(2, step_gold={"topic": "exact"}), "bad_annotation",
                                "annotations name unknown steps ['topic']"),
    "annotation unknown verdict": (row(2, label=3, step_gold={"need": "maybe"}), "bad_annotation",
                                   "annotation for step 'need' has verdict(s) ['maybe']"),
    "annotation empty list": (row(2, step_gold={"need": []}), "bad_annotation", "non-empty list"),
    "annotation not JSON": (row(2, step_gold="{need: met"), "bad_annotation", "field 'step_gold': not JSON"),
    "annotation a list": (row(2, step_gold=["met"]), "bad_annotation", "expected an object step -> verdict"),
    "NaN label": ('{"id": "r2", "query": "q", "title": "t", "content": "c", "label": NaN}',
                  "bad_type", "field 'label': expected an integer, got nan"),
    "infinite label": ('{"id": "r2", "query": "q", "title": "t", "content": "c", "label": 1e400}',
                       "bad_type", "field 'label': expected an integer, got inf"),
    "NUL in content": (row(2, content="a\x00b"), "bad_encoding", "field 'content': a NUL character at position 1"),
    "NUL in query": (row(2, query="\x00q"), "bad_encoding", "field 'query': a NUL character at position 0"),
    "NUL in tags": (row(2, tags=["ok", "a\x00"]), "bad_encoding", "field 'tags': a NUL character"),
    "NUL in reasoning": (row(2, reasoning="r\x00"), "bad_encoding", "field 'reasoning': a NUL character"),
    "annotation contradicts the label": (row(2, label=3, step_gold={"subject_match": "unrelated"}),
                                         "bad_annotation", "step 'subject_match' ['unrelated'] contradicts "
                                                           "label 3, which needs ['exact']"),
    "broken JSON line": ('{"id": "r2", "query": "q", ', "bad_type", "line 2: not valid JSON"),
    "JSON array line": ('["r2", "q"]', "bad_type", "line 2: expected a JSON object, got list"),
    "invalid UTF-8 line": (b'{"id": "r2", "query": "caf\xe9", "title": "t", "content": "c", "label": 1}',
                           "bad_encoding", "line 2: not valid UTF-8 (invalid continuation byte at byte"),
}


@pytest.mark.parametrize("case", list(REJECTED_ROWS))
def test_each_rejection_reason(tmp_path, case):
    bad, reason, detail = REJECTED_ROWS[case]
    first = row(1, id=1) if case == "duplicate numeric id" else row(1)
    rc, out = run(tmp_path, [first, bad, row(3)])
    assert rc == 0
    [entry] = rejected_of(out)
    assert entry["row"] == 2 and entry["reason"] == reason, entry
    assert detail in entry["detail"], entry
    assert entry["id"] == _id_of(bad)
    summary = summary_of(out)
    assert summary["rows_in"] == 3 and summary["rows_written"] == 2 and summary["rows_rejected"] == 1
    assert summary["rejected_by_reason"] == {reason: 1}
    assert [r["extra_info"]["id"] for r in rl_rows(out)] == [first["id"] if isinstance(first["id"], str)
                                                            else str(first["id"]), "r3"]


def _id_of(line) -> object:
    if isinstance(line, dict):
        return line.get("id")
    try:
        return json.loads(line).get("id")
    except (ValueError, AttributeError):
        return None  # not readable: no id to report


def test_every_reason_code_is_tested():
    assert {reason for _, reason, _ in REJECTED_ROWS.values()} == set(REASONS)


def test_length_limits_are_configurable(tmp_path):
    note = {"title": "t", "content": "c"}
    rows = [row(1, query="q" * 10, **note), row(2, query="q" * 11, **note),
            row(3, query="q", title="t" * 20, content="c" * 30),
            row(4, query="q", title="t" * 20, content="c" * 31)]
    rc, out = run(tmp_path, rows, "--max-query-chars", "10", "--max-note-chars", "50")
    assert rc == 0
    assert [(e["id"], e["reason"]) for e in rejected_of(out)] == [("r2", "too_long"), ("r4", "too_long")]
    assert "11 chars > 10" in rejected_of(out)[0]["detail"]
    assert "51 chars > 50" in rejected_of(out)[1]["detail"]


def test_lengths_count_characters_after_stripping(tmp_path):
    rc, out = run(tmp_path, [row(1, query="  " + "q" * 256 + "\n"), row(2, query="火" * 256)])
    assert summary_of(out)["rows_written"] == 2


def test_accepted_variants(tmp_path):
    """Shapes that are valid: label as text or float, a missing title or body, tag strings,
    numeric and missing ids, blank lines, a byte-order mark, extra fields."""
    rows = [
        b"\xef\xbb\xbf" + json.dumps(row(1, label="3")).encode(),
        row(2, label=2.0),
        row(3, title=None),
        row(4, content=""),
        "",
        row(5, tags="#food, travel #cheap"),
        row(6, tags='["food", "#travel"]'),
        row(7, id=77, tags=None),
        row(8, id=None),
        row(9, id="  r9  ", extra_column="kept out", step_gold={"need": None}),
        # an annotation makes a step checkable where the label leaves it open
        row(10, label=1, step_gold='{"constraints": "violated"}'),
    ]
    rc, out = run(tmp_path, rows)
    assert rc == 0 and rejected_of(out) == []
    got = {r["extra_info"]["id"]: r for r in rl_rows(out)}
    assert sorted(got) == sorted(["r1", "r2", "r3", "r4", "r5", "r6", "77", "row-9", "r9", "r10"])
    assert got["r1"]["reward_model"]["ground_truth"] == "3"
    assert got["r2"]["reward_model"]["ground_truth"] == "2"
    assert "Note title: \n" in got["r3"]["prompt"][1]["content"]
    assert got["r5"]["prompt"][1]["content"].endswith("Note tags: #food #travel #cheap")
    assert got["r6"]["prompt"][1]["content"].endswith("Note tags: #food #travel")
    assert got["77"]["prompt"][1]["content"].endswith("Note tags: -")
    assert json.loads(got["r9"]["extra_info"]["step_gold"]) == DEFAULT.gold_steps(row(9)["label"])
    assert json.loads(got["r10"]["extra_info"]["step_gold"])["constraints"] == ["violated"]
    assert summary_of(out)["rows_in"] == 10  # the blank line is not a row


# -- the reject log and the summary -------------------------------------------------------


def test_reject_log_and_summary_account_for_every_row(tmp_path):
    rows = [row(i, split="val" if i % 4 == 0 else "train") for i in range(1, 41)]
    bad = [row(100, label=9), row(101, query=""), row(102, title="", content=""), "not json",
           row(1, title="duplicate"), row(103, step_gold={"need": "maybe"}), row(104, query=LONG),
           row(105, label=9)]
    rc, out = run(tmp_path, rows + bad)
    assert rc == 0
    summary = summary_of(out)
    rejected = rejected_of(out)
    assert len(rejected) == summary["rows_rejected"] == len(bad)
    assert summary["rows_written"] + summary["rows_rejected"] == summary["rows_in"] == len(rows) + len(bad)
    assert summary["rejected_by_reason"] == {"label_out_of_range": 2, "missing_field": 1, "empty_note": 1,
                                             "bad_type": 1, "duplicate_id": 1, "bad_annotation": 1,
                                             "too_long": 1}
    assert [e["row"] for e in rejected] == list(range(41, 49))  # line numbers
    assert [e["id"] for e in rejected] == ["r100", "r101", "r102", None, "r1", "r103", "r104", "r105"]
    for entry in rejected:
        assert set(entry) == {"row", "id", "reason", "detail"} and entry["detail"]
    assert summary["splits"] == {"train": 30, "val": 10}
    expected = {"train": {}, "val": {}}
    for r in rows:
        counts = expected[r["split"]]
        counts[str(r["label"])] = counts.get(str(r["label"]), 0) + 1
    assert summary["labels_per_split"] == expected
    assert summary["criteria"] == "default" and summary["lang"] == "en" and summary["sft_splits"] == {}
    assert [r["extra_info"]["index"] for r in rl_rows(out, "val")] == list(range(10))


def test_reject_log_lines_survive_unicode_line_breaks(tmp_path):
    rc, out = run(tmp_path, [row(1, id="a\x85b\u2028c", label=9), row(2, id="成都\u2029", label=9)])
    text = (out / "rejected.jsonl").read_text(encoding="utf-8")
    assert len(text.splitlines()) == 2 and "成都" in text  # readable, one entry a line
    assert [e["id"] for e in rejected_of(out)] == ["a\x85b\u2028c", "成都\u2029"]


def test_split_option_and_row_split(tmp_path):
    rc, out = run(tmp_path, [row(1), row(2, split="test_random")], "--split", "val")
    assert summary_of(out)["splits"] == {"test_random": 1, "val": 1}


def test_summary_line_on_stdout(tmp_path, capsys):
    rc, _ = run(tmp_path, [row(1), row(2, label=8)])
    printed = capsys.readouterr().out
    assert rc == 0 and "wrote 1 rows, rejected 1 ({'label_out_of_range': 1})" in printed


def test_rerun_replaces_the_previous_output(tmp_path):
    run(tmp_path, [row(1, split="val", reasoning="r"), row(2)])
    out = tmp_path / "out"
    assert (out / "val.parquet").exists() and (out / "sft_val.parquet").exists()
    run(tmp_path, [row(1), row(2)])
    assert sorted(p.name for p in out.iterdir()) == ["rejected.jsonl", "summary.json", "train.parquet"]


# -- round trips ---------------------------------------------------------------------------

VALID = [
    row(1, step_gold={"query_analysis": "place"}),
    row(2, tags=[]),
    row(3, title="  Braces {query} and {{x}} stay  ", content="Body with 100% real text."),
    row(4, content="火锅 in 成都, 人均 80 元。", tags=["美食"]),
    row(5, reasoning="<subject_match>\nsame\nVerdict: exact\n</subject_match>\n<answer>0</answer>"),
    row(6),
]


def check_rl(records: list[dict], rows: list[dict], split: str = "train", criteria: str = "default"):
    crit = load_criteria(criteria)
    assert len(records) == len(rows)
    for i, (rec, src) in enumerate(zip(records, rows)):
        assert rec["data_source"] == "grm_relevance" and rec["ability"] == "relevance"
        assert rec["reward_model"] == {"style": "rule", "ground_truth": str(src["label"])}
        system, user = rec["prompt"]
        assert system == {"role": "system", "content": crit.prompts["en"]["system"]}
        assert user["role"] == "user" and f"Query: {src['query']}\n" in user["content"]
        assert f"Note title: {src['title'].strip()}\n" in user["content"]
        info = rec["extra_info"]
        assert info["split"] == split and info["index"] == i and info["id"] == src["id"]
        assert info["criteria"] == criteria and info["lang"] == "en"
        assert info["query"] == src["query"] and info["title"] == src["title"].strip()
        annotations = src.get("step_gold") or {}
        assert json.loads(info["step_gold"]) == crit.gold_steps(src["label"], annotations)


def test_jsonl_round_trip(tmp_path):
    rc, out = run(tmp_path, VALID)
    assert rc == 0 and rejected_of(out) == []
    table = pq.read_table(out / "train.parquet")
    assert table.schema.equals(RL_SCHEMA)
    check_rl(table.to_pylist(), VALID)


def _write_csv(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    names = ["id", "query", "title", "content", "tags", "label", "step_gold", "reasoning"]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=names, delimiter=delimiter)
        w.writeheader()
        for r in rows:
            w.writerow({k: (json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
                        for k, v in r.items()})
    return path


@pytest.mark.parametrize("suffix,delimiter", [(".csv", ","), (".tsv", "\t")])
def test_csv_round_trip(tmp_path, suffix, delimiter):
    rc, out = run(tmp_path, _write_csv(tmp_path / f"in{suffix}", VALID, delimiter))
    assert rc == 0 and rejected_of(out) == []
    jsonl_out = run(tmp_path, VALID, out="from_jsonl")[1]
    assert pq.read_table(out / "train.parquet").equals(pq.read_table(jsonl_out / "train.parquet"))
    check_rl(rl_rows(out), VALID)


def test_parquet_round_trip(tmp_path):
    src = tmp_path / "in.parquet"
    cols = ["id", "query", "title", "content", "tags", "label", "reasoning"]
    pq.write_table(pa.Table.from_pylist([{c: r.get(c) for c in cols} for r in VALID]), src)
    rc, out = run(tmp_path, src)
    assert rc == 0
    rows = [{k: v for k, v in r.items() if k != "step_gold"} for r in VALID]
    check_rl(rl_rows(out), rows)


def test_parquet_text_that_is_not_utf8(tmp_path):
    """Parquet does not check its strings; a row with bad bytes is refused, its batch kept."""
    data = b"q onecaf\xe9q three"
    offsets = pa.array([0, 5, 9, 16], pa.int32()).buffers()[1]
    query = pa.Array.from_buffers(pa.string(), 3, [None, offsets, pa.py_buffer(data)])
    table = pa.table({"id": ["a", "b", "c"], "query": query, "title": ["t"] * 3,
                      "content": ["c"] * 3, "label": [3, 2, 1]})
    src = tmp_path / "in.parquet"
    pq.write_table(table, src)
    rc, out = run(tmp_path, src)
    [entry] = rejected_of(out)
    assert entry["row"] == 2 and entry["reason"] == "bad_encoding" and "not valid UTF-8" in entry["detail"]
    assert [r["extra_info"]["query"] for r in rl_rows(out)] == ["q one", "q three"]


def test_csv_cells(tmp_path):
    """Empty cells are missing values; a bad byte in a cell rejects that row, naming the field."""
    text = ("id,query,title,content,label,tags\n"
            "a,q one,,body only,3,\n"
            "b,q two,title,body,,\n"
            "c,q three,title,body,1,x,extra\n").encode()
    bad_cell = b"d,q four,title,caf\xe9 au lait,2,\n"
    src = tmp_path / "in.csv"
    src.write_bytes(text + bad_cell + b"e,q five,t,c,0,#x #y\n")
    rc, out = run(tmp_path, src)
    assert [(e["row"], e["id"], e["reason"]) for e in rejected_of(out)] == [
        (2, "b", "missing_field"), (3, "c", "bad_type"), (4, "d", "bad_encoding")]
    assert rejected_of(out)[2]["detail"] == "field 'content': bytes that are not valid UTF-8"
    assert [r["extra_info"]["id"] for r in rl_rows(out)] == ["a", "e"]


def test_csv_bad_byte_in_the_id_is_logged_escaped(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(b"id,query,title,content,label\nid\xff,q,t,c,3\n")
    rc, out = run(tmp_path, src)
    [entry] = rejected_of(out)
    assert entry["reason"] == "bad_encoding" and entry["id"] == "id\udcff"


def test_sft_parquet_for_rows_with_reasoning(tmp_path):
    rows = [row(1), row(2, reasoning="trace two"), row(3), row(4, reasoning="  "), row(5, reasoning="trace five")]
    rc, out = run(tmp_path, rows)
    summary = summary_of(out)
    assert summary["splits"] == {"train": 5} and summary["sft_splits"] == {"train": 2}
    table = pq.read_table(out / "sft_train.parquet")
    assert table.schema.equals(SFT_SCHEMA)
    rl = {r["extra_info"]["id"]: r for r in rl_rows(out)}
    sft = table.to_pylist()
    assert [r["extra_info"]["id"] for r in sft] == ["r2", "r5"]
    for rec, trace in zip(sft, ["trace two", "trace five"]):
        messages = rec["messages"]
        assert messages[-1] == {"role": "assistant", "content": trace}
        assert messages[:-1] == rl[rec["extra_info"]["id"]]["prompt"]
        assert rec["extra_info"] == rl[rec["extra_info"]["id"]]["extra_info"]  # same index and gold


def test_unlabelled_pool(tmp_path):
    rows = [row(1, label=DROP), row(2, label=None), row(3, label=2), row(4, label=9)]
    rc, out = run(tmp_path, rows, "--unlabelled", "--split", "pool")
    assert rc == 0
    summary = summary_of(out)
    assert summary["labels_per_split"] == {"pool": {"2": 1, "unlabelled": 2}}
    assert [e["reason"] for e in rejected_of(out)] == ["label_out_of_range"]
    records = rl_rows(out, "pool")
    assert [r["reward_model"]["ground_truth"] for r in records] == ["", "", "2"]
    assert [r["extra_info"]["step_gold"] for r in records[:2]] == ["{}", "{}"]
    # the same file without --unlabelled
    rc, out = run(tmp_path, rows, out="labelled")
    assert [e["reason"] for e in rejected_of(out)] == ["missing_field", "missing_field", "label_out_of_range"]


def test_free_form_criteria_and_chinese(tmp_path):
    rc, out = run(tmp_path, [row(1)], "--criteria", "free_form", "--lang", "zh")
    [rec] = rl_rows(out)
    assert rec["extra_info"]["criteria"] == "free_form" and rec["extra_info"]["lang"] == "zh"
    assert rec["extra_info"]["step_gold"] == "{}"
    assert "查询：cheap hotpot chengdu" in rec["prompt"][1]["content"]


def test_criteria_path_is_recorded_for_the_reward(tmp_path):
    path = tmp_path / "team.yaml"
    path.write_text(Path(DEFAULT.source).read_text(encoding="utf-8"), encoding="utf-8")
    rc, out = run(tmp_path, [row(1)], "--criteria", str(path))
    assert rl_rows(out)[0]["extra_info"]["criteria"] == str(path)


def test_criteria_without_system_prompt(tmp_path):
    raw = yaml.safe_load(Path(DEFAULT.source).read_text(encoding="utf-8"))
    raw["prompt"] = {"en": {"user": "{query} | {title} | {content} | {tags}"}}
    path = tmp_path / "nosystem.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    rc, out = run(tmp_path, [row(1, reasoning="trace"), row(2)], "--criteria", str(path))
    assert [r["prompt"] for r in rl_rows(out)] == [
        [{"role": "user", "content": "cheap hotpot chengdu | Chengdu hotpot guide 1 | "
                                     "Where to eat hotpot for under 100 yuan, with a map. | #food #travel"}],
        [{"role": "user", "content": "cheap hotpot chengdu | Chengdu hotpot guide 2 | "
                                     "Where to eat hotpot for under 100 yuan, with a map. | #food #travel"}]]
    [sft] = pq.read_table(out / "sft_train.parquet").to_pylist()
    assert [m["role"] for m in sft["messages"]] == ["user", "assistant"]


# -- whole-file errors: one line, exit code 2, nothing written ----------------------------


def _corrupt_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"PAR1 this is not really parquet")
    return path


def _truncated_parquet(tmp_path):
    path = tmp_path / "cut.parquet"
    pq.write_table(pa.Table.from_pylist(VALID[:2]), path)
    path.write_bytes(path.read_bytes()[:-20])
    return path


def _csv_without_header(tmp_path):
    path = tmp_path / "noheader.csv"
    path.write_text("r1,cheap hotpot,Chengdu hotpot,where to eat,3\n", encoding="utf-8")
    return path


def _empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    return path


def _parquet_without_query(tmp_path):
    path = tmp_path / "cols.parquet"
    pq.write_table(pa.table({"title": ["t"], "content": ["c"], "label": [3]}), path)
    return path


def _unknown_extension(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("{}", encoding="utf-8")
    return path


def _directory(tmp_path):
    path = tmp_path / "folder.jsonl"
    path.mkdir()
    return path


def _file(name: str, content: str):
    def make(tmp_path):
        (tmp_path / name).write_text(content, encoding="utf-8")
        return tmp_path / name
    return make


BAD_FILES = {
    "no such file": (lambda tmp: tmp / "missing.jsonl", "missing.jsonl: no such file"),
    "unknown extension": (_unknown_extension, "pairs.txt: unknown file type '.txt'"),
    "a directory": (_directory, "folder.jsonl: is a directory"),
    "corrupt parquet": (_corrupt_parquet, "broken.parquet: not a readable parquet file"),
    "truncated parquet": (_truncated_parquet, "cut.parquet: not a readable parquet file"),
    "parquet without query": (_parquet_without_query, "cols.parquet: no column(s) query"),
    "csv without header": (_csv_without_header, "noheader.csv: the header row ('r1', 'cheap hotpot'"),
    "empty csv": (_empty_csv, "empty.csv: empty file (no header row)"),
    "empty jsonl": (_file("empty.jsonl", ""), "empty.jsonl: empty file (no rows)"),
    "csv with a column twice": (_file("twice.csv", "query,title,content,label,title\nq,first,c,3,second\n"),
                                "twice.csv: the header names column 'title' twice (columns 2 and 5); "
                                "rename or remove one"),
    "a JSON array": (_file("pairs.json", json.dumps([row(1), row(2)])),
                     "pairs.json: a JSON array; convert reads JSON Lines, one object per line"),
    "pretty-printed JSON": (_file("pretty.jsonl", json.dumps(row(1), indent=2)),
                            "pretty.jsonl: a pretty-printed JSON object; convert reads JSON Lines"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_one_error_line_and_exit_code_2(tmp_path, capsys, case):
    make, message = BAD_FILES[case]
    rc, out = run(tmp_path, make(tmp_path))
    captured = capsys.readouterr()
    assert rc == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    assert not out.exists()  # checked before anything is written


@pytest.mark.parametrize("args,message", [
    (["--criteria", "nonexistent"], "'nonexistent': no such file and not a built-in name"),
])
def test_bad_criteria_is_one_error_line_and_exit_code_2(tmp_path, capsys, args, message):
    rc, _ = run(tmp_path, [row(1)], *args)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0]


def test_split_option_must_be_a_file_name(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, [row(1)], "--split", "../elsewhere")
    assert exit_.value.code == 2
    assert "'../elsewhere' is not a split name" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_output_folder_that_is_a_file(tmp_path, capsys):
    (tmp_path / "out").write_text("x")
    rc, _ = run(tmp_path, [row(1)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ")


@pytest.mark.parametrize("content", [b"\n\n  \n", "query,title,content,label\n"])
def test_input_without_rows_is_an_error(tmp_path, capsys, content):
    src = tmp_path / ("blank.jsonl" if isinstance(content, bytes) else "header.csv")
    src.write_bytes(content if isinstance(content, bytes) else content.encode())
    rc, out = run(tmp_path, src)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"{src.name}: no rows" in err[0], err
    assert list(out.iterdir()) == []  # nothing that looks like a result


@pytest.mark.parametrize("option", ["--max-query-chars", "--max-note-chars"])
@pytest.mark.parametrize("value", ["-1", "0", "many"])
def test_length_limits_must_be_positive(tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, [row(1)], option, value)
    assert exit_.value.code == 2 and f"argument {option}" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_reject_log_is_strict_json(tmp_path):
    """A NaN or infinite id (json's NaN token, a float column) must not make the line unreadable."""
    lines = ['{"id": NaN, "query": 5, "title": "t", "content": "c", "label": 1}',
             '{"id": Infinity, "query": "q", "title": "t", "content": "c", "label": 9}',
             '{"id": [NaN], "query": "q", "title": "t", "content": "c", "label": 9}']
    rc, out = run(tmp_path, [row(1), *lines])

    def refuse(token):
        raise ValueError(f"not JSON: {token}")

    text = (out / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line, parse_constant=refuse) for line in text]
    assert rc == 0 and [e["row"] for e in entries] == [2, 3, 4]
    assert [e["id"] for e in entries] == ["nan", "inf", "[nan]"]


def test_integers_past_64_bits_stay_exact(tmp_path):
    big = "1" + "0" * 30
    rc, out = run(tmp_path, ['{"id": %s, "query": "q", "title": "t", "content": "c", "label": 2}' % big])
    assert rc == 0 and [r["extra_info"]["id"] for r in rl_rows(out)] == [big]


# -- a failed run leaves nothing that looks complete; inputs are never touched ---------------


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())} if out.exists() else {}


def _parquet_with_a_corrupt_second_row_group(tmp_path) -> Path:
    path = tmp_path / "late.parquet"
    rows = [row(i) for i in range(1, 18_001)]  # row groups larger than a read batch: rows are written first
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=9000, compression="none")
    group = pq.ParquetFile(path).metadata.row_group(1)
    start = min(group.column(c).data_page_offset for c in range(group.num_columns))
    data = bytearray(path.read_bytes())
    data[start:start + 64] = b"\xff" * 64  # page headers of the second row group; the footer is intact
    path.write_bytes(bytes(data))
    return path


def test_corrupt_later_row_group_fails_and_writes_nothing(tmp_path, capsys):
    src = _parquet_with_a_corrupt_second_row_group(tmp_path)
    assert pq.ParquetFile(src).metadata.num_rows == 18_000  # opens fine: the damage is found mid-way
    rc, out = run(tmp_path, src)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "late.parquet: corrupt parquet data after row 8192" in err[0], err
    assert _outputs(out) == {}  # no partial split, no reject log, no summary, no temp file


def test_failed_run_keeps_the_earlier_complete_output(tmp_path, capsys):
    src = _parquet_with_a_corrupt_second_row_group(tmp_path)
    good = tmp_path / "good.parquet"
    pq.write_table(pa.Table.from_pylist([row(i) for i in range(1, 41)]), good)
    assert run(tmp_path, good)[0] == 0
    before = _outputs(tmp_path / "out")
    src.rename(good)  # the same input, now damaged
    rc, out = run(tmp_path, good)
    assert rc == 2 and _outputs(out) == before


def test_ctrl_c_leaves_no_output(tmp_path):
    """SIGINT part-way through a real convert process: exit 130, one line, nothing in --out."""
    src = tmp_path / "big.jsonl"
    line = json.dumps(row(1)).replace('"r1"', '"r%d"')
    with open(src, "w", encoding="utf-8") as fh:
        for i in range(300_000):
            fh.write(line % i + "\n")
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    # Ctrl-C as in a foreground shell: a test run started in the background (`cmd &`) ignores
    # SIGINT, and a child would inherit that, so the default handler is restored for it
    proc = subprocess.Popen([sys.executable, "-m", "data_prep", "convert", "--input", str(src), "--out", str(out),
                             "--no-progress"], env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".train.parquet.tmp-") for p in (out.iterdir() if out.exists() else ())):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before a chunk was written"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err.strip().splitlines() == [f"interrupted: nothing was written to {out}"]
    assert _outputs(out) == {}


@pytest.mark.parametrize("name", ["rejected.jsonl", "summary.json", "train.parquet", "sft_val.parquet"])
def test_input_named_like_an_output_inside_out_is_refused(tmp_path, capsys, name):
    out = tmp_path / "out"
    out.mkdir()
    src = out / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pylist([row(1), row(2)]), src)
    else:
        write_jsonl(src, [row(1), row(2)])
    before = src.read_bytes()
    rc = main(["convert", "--input", str(src), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"the input lies in the output folder under a name the converter " \
                                          f"writes ({name})" in err[0], err
    assert src.read_bytes() == before and sorted(p.name for p in out.iterdir()) == [name]


def test_input_inside_out_under_another_name_is_converted(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    src = write_jsonl(out / "pairs.jsonl", [row(1), row(2)])
    before = src.read_bytes()
    assert main(["convert", "--input", str(src), "--out", str(out), "--no-progress"]) == 0
    assert src.read_bytes() == before and summary_of(out)["rows_written"] == 2


def test_second_input_into_the_same_folder_needs_overwrite(tmp_path, capsys):
    first = write_jsonl(tmp_path / "first.jsonl", [row(1, split="val"), row(2)])
    second = write_jsonl(tmp_path / "second.jsonl", [row(3)])
    out = tmp_path / "out"
    assert main(["convert", "--input", str(first), "--out", str(out), "--no-progress"]) == 0
    before = _outputs(out)
    capsys.readouterr()
    rc = main(["convert", "--input", str(second), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and f"holds the output of another input ({first.resolve()}" in err[0], err
    assert "pass --overwrite" in err[0] and _outputs(out) == before
    assert main(["convert", "--input", str(second), "--out", str(out), "--no-progress", "--overwrite"]) == 0
    assert summary_of(out)["input"] == str(second.resolve())
    assert sorted(p.name for p in out.iterdir()) == ["rejected.jsonl", "summary.json", "train.parquet"]


def test_convert_file_raises_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        convert_file(tmp_path / "nope.csv", tmp_path / "out", progress=False)


# -- streaming and robustness ---------------------------------------------------------------


def test_chunks_make_one_file_per_split(tmp_path):
    writer = DatasetWriter(tmp_path / "out", chunk_rows=7)
    for i in range(1, 31):
        writer.add(row(i, reasoning="t" if i % 3 == 0 else None), i)
    summary = writer.close()
    assert summary["splits"] == {"train": 30} and summary["sft_splits"] == {"train": 10}
    meta = pq.ParquetFile(tmp_path / "out" / "train.parquet").metadata
    assert meta.num_rows == 30 and meta.num_row_groups == 5
    records = rl_rows(tmp_path / "out")
    assert [r["extra_info"]["index"] for r in records] == list(range(30))
    sft = pq.read_table(tmp_path / "out" / "sft_train.parquet").to_pylist()
    assert [r["extra_info"]["index"] for r in sft] == list(range(2, 30, 3))


_text = st.one_of(st.none(), st.integers(-3, 5), st.text(max_size=12),
                  st.sampled_from(["", " ", "{query}", "\udcff", "caf\u00e9", "3", "2.5"]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.fixed_dictionaries(
    {"query": _text, "title": _text, "content": _text, "label": _text},
    optional={"id": _text, "tags": st.one_of(_text, st.lists(_text, max_size=3)), "split": _text,
              "step_gold": st.one_of(_text, st.dictionaries(st.sampled_from(["need", "x"]), _text)),
              "reasoning": _text}), max_size=8))
def test_any_row_is_written_or_rejected_never_lost(tmp_path_factory, rows):
    out = tmp_path_factory.mktemp("prop")
    writer = DatasetWriter(out, limits=Limits(max_query_chars=8, max_note_chars=16))
    for i, r in enumerate(rows, start=1):
        writer.add(r, i)
    summary = writer.close()  # asserts written + rejected == in
    assert summary["rows_in"] == len(rows)
    written = sum(pq.ParquetFile(p).metadata.num_rows for p in out.glob("*.parquet")
                  if not p.name.startswith("sft_"))
    assert written == summary["rows_written"]
    assert len(rejected_of(out)) == summary["rows_rejected"]
    assert set(summary["rejected_by_reason"]) <= set(REASONS)


# -- verl reads what we write -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from model_zoo import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("tiny"))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("verl")
    rows = [row(i, reasoning=f"<answer>{[3, 2, 1, 0, -1][i % 5]}</answer>" if i % 2 else None)
            for i in range(1, 9)]
    rc, out = run(tmp, rows)
    assert rc == 0
    return out, rows


def test_verl_rlhf_dataset_loads_the_rl_parquet(written, tokenizer, tmp_path):
    from omegaconf import OmegaConf
    from verl.utils.dataset.rl_dataset import RLHFDataset, collate_fn

    out, rows = written
    config = OmegaConf.create({
        "prompt_key": "prompt", "max_prompt_length": 4096, "truncation": "error",
        "filter_overlong_prompts": True, "filter_overlong_prompts_workers": 1,
        "return_raw_chat": True, "cache_dir": str(tmp_path / "verl_cache"),
    })
    dataset = RLHFDataset(str(out / "train.parquet"), tokenizer, config)
    assert len(dataset) == len(rows)  # every prompt fits: nothing filtered
    item = dataset[2]
    src = rows[2]
    assert item["reward_model"]["ground_truth"] == str(src["label"])
    assert item["data_source"] == "grm_relevance"
    assert item["extra_info"]["id"] == src["id"] and item["index"] == 2
    assert json.loads(item["extra_info"]["step_gold"]) == DEFAULT.gold_steps(src["label"])
    messages = [dict(m) for m in item["raw_prompt"]]
    assert [m["role"] for m in messages] == ["system", "user"]
    # verl 0.9 tokenizes in the rollout's agent loop, with the chat template, as here:
    input_ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    input_ids = input_ids["input_ids"] if isinstance(input_ids, dict) or hasattr(input_ids, "keys") else input_ids
    assert 0 < len(input_ids) <= 4096
    text = tokenizer.decode(input_ids)
    assert src["query"] in text and text.rstrip().endswith("assistant")
    batch = collate_fn([dataset[0], dataset[1]])
    assert list(batch["index"]) == [0, 1]

    # the length filter runs the chat template over every prompt
    short = OmegaConf.merge(config, {"max_prompt_length": 16})
    assert len(RLHFDataset(str(out / "train.parquet"), tokenizer, short)) == 0


def test_verl_sft_dataset_loads_the_sft_parquet(written, tokenizer):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    out, rows = written
    traced = [r for r in rows if r.get("reasoning")]
    config = OmegaConf.create({"max_length": 4096, "truncation": "error", "messages_key": "messages",
                               "pad_mode": "no_padding"})
    dataset = MultiTurnSFTDataset(str(out / "sft_train.parquet"), tokenizer, config)
    assert len(dataset) == len(traced)
    for i, src in enumerate(traced):
        item = dataset[i]
        ids, loss_mask = item["input_ids"], item["loss_mask"]
        assert ids.shape == loss_mask.shape and 0 < int(loss_mask.sum()) < len(ids)
        trained = tokenizer.decode(ids[loss_mask.bool()])
        assert src["reasoning"] in trained and src["query"] not in trained  # loss on the answer only
