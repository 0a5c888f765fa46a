"""A run folder resumes from its last complete checkpoint with one metrics log (recipes.runner).

The checkpoint folders here have verl 0.9.1's layout, built by hand; the end-to-end kill and
rerun through `main_ppo` is in test_train_e2e.py.
"""

from __future__ import annotations

import json

import torch

from recipes.runner import (CHECKPOINT_TRACKER, METRICS_HISTORY, finish_metrics_log, merged_metrics,
                            resume_metrics_log, resume_point)


def checkpoint(ckpt, step, complete=True):
    folder = ckpt / f"global_step_{step}"
    (folder / "actor").mkdir(parents=True)
    (folder / "actor" / "model_world_size_1_rank_0.pt").write_bytes(b"weights")
    if complete:
        torch.save({"epoch": 0, "step": step}, folder / "data.pt")
    return folder


def test_no_tracker_is_a_fresh_start(tmp_path):
    assert resume_point(tmp_path / "checkpoints") is None
    checkpoint(tmp_path, 1)  # a folder without a tracker was never finished as far as verl knows
    assert resume_point(tmp_path) is None


def test_the_tracker_names_the_step(tmp_path):
    checkpoint(tmp_path, 1)
    checkpoint(tmp_path, 2)
    checkpoint(tmp_path, 3, complete=False)  # being written when the run was killed
    (tmp_path / CHECKPOINT_TRACKER).write_text("2")
    assert resume_point(tmp_path) == 2
    assert (tmp_path / CHECKPOINT_TRACKER).read_text() == "2"


def test_a_tracker_cut_off_mid_write_falls_back_to_the_newest_complete_checkpoint(tmp_path, capsys):
    checkpoint(tmp_path, 1)
    checkpoint(tmp_path, 2)
    checkpoint(tmp_path, 3, complete=False)
    (tmp_path / "global_step_4").mkdir()  # not even an actor yet
    (tmp_path / CHECKPOINT_TRACKER).write_text("")  # verl truncates, then writes
    assert resume_point(tmp_path) == 2
    # verl itself reads the tracker on resume: it must now name the complete one
    assert (tmp_path / CHECKPOINT_TRACKER).read_text() == "2"
    assert "newest complete checkpoint, step 2" in capsys.readouterr().out


def test_a_cut_off_data_state_makes_the_checkpoint_incomplete(tmp_path):
    checkpoint(tmp_path, 1)
    folder = checkpoint(tmp_path, 2)
    data = (folder / "data.pt").read_bytes()
    (folder / "data.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / CHECKPOINT_TRACKER).write_text("2")  # even a tracker naming it is not trusted
    assert resume_point(tmp_path) == 1


def test_no_complete_checkpoint_starts_over(tmp_path, capsys):
    checkpoint(tmp_path, 1, complete=False)
    (tmp_path / CHECKPOINT_TRACKER).write_text("1")
    assert resume_point(tmp_path) is None
    assert not (tmp_path / CHECKPOINT_TRACKER).exists()  # else verl would try to load it
    assert "starting over" in capsys.readouterr().out


def write_log(path, steps, tag):
    path.write_text("".join(json.dumps({"step": s, "data": {"tag": tag}}) + "\n" for s in steps)
                    + '{"step": 9, "da')  # a line cut off by the kill


def steps_and_tags(out):
    return [(r["step"], r["data"]["tag"]) for r in merged_metrics(out)]


def test_metrics_continue_over_a_resume_without_repeats_or_gaps(tmp_path):
    # attempt 1 logged the validation before training (step 0) and steps 1-3; killed in step 4,
    # its last checkpoint is step 2: steps 3 and 4 are trained again
    write_log(tmp_path / "metrics.jsonl", [0, 1, 2, 3], "a")
    log = resume_metrics_log(tmp_path, 2)
    assert log == tmp_path / "metrics.jsonl" and not log.exists()  # verl's logger starts it anew
    assert steps_and_tags(tmp_path) == [(0, "a"), (1, "a"), (2, "a")]
    # attempt 2 logs 3 and 4, is killed again; its checkpoint of step 4 is complete
    write_log(log, [3, 4], "b")
    resume_metrics_log(tmp_path, 4)
    write_log(log, [5, 6], "c")
    finish_metrics_log(tmp_path)
    assert not (tmp_path / METRICS_HISTORY).exists()
    assert steps_and_tags(tmp_path) == [(0, "a"), (1, "a"), (2, "a"), (3, "b"), (4, "b"), (5, "c"), (6, "c")]


def test_a_merge_cut_off_before_the_history_was_removed_repeats_nothing(tmp_path):
    write_log(tmp_path / "metrics.jsonl", [1, 2, 3], "a")
    resume_metrics_log(tmp_path, 2)
    write_log(tmp_path / "metrics.jsonl", [3], "b")
    finish_metrics_log(tmp_path)
    # as if killed between writing the merged log and removing the history
    (tmp_path / METRICS_HISTORY).write_text("".join(
        json.dumps({"step": s, "data": {"tag": "a"}}) + "\n" for s in (1, 2)))
    assert steps_and_tags(tmp_path) == [(1, "a"), (2, "a"), (3, "b")]


def test_a_fresh_start_keeps_the_earlier_log_whole(tmp_path):
    write_log(tmp_path / "metrics.jsonl", [1, 2, 3], "a")
    resume_metrics_log(tmp_path, 2)
    write_log(tmp_path / "metrics.jsonl", [3], "b")
    # the checkpoints were deleted: the run starts over, the earlier attempts' log moves aside
    log = resume_metrics_log(tmp_path, None)
    assert not log.exists() and not (tmp_path / METRICS_HISTORY).exists()
    kept = [json.loads(line)["step"] for line in (tmp_path / "metrics.1.jsonl").read_text().splitlines()]
    assert kept == [1, 2, 3]
