"""Distillation (`recipes.distill`): teacher responses -> label-only SFT rows -> a student.

The data flow is checked on hand-written teacher responses; the slow test labels a small pool
with the tiny warmed-up teacher and trains the tiny student for two steps with verl's SFT
trainer on CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from data_prep.criteria import load_criteria
from data_prep.prompt import format_response
from recipes import distill
from recipes.distill import NoLabelsError, build_distill_set, write_distill_data

SYSTEM = {"role": "system", "content": "You judge relevance."}


def _row(i: int, criteria: str = "default", gold: str = "") -> dict:
    return {"data_source": "grm_relevance", "ability": "relevance",
            "prompt": [SYSTEM, {"role": "user", "content": f"Query: q{i}\nNote: n{i}"}],
            "reward_model": {"style": "rule", "ground_truth": gold},
            "extra_info": {"split": "pool", "index": i, "id": f"pool-{i}", "criteria": criteria, "lang": "en",
                           "step_gold": "{}", "query": f"q{i}", "title": f"t{i}"}}


def _judgement(label: int, drop_step: str | None = None) -> str:
    """A well-formed criteria-guided response (or one with a step left out)."""
    crit = load_criteria("default")
    text = format_response({s.name: (f"about {s.name}", s.verdicts[0]) for s in crit.steps}, label, crit)
    if drop_step:
        start, end = text.index(f"<{drop_step}>"), text.index(f"</{drop_step}>") + len(f"</{drop_step}>")
        text = text[:start] + text[end:]
    return text


# Gold labels are set on purpose and differ from the teacher's: the student learns the teacher's.
POOL = [_row(0, gold="0"), _row(1, gold="3"), _row(2), _row(3), _row(4), _row(5, "free_form", gold="2"),
        _row(6), _row(7)]
TEXTS = [
    _judgement(3),
    _judgement(-1),
    "The note is relevant, I would say 2.",  # no tags at all
    _judgement(2).replace("<answer>2</answer>", "<answer>7</answer>"),  # not a label
    _judgement(1, drop_step="need"),  # a label, but a step is missing
    "<think>\nthe note is about the query's subject\n</think>\n<answer>-1</answer>",  # free-form criteria
    "",
    _judgement(0),
]


def test_build_distill_set_uses_the_teachers_label():
    dset = build_distill_set(POOL, TEXTS)
    assert [r["row"] for r in dset.labelled] == [0, 1, 5, 7]
    assert [r["label"] for r in dset.labelled] == [3, -1, -1, 0]
    assert [r["id"] for r in dset.labelled] == ["pool-0", "pool-1", "pool-5", "pool-7"]
    assert all(r["format_error"] == "" and r["response"] == TEXTS[r["row"]] for r in dset.labelled)
    answers = {0: "<answer>3</answer>", 1: "<answer>-1</answer>", 5: "<answer>-1</answer>", 7: "<answer>0</answer>"}
    for rec, sft in zip(dset.labelled, dset.sft_rows):
        # the prompt unchanged, the teacher's label as the whole answer (not the gold label)
        assert sft["messages"] == POOL[rec["row"]]["prompt"] + [{"role": "assistant", "content": answers[rec["row"]]}]
        assert sft["extra_info"] == POOL[rec["row"]]["extra_info"]
    assert dset.rejected == [
        {"row": 2, "id": "pool-2", "reason": "missing_step:query_analysis", "response": TEXTS[2]},
        {"row": 3, "id": "pool-3", "reason": "answer_not_a_label", "response": TEXTS[3]},
        {"row": 4, "id": "pool-4", "reason": "missing_step:need", "response": TEXTS[4]},
        {"row": 6, "id": "pool-6", "reason": "empty", "response": ""},
    ]
    assert dset.counts() == {
        "pool_rows": 8, "labelled": 4, "rejected": 4, "labelled_malformed": 0,
        "rejected_by_reason": {"answer_not_a_label": 1, "empty": 1, "missing_step:need": 1,
                               "missing_step:query_analysis": 1},
        "teacher_labels": {"3": 1, "0": 1, "-1": 2},
    }


def test_accept_malformed_keeps_a_readable_label_only():
    dset = build_distill_set(POOL, TEXTS, accept_malformed=True)
    assert [r["row"] for r in dset.labelled] == [0, 1, 4, 5, 7]
    kept = dset.labelled[2]
    assert (kept["label"], kept["format_error"]) == (1, "missing_step:need")
    assert dset.sft_rows[2]["messages"][-1] == {"role": "assistant", "content": "<answer>1</answer>"}
    assert [r["reason"] for r in dset.rejected] == ["missing_step:query_analysis", "answer_not_a_label", "empty"]
    assert dset.counts()["labelled_malformed"] == 1


def test_row_without_id_and_length_mismatch():
    row = {**_row(0), "extra_info": {"criteria": "default"}}
    assert build_distill_set([row], ["nothing"]).rejected[0]["id"] == "row-0"
    with pytest.raises(ValueError, match="2 pool rows but 1 teacher"):
        build_distill_set([row, row], ["x"])


def test_gold_agreement_counts_rows_with_gold_only():
    dset = build_distill_set(POOL, TEXTS)
    # labelled rows 0 (gold 0, teacher 3), 1 (gold 3, teacher -1), 5 (gold 2, teacher -1); 7 has no gold
    assert distill.gold_agreement(POOL, dset.labelled) == {"gold_rows": 3, "teacher_acc_on_gold": 0.0}
    assert distill.gold_agreement(POOL, dset.labelled[3:]) == {"gold_rows": 0, "teacher_acc_on_gold": None}


@pytest.fixture(scope="module")
def tokenizer():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoTokenizer

    from model_zoo import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model("tiny"))


def test_written_files_and_verl_sft_dataset(tmp_path, tokenizer):
    from omegaconf import OmegaConf
    from verl.utils.dataset.multiturn_sft_dataset import MultiTurnSFTDataset

    dset = build_distill_set(POOL, TEXTS)
    summary = write_distill_data(tmp_path, dset, {"teacher": "t"})
    assert summary["labelled"] == 4 and summary["teacher"] == "t"
    assert json.loads((tmp_path / "labels_summary.json").read_text()) == summary
    rejected = [json.loads(x) for x in (tmp_path / "rejected.jsonl").read_text().splitlines()]
    assert [(r["row"], r["id"], r["reason"]) for r in rejected] == [
        (2, "pool-2", "missing_step:query_analysis"), (3, "pool-3", "answer_not_a_label"),
        (4, "pool-4", "missing_step:need"), (6, "pool-6", "empty")]
    labels = [json.loads(x) for x in (tmp_path / "data" / "teacher_labels.jsonl").read_text().splitlines()]
    assert [(r["id"], r["label"]) for r in labels] == [("pool-0", 3), ("pool-1", -1), ("pool-5", -1), ("pool-7", 0)]

    train_file = tmp_path / "data" / "distill_train.parquet"
    assert summary["train_file"] == str(train_file)
    assert pq.read_table(train_file).column_names == ["messages", "extra_info"]
    config = OmegaConf.create({"max_length": 4096, "truncation": "error", "messages_key": "messages",
                               "pad_mode": "no_padding"})
    dataset = MultiTurnSFTDataset(str(train_file), tokenizer, config)
    assert len(dataset) == 4
    for i, want in enumerate(["<answer>3</answer>", "<answer>-1</answer>", "<answer>-1</answer>",
                              "<answer>0</answer>"]):
        item = dataset[i]
        trained = tokenizer.decode(item["input_ids"][item["loss_mask"].bool()])
        assert want in trained and "Query:" not in trained  # the loss covers the label only


def test_no_label_at_all_is_a_clear_error(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "distill_train.parquet").write_text("stale")  # an earlier run's file goes
    dset = build_distill_set(POOL[2:5], TEXTS[2:5])
    with pytest.raises(NoLabelsError, match="no readable label on any of the 3 pool rows"):
        write_distill_data(tmp_path, dset)
    assert len((tmp_path / "rejected.jsonl").read_text().splitlines()) == 3
    assert json.loads((tmp_path / "labels_summary.json").read_text())["labelled"] == 0
    assert not (tmp_path / "data" / "distill_train.parquet").exists()


# -- command lines -------------------------------------------------------------------------------


def test_sft_train_file_and_label_only_exclude_each_other(tmp_path, capsys):
    from recipes import sft

    with pytest.raises(SystemExit) as exc:
        sft.main(["--label-only", "--train-file", str(tmp_path / "x.parquet"), "--out", str(tmp_path)])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_sft_train_file_must_be_an_sft_parquet(tmp_path, capsys):
    from recipes import sft

    bad = tmp_path / "rl.parquet"
    pq.write_table(pa.table({"prompt": ["x"]}), bad)
    for path, message in ((bad, "no 'messages' column"), (tmp_path / "missing.parquet", "does not exist")):
        with pytest.raises(SystemExit):
            sft.main(["--train-file", str(path), "--out", str(tmp_path / "run")])
        assert message in capsys.readouterr().err


def test_sft_seed_permutes_the_train_file(tmp_path, capsys):
    from recipes import sft

    dset = build_distill_set(POOL, TEXTS)
    write_distill_data(tmp_path, dset)
    train = tmp_path / "data" / "distill_train.parquet"
    out = tmp_path / "run"
    assert sft.main(["--machine", "cpu", "--model", "tiny", "--train-file", str(train), "--seed", "5",
                     "--out", str(out), "--dry-run", "data.train_batch_size=2"]) == 0
    command = capsys.readouterr().out
    copy = out / "data" / "distill_train.seed5.parquet"
    assert f"data.train_files={copy}" in command
    assert "trainer.seed=5" in command and "engine.seed=5" in command
    assert "+sft_scale=tiny" in command and "data.train_batch_size=2" in command
    # the preset is a config group, merged before every key=value: the user's batch size wins
    assert sft.train_batch_size("tiny", ["data.train_batch_size=2"]) == 2
    ids = [r["id"] for r in pq.read_table(copy).column("extra_info").to_pylist()]
    assert sorted(ids) == sorted(r["id"] for r in dset.labelled)
    again = sft.shuffled_copy(train, tmp_path / "again.parquet", 5)
    assert [r["id"] for r in pq.read_table(again).column("extra_info").to_pylist()] == ids
    assert sft.train_batch_size("tiny") == 4 and sft.train_batch_size("smollm2") == 32
    assert sft.train_batch_size("tiny", ["data.train_batch_size=2"]) == 2


def test_distill_cli_errors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        distill.main(["--out", str(tmp_path / "a"), "--pool", str(tmp_path / "p.parquet")])
    assert "--teacher needed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        distill.main(["--out", str(tmp_path / "a"), "--teacher", "t", "--pool", str(tmp_path / "p.parquet")])
    assert "does not exist" in capsys.readouterr().err
    for flag, value, message in (("--steps", "0", "must be >= 1, got 0"),
                                 ("--batch-size", "two", "expected an integer, got 'two'")):
        with pytest.raises(SystemExit):
            distill.main(["--out", str(tmp_path / "a"), "--teacher", "t", "--pool", "p", flag, value])
        assert f"argument {flag}: {message}" in capsys.readouterr().err
    # --stage train needs an earlier stage's labels
    assert distill.main(["--out", str(tmp_path / "b"), "--stage", "train", "--machine", "cpu"]) == 2
    assert "run --stage label first" in capsys.readouterr().err
    # fewer labelled rows than the student's batch
    write_distill_data(tmp_path / "c", build_distill_set(POOL[:2], TEXTS[:2]))
    assert distill.main(["--out", str(tmp_path / "c"), "--stage", "train", "--machine", "cpu",
                         "--student", "tiny"]) == 2
    assert "2 labelled rows are fewer than the student's batch size 4" in capsys.readouterr().err
    # soft targets: a head student, and the teacher's label distribution to learn from
    for args, message in (
            (["--teacher", "t", "--pool", "p", "--targets", "soft"], "--targets soft needs --student-kind head"),
            (["--teacher", "t", "--pool", "p", "--targets", "soft", "--student-kind", "head"],
             "--soft-samples K (K >= 1)"),
            (["--teacher", "t", "--pool", "p", "--labels-dir", "x"], "--labels-dir is read by --stage train"),
            (["--teacher", "t", "--pool", "p", "--student-layers", "1"], "--student-layers needs --student-kind head"),
            (["--teacher", "t", "--pool", "p", "--soft-samples", "-1"], "must be >= 0, got -1")):
        with pytest.raises(SystemExit):
            distill.main(["--out", str(tmp_path / "a"), *args])
        assert message in capsys.readouterr().err
    # labels written without samples: a soft head is refused in one line naming the file
    assert distill.main(["--out", str(tmp_path / "d"), "--stage", "train", "--labels-dir", str(tmp_path / "c"),
                         "--student-kind", "head", "--targets", "soft", "--machine", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "teacher_labels.jsonl" in err and "--soft-samples" in err


def test_soft_distribution_and_head_targets():
    assert distill.soft_distribution(3, [3, 2, None, 2]) == [0.5, 0.5, 0.0, 0.0, 0.0]  # greedy 3, samples 3, 2, 2
    assert distill.soft_distribution(-1, []) == [0.0, 0.0, 0.0, 0.0, 1.0]
    assert distill.soft_distribution(0, [None, None]) == [0.0, 0.0, 0.0, 1.0, 0.0]
    labelled = [{"row": 0, "label": 2, "probs": [0.5, 0.5, 0, 0, 0]}, {"row": 1, "label": -1}]
    assert distill.head_targets(labelled, "hard", "f") == [[0, 1, 0, 0, 0], [0, 0, 0, 0, 1]]
    with pytest.raises(ValueError, match="1 labelled rows have no label distribution .first: pool row 1"):
        distill.head_targets(labelled, "soft", "f")
    assert distill.head_targets(labelled[:1], "soft", "f") == [[0.5, 0.5, 0, 0, 0]]


# -- end to end ----------------------------------------------------------------------------------

POOL_ROWS = 16
STEPS = 2


@pytest.mark.slow
def test_distill_end_to_end_on_cpu(tmp_path):
    """tiny-sft labels a 16-row pool (greedy, 256 tokens: about half its judgements are
    well-formed), the tiny student trains 2 steps on the labels, the merged student loads."""
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.writer import write_splits
    from model_zoo import resolve_model

    splits = generate_benchmark(BenchmarkConfig(seed=3, train_size=4, val_size=2, test_random_size=2,
                                                test_longtail_size=2, pool_size=POOL_ROWS, sft_size=0,
                                                progress=False))
    write_splits(splits, tmp_path / "bench")
    pool = tmp_path / "bench" / "pool" / "pool.parquet"
    assert pq.read_metadata(pool).num_rows == POOL_ROWS
    teacher = resolve_model("tiny-sft")
    out = tmp_path / "distill"
    cmd = [sys.executable, "-m", "recipes.distill", "--teacher", str(teacher), "--pool", str(pool),
           "--student", "tiny", "--out", str(out), "--machine", "cpu", "--steps", str(STEPS), "--seed", "1",
           "--max-new-tokens", "256", "--batch-size", "8", "--threads", "1", "--no-progress",
           "--soft-samples", "2", "data.train_batch_size=2", "data.micro_batch_size_per_gpu=2"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    wall = time.perf_counter() - start
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-6000:]

    labels = json.loads((out / "labels_summary.json").read_text())
    assert labels["pool_rows"] == POOL_ROWS
    assert labels["labelled"] + labels["rejected"] == POOL_ROWS
    assert labels["labelled"] >= 2, labels  # the student needs one batch of 2
    assert sum(labels["teacher_labels"].values()) == labels["labelled"]
    assert sum(labels["rejected_by_reason"].values()) == labels["rejected"]
    assert labels["teacher_pairs_per_s"] > 0 and labels["gold_rows"] == 0
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == labels["rejected"] and all(r["reason"] and r["id"] for r in rejected)
    teacher_labels = [json.loads(x) for x in (out / "data" / "teacher_labels.jsonl").read_text().splitlines()]
    sft_rows = pq.read_table(out / "data" / "distill_train.parquet").to_pylist()
    assert len(sft_rows) == len(teacher_labels) == labels["labelled"]
    for rec, row in zip(teacher_labels, sft_rows):
        assert row["messages"][-1] == {"role": "assistant", "content": f"<answer>{rec['label']}</answer>"}
        assert row["extra_info"]["id"] == rec["id"]
        # greedy + 2 samples: the greedy label weighs at least a third, the rest in thirds or halves
        probs = dict(zip((3, 2, 1, 0, -1), rec["probs"]))
        assert abs(sum(probs.values()) - 1) < 1e-9 and probs[rec["label"]] >= 1 / 3 - 1e-9
        assert all(abs(round(p * 6) - p * 6) < 1e-9 for p in probs.values())  # thirds or halves
    assert labels["soft_samples"] == 2 and labels["teacher_sample_s"] > 0

    summary = json.loads((out / "summary.json").read_text())
    assert summary["exit_code"] == 0 and summary["sft"]["steps"] == STEPS
    assert summary["labels"]["labelled"] == labels["labelled"]
    hf = out / "student" / "hf"
    assert summary["student_hf"] == str(hf)

    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(hf)
    tok = AutoTokenizer.from_pretrained(hf)
    ids = tok.apply_chat_template(sft_rows[0]["messages"][:-1], add_generation_prompt=True, return_tensors="pt",
                                  return_dict=True)["input_ids"]
    assert model.generate(ids, max_new_tokens=4, do_sample=False).shape[1] > ids.shape[1]
    print(f"distill end to end: {wall:.1f}s wall, labels {labels['teacher_labels']}, "
          f"sft {summary['sft']['wall_s']}s")

    # classification-head students on the same labels, hard and soft, read in one pass
    from evaluation.label_scorer import ClassifierHeadScorer, load_scorer

    for targets in ("hard", "soft"):
        head_out = tmp_path / f"head-{targets}"
        assert distill.main(["--out", str(head_out), "--stage", "train", "--labels-dir", str(out),
                             "--student-kind", "head", "--targets", targets, "--student", "tiny", "--steps", "3",
                             "--machine", "cpu", "--no-progress"]) == 0
        head = json.loads((head_out / "summary.json").read_text())
        assert head["student_kind"] == "head" and head["targets"] == targets and head["head"]["steps"] == 3
        assert head["head"]["distinct_pairs_seen"] == min(24, labels["labelled"])
        mass = head["head"]["target_mass"]
        if targets == "hard":  # one-hot targets: the mass per label is the teacher's label count
            assert {k: round(v) for k, v in mass.items() if v} == {k: v for k, v in labels["teacher_labels"].items()
                                                                   if v}
        scorer = load_scorer(head["student_hf"], "cpu", 4)
        assert isinstance(scorer, ClassifierHeadScorer)
        [scored] = scorer.score([ids[0].tolist()])
        assert abs(sum(scored.probs.values()) - 1) < 1e-5

    # a student on the lower layers of a trained model (here the SFT student): one layer kept,
    # saved at that depth, read back as a one-pass scorer
    from transformers import AutoConfig

    cut_out = tmp_path / "head-cut"
    assert distill.main(["--out", str(cut_out), "--stage", "train", "--labels-dir", str(out),
                         "--student-kind", "head", "--targets", "soft", "--student", str(hf), "--student-layers", "1",
                         "--steps", "3", "--machine", "cpu", "--no-progress"]) == 0
    cut = json.loads((cut_out / "summary.json").read_text())
    assert cut["head"]["layers"] == 1 and AutoConfig.from_pretrained(cut["student_hf"]).num_hidden_layers == 1
    assert AutoConfig.from_pretrained(hf).num_hidden_layers > 1  # the source model is left as it was
    [scored] = load_scorer(cut["student_hf"], "cpu", 4).score([ids[0].tolist()])
    assert abs(sum(scored.probs.values()) - 1) < 1e-5
    # more layers than the backbone has: one line, exit 2
    assert distill.main(["--out", str(tmp_path / "head-deep"), "--stage", "train", "--labels-dir", str(out),
                         "--student-kind", "head", "--targets", "soft", "--student", str(hf), "--student-layers", "99",
                         "--steps", "3", "--machine", "cpu", "--no-progress"]) == 2
