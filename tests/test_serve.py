"""`python -m recipes.serve`: scores per pair, convert's rejects and counts, the three input
formats, whole-file and model-folder errors (the tiny model; one forward pass per pair)."""

from __future__ import annotations

import csv
import json
import math
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from data_prep.convert import convert_file
from recipes.serve import main as serve_main

GOOD = [{"id": f"p{i}", "query": f"cheap hotpot chengdu {i}", "title": f"Chengdu hotpot guide {i}",
         "content": "Where to eat hotpot for under 100 yuan, with a map.", "tags": ["food"]} for i in range(7)]
BAD = [
    {"id": "b1", "title": "no query here", "content": "x"},                          # missing_field
    {"id": "b2", "query": "q", "title": "t", "content": "c", "label": 7},            # label_out_of_range
    {"id": "b3", "query": "q", "title": "", "content": "  "},                        # empty_note
    {"id": "p1", "query": "q", "title": "t", "content": "c"},                        # duplicate_id
    {"id": "b5", "query": "q" * 300, "title": "t", "content": "c"},                  # too_long
    {"id": "b6", "query": 5, "title": "t", "content": "c"},                          # bad_type
]
REASONS = {"missing_field": 1, "label_out_of_range": 1, "empty_note": 1, "duplicate_id": 1, "too_long": 1,
           "bad_type": 2}  # the broken JSON line is bad_type too


@pytest.fixture(scope="module")
def tiny():
    import torch

    from model_zoo import resolve_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield str(resolve_model("tiny"))
    torch.set_num_threads(threads)


def _jsonl(path, rows, broken_line: bool = True):
    lines = [json.dumps(r) for r in rows]
    if broken_line:
        lines.insert(3, '{"id": "broken", "query": ')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_scores_rejects_and_counts_match_convert(tmp_path, tiny, capsys):
    rows = GOOD[:3] + BAD[:3] + GOOD[3:] + BAD[3:]
    src = _jsonl(tmp_path / "pairs.jsonl", rows)
    out = tmp_path / "served" / "scores.jsonl"
    assert serve_main(["--model", tiny, "--input", str(src), "--out", str(out), "--batch-size", "4",
                       "--chunk-rows", "3", "--device", "cpu", "--no-progress"]) == 0
    scores = _read(out)
    assert [s["id"] for s in scores] == [r["id"] for r in GOOD]
    for s in scores:
        assert s["label"] in (-1, 0, 1, 2, 3)
        assert math.isclose(sum(s["probs"].values()), 1.0, abs_tol=1e-4)
        assert math.isclose(s["expected"], sum(int(k) * p for k, p in s["probs"].items()), abs_tol=1e-4)
    summary = json.loads((out.parent / "summary.json").read_text())
    assert (summary["rows_in"], summary["rows_scored"], summary["rows_rejected"]) == (14, 7, 7)
    assert summary["rejected_by_reason"] == dict(sorted(REASONS.items()))
    assert sum(summary["predicted_labels"].values()) == 7
    assert "scored 7 pairs, rejected 7" in capsys.readouterr().out
    # The same rejects, reasons and details as convert writes for the same file (unlabelled pool).
    convert_file(src, tmp_path / "converted", unlabelled=True, progress=False)
    assert _read(out.parent / "rejected.jsonl") == _read(tmp_path / "converted" / "rejected.jsonl")
    assert not [p for p in out.parent.iterdir() if p.name.endswith(".tmp")]


def test_scores_equal_the_scorer_on_the_same_prompts(tmp_path, tiny):
    from data_prep.prompt import render_prompt
    from evaluation.generation import render_prompts
    from evaluation.label_scorer import load_scorer

    src = _jsonl(tmp_path / "pairs.jsonl", GOOD, broken_line=False)
    out = tmp_path / "scores.jsonl"
    assert serve_main(["--model", tiny, "--input", str(src), "--out", str(out), "--device", "cpu",
                       "--no-progress"]) == 0
    scorer = load_scorer(tiny, device="cpu", batch_size=1)
    direct = scorer.score(render_prompts(scorer.tokenizer, [render_prompt(r["query"], r["title"], r["content"],
                                                                          r["tags"]) for r in GOOD]))
    for s, d in zip(_read(out), direct):
        assert s["label"] == d.label and s["expected"] == pytest.approx(d.expected, abs=1e-4)


def test_csv_and_parquet_give_the_same_scores(tmp_path, tiny):
    flat = [{**r, "tags": " ".join(r["tags"])} for r in GOOD]
    with open(tmp_path / "pairs.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(flat[0]))
        w.writeheader()
        w.writerows(flat)
    pq.write_table(pa.Table.from_pylist(GOOD), tmp_path / "pairs.parquet")
    _jsonl(tmp_path / "pairs.jsonl", GOOD, broken_line=False)
    results = {}
    for ext in ("jsonl", "csv", "parquet"):
        out = tmp_path / ext / "scores.jsonl"
        assert serve_main(["--model", tiny, "--input", str(tmp_path / f"pairs.{ext}"), "--out", str(out),
                           "--device", "cpu", "--no-progress"]) == 0
        results[ext] = [(s["id"], s["label"], round(s["expected"], 4)) for s in _read(out)]
    assert results["jsonl"] == results["csv"] == results["parquet"] and len(results["jsonl"]) == 7


def test_bad_model_folder_or_file_gives_one_line_and_exit_2(tmp_path, tiny, capsys):
    src = _jsonl(tmp_path / "pairs.jsonl", GOOD[:2], broken_line=False)
    out = tmp_path / "o" / "scores.jsonl"
    (tmp_path / "not_a_model").mkdir()
    cases = [
        (["--model", str(tmp_path / "not_a_model"), "--input", str(src)], "not a Hugging Face model folder"),
        (["--model", str(tmp_path / "missing"), "--input", str(src)], "unknown model"),
        (["--model", tiny, "--input", str(tmp_path / "nope.jsonl")], "no such file"),
        (["--model", tiny, "--input", str(tmp_path / "pairs.txt")], "no such file"),
        (["--model", tiny, "--input", str(src), "--criteria", "no_such_criteria"], "no_such_criteria"),
    ]
    for args, message in cases:
        assert serve_main([*args, "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1, err
    (tmp_path / "header.csv").write_text("query,title\nq,t\n", encoding="utf-8")
    assert serve_main(["--model", tiny, "--input", str(tmp_path / "header.csv"), "--out", str(out)]) == 2
    assert "lacks the column(s) content" in capsys.readouterr().err
    assert serve_main(["--model", tiny, "--input", str(src), "--out", str(src)]) == 2
    assert "the input is never written" in capsys.readouterr().err
    assert not out.exists() and src.read_text().count("\n") == 2
