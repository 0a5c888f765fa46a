"""The CPU miniature's plumbing: the compact prompt variants, the cpu presets of the launcher and
the tables runner, and the paired intervals the tables print."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from data_prep.criteria import CriteriaError, load_criteria
from data_prep.prompt import render_prompt
from recipes import launch
from recipes.tables import MAIN_RL, PRESETS, Matrix, Stage, interval_rows, intervals_markdown


@pytest.mark.parametrize("variant,base", [("compact", "default"), ("paper_compact", "paper")])
def test_a_compact_variant_changes_the_prompt_only(variant, base):
    v, b = load_criteria(variant), load_criteria(base)
    assert v.name == variant and v.format == b.format
    assert v.steps == b.steps and v.labels == b.labels and v.label_rules == b.label_rules
    assert v.answer_tag == b.answer_tag and v.reasoning_tag == b.reasoning_tag
    short = render_prompt("ramen tokyo", "Ramen spots", "five bowls", ["#ramen"], criteria=variant)
    long = render_prompt("ramen tokyo", "Ramen spots", "five bowls", ["#ramen"], criteria=base)
    assert len(short[1]["content"]) < len(long[1]["content"]) / 2
    assert "Query: ramen tokyo" in short[1]["content"]
    for step in v.steps:  # the step order is still in the prompt, as tags
        assert f"<{step.tag}>" in short[1]["content"]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_extends_overrides_keys_and_refuses_cycles(tmp_path):
    _write(tmp_path / "a.yaml", f"name: a\nextends: {tmp_path / 'b.yaml'}\n")
    _write(tmp_path / "b.yaml", f"name: b\nextends: {tmp_path / 'a.yaml'}\n")
    with pytest.raises(CriteriaError, match="makes a cycle"):
        load_criteria(tmp_path / "a.yaml")
    _write(tmp_path / "c.yaml", "name: c\nextends: no_such_criteria\n")
    with pytest.raises(CriteriaError, match="no such file and not a built-in name"):
        load_criteria(tmp_path / "c.yaml")
    _write(tmp_path / "d.yaml", "name: d\nextends: default\nversion: 7\n")
    d = load_criteria(tmp_path / "d.yaml")
    assert d.name == "d" and d.version == 7 and d.steps == load_criteria("default").steps


def test_cpu_launch_defaults_to_the_miniature_without_building_it_in_a_dry_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GRM_CACHE", str(tmp_path / "cache"))
    assert launch.main(["--machine", "cpu", "--out", str(tmp_path / "run"), "--dry-run"]) == 0
    script = (tmp_path / "run" / "command.sh").read_text()
    assert "models/mini-sft" in script and not (tmp_path / "cache" / "models" / "mini-sft").exists()
    assert "benchmark-en-compact/train.parquet" in script  # the compact prompt variant's data
    assert "+machine=cpu +scale=mini" in script and "trainer.total_training_steps=16" in script


def test_a_scale_is_chosen_by_model_name(tmp_path, monkeypatch):
    from recipes import presets

    monkeypatch.setenv("GRM_CACHE", str(tmp_path / "cache"))
    assert presets.scale_for("cpu", "tiny-sft").steps == 3 and presets.scale_for("cpu", "tiny").name == "tiny"
    assert presets.scale_for("cpu", "/some/folder") == presets.scale("mini")  # the machine's default model's
    assert presets.scale_for("gpu", "/some/folder") == presets.scale("smollm2")
    assert presets.scale("mini").criteria_for("paper") == "paper_compact"
    assert presets.scale("tiny").criteria_for("paper") == "paper"
    assert presets.machine_preset("vllm") == presets.machine_preset("gpu")
    with pytest.raises(ValueError, match=r"no preset scale/huge: the choices are \['mini', 'smollm2', 'tiny'\]"):
        presets.scale("huge")


def test_presets_are_config_groups_that_compose_with_the_recipes():
    """The presets are verl keys over the recipe: the machine's batch layout and the scale's sizes
    reach the composed config, and a run's own override still wins over both."""
    from recipes import presets
    from recipes.launch import compose_recipe

    cfg = compose_recipe("grpo_sam", ["+machine=cpu", "+scale=mini"])
    assert cfg.actor_rollout_ref.actor.use_kl_loss is False and cfg.actor_rollout_ref.rollout.n == 8
    assert cfg.data.train_batch_size == 16 and cfg.actor_rollout_ref.actor.ppo_mini_batch_size == 16
    assert cfg.actor_rollout_ref.actor.optim.lr == pytest.approx(3e-4)
    assert cfg.algorithm.adv_estimator == "sam"  # the recipe itself is untouched
    cfg = compose_recipe("grpo_sam", ["+machine=gpu", "+scale=smollm2", "data.train_batch_size=2"])
    assert cfg.data.train_batch_size == 2 and cfg.actor_rollout_ref.actor.use_kl_loss is True
    for group in (presets.MACHINE, presets.SCALE):
        for name in presets.options(group):
            compose_recipe("grpo", [presets.group_override(group, name)])  # every option composes
    from recipes.sft import CONFIG_NAME
    for name in presets.options(presets.SFT_SCALE):
        sft = compose_recipe(CONFIG_NAME, [presets.group_override(presets.SFT_SCALE, name)])
        assert sft.trainer.total_training_steps == 50 and sft.optim.lr == pytest.approx(3e-3)


def test_the_paper_recipe_reads_the_compact_paper_criteria_at_the_miniature_scale(tmp_path, monkeypatch):
    monkeypatch.setenv("GRM_CACHE", str(tmp_path / "cache"))
    assert launch.main(["--machine", "cpu", "--config", "grpo_sam_paper", "--out", str(tmp_path / "run"),
                        "--dry-run"]) == 0
    script = (tmp_path / "run" / "command.sh").read_text()
    assert "reward.custom_reward_function.reward_kwargs.criteria=paper_compact" in script
    assert "benchmark-en-paper_compact/train.parquet" in script


@pytest.fixture
def cpu_matrix(tmp_path):
    data = {"default": tmp_path / "d", "free_form": tmp_path / "f", "paper": tmp_path / "p", "pool": tmp_path / "x"}
    return Matrix(PRESETS["cpu"], [0, 1, 2], tmp_path / "work", data, "mini")


def test_cpu_preset_runs_main_rows_on_every_seed_and_ablations_on_one(cpu_matrix):
    keys = list(cpu_matrix.stages)
    for seed in (0, 1, 2):
        for model in (*MAIN_RL, "sft_label_only", "student"):
            assert f"{model}-s{seed}" in keys
    ablations = [k for k, s in cpu_matrix.stages.items() if s.kind == "rl" and s.model not in MAIN_RL]
    assert ablations and all(k.endswith("-s0") for k in ablations)
    assert set(PRESETS["cpu"].ablations) == {k[:-3] for k in ablations}
    # every main and distillation row comes before the first ablation
    assert max(keys.index(f"student-s{s}") for s in (0, 1, 2)) < min(keys.index(k) for k in ablations)
    assert keys.index("warmup_free") > keys.index("warmup")  # the ablations' own warm-ups
    assert cpu_matrix.stages["warmup_paper"].zoo == "mini-sft-paper"
    label_only = cpu_matrix.command(cpu_matrix.stages["sft_label_only-s1"])
    assert label_only[label_only.index("--steps") + 1] == str(PRESETS["cpu"].label_only_steps)


def _predictions(work: Path, key: str, split: str, correct: list[int], steps: bool = True) -> None:
    """Per pair 1 + correct of 2 verifiable steps, or (steps=False, a label-only model) none."""
    folder = work / "eval" / key / split
    folder.mkdir(parents=True)
    (folder / "predictions.jsonl").write_text("".join(
        json.dumps({"id": f"p{i}", "correct": bool(c), "num_correct": (1 + c) * steps,
                    "num_verifiable": 2 * steps}) + "\n"
        for i, c in enumerate(correct)))


def test_intervals_average_seeds_per_pair_then_resample_pairs(tmp_path):
    m = Matrix(PRESETS["cpu"], [0, 1], tmp_path, {}, "mini")
    m.stages = {"warmup": Stage("warmup", "sft_reasoning", 0, "default", "zoo"),
                "grpo-s0": Stage("grpo-s0", "grpo", 0, "default", "rl"),
                "grpo-s1": Stage("grpo-s1", "grpo", 1, "default", "rl")}
    rng = np.random.default_rng(0)
    warm = rng.integers(0, 2, 400).tolist()
    s0, s1 = rng.integers(0, 2, 400).tolist(), rng.integers(0, 2, 400).tolist()
    _predictions(tmp_path, "warmup", "test_random", warm)
    _predictions(tmp_path, "grpo-s0", "test_random", s0)
    _predictions(tmp_path, "grpo-s1", "test_random", s1)
    [row] = [r for r in interval_rows(m) if r["b"] == "SFT reasoning (warm-up)"]
    assert row["pairs"] == 400 and row["split"] == "test_random"
    per_pair = (np.array(s0) + np.array(s1)) / 2 - np.array(warm)
    assert row["diff"] == pytest.approx(per_pair.mean())
    assert row["low"] < row["diff"] < row["high"]
    se = per_pair.std(ddof=1) / np.sqrt(400)  # the bootstrap interval is close to the normal one by hand
    assert row["high"] - row["low"] == pytest.approx(2 * 1.96 * se, rel=0.1)
    assert row["excludes_zero"] == (row["low"] > 0 or row["high"] < 0)
    # over seeds: the single warm-up is paired with each GRPO seed; t(1 df) = 12.706
    per_seed = [np.mean(s0) - np.mean(warm), np.mean(s1) - np.mean(warm)]
    half = 12.706 * np.std(per_seed, ddof=1) / np.sqrt(2)
    assert row["seeds"] == [2, 1]
    assert row["over_seeds"] == pytest.approx([np.mean(per_seed), np.mean(per_seed) - half, np.mean(per_seed) + half])
    # step accuracy (1 + correct of 2 steps per pair): half the accuracy difference
    assert row["step_accuracy"]["over_pairs"][0] == pytest.approx(per_pair.mean() / 2)
    assert "| GRPO (outcome reward) | SFT reasoning (warm-up) | test_random | 400 | 2/1 |" in intervals_markdown([row])


def test_evaluation_stops_at_the_rollouts_stop_tokens():
    from types import SimpleNamespace

    from evaluation.generation import HFGenerator
    from model_zoo import resolve_model
    from model_zoo.stop_tokens import stop_token_ids

    gen = HFGenerator(str(resolve_model("tiny")), "cpu", 4)
    assert gen.stop_ids == set(stop_token_ids(gen.tokenizer, gen.model.config, gen.model.generation_config))
    # a chat-end marker that no config lists as eos still ends a turn (evaluation used to miss it)
    tok = SimpleNamespace(eos_token_id=7, get_added_vocab=lambda: {"<|im_end|>": 9, "<x>": 11})
    assert stop_token_ids(tok, SimpleNamespace(eos_token_id=[5, 7]), None) == [5, 7, 9]


def test_generator_samples_k_continuations_of_each_prompt_in_order():
    from evaluation.generation import HFGenerator, SamplingConfig, render_prompts
    from model_zoo import resolve_model

    gen = HFGenerator(str(resolve_model("tiny")), "cpu", 4)
    chats = [[{"role": "user", "content": t}] for t in ("cheap hotel paris", "running shoes", "x " * 9)]
    ids = render_prompts(gen.tokenizer, chats)
    greedy = SamplingConfig(max_new_tokens=6)
    alone = [g.text for g in gen.generate(ids, greedy, progress=False)]
    grouped = gen.generate(ids, greedy, progress=False, samples=3)  # prompt i's at 3i .. 3i + 2
    assert [g.text for g in grouped] == [t for t in alone for _ in range(3)]
    sampled = gen.generate(ids, SamplingConfig(max_new_tokens=6, temperature=1.0, seed=1), progress=False, samples=2)
    assert len(sampled) == 6 and all(g.num_tokens > 0 for g in sampled)


def test_terse_traces_read_back_as_their_gold_and_are_shorter():
    from data_prep.benchmark import BenchmarkConfig, generate_benchmark
    from data_prep.traces import build_trace
    from reward import compute_score

    rows = generate_benchmark(BenchmarkConfig(seed=3, train_size=200, val_size=5, test_random_size=5,
                                              test_longtail_size=5, sft_size=0, progress=False))["train"]
    assert {r["label"] for r in rows} == {-1, 0, 1, 2, 3}
    for row in rows:
        terse, full = build_trace(row, "compact"), build_trace(row, "default")
        assert len(terse) < len(full) * 0.7, (terse, full)
        assert row["query"] not in terse  # the query is not restated
        info = {"criteria": "compact", "step_gold": json.dumps(row["step_gold"])}
        res = compute_score("grm_relevance", terse, str(row["label"]), info)
        assert res["score"] == 1.0 and res["format_ok"] == 1.0 and res["step_acc"] == 1.0, (terse, res)
    with pytest.raises(ValueError, match="no 'zh' templates"):
        build_trace({**rows[0], "lang": "zh"}, "compact")


def test_tables_option_keeps_the_stages_its_rows_need(cpu_matrix):
    cpu_matrix.keep_tables({"main", "distillation"})
    models = {s.model for s in cpu_matrix.stages.values()}
    students = {"student", "student_head", "student_head_soft", "student_warm_l2", "student_warm_l1"}
    assert models == {"zero_shot", "sft_reasoning", "sft_label_only", "classifier", "grpo", "grpo_sam", *students}
    cpu_matrix.keep_tables({"distillation"})  # the students need their teachers, the teachers the warm-up
    assert {s.model for s in cpu_matrix.stages.values()} == {"zero_shot", "sft_label_only", "classifier",
                                                             "sft_reasoning", "grpo_sam", *students}


def test_seed_bands_are_mean_min_max_per_step_and_plot(tmp_path):
    from evaluation.curves import plot_seed_bands, seed_bands

    logs = []
    for seed, accs in enumerate(([0.2, 0.3], [0.4, 0.1])):
        log = tmp_path / f"s{seed}.jsonl"
        log.write_text("".join(json.dumps({"step": step, "data": {"val-core/x/acc/mean@1": acc}}) + "\n"
                               for step, acc in zip((0, 8), accs)))
        logs.append(log)
    assert seed_bands(logs, ("val-core/*/acc/mean@1",)) == [(0, pytest.approx(0.3), 0.2, 0.4),
                                                             (8, pytest.approx(0.2), 0.1, 0.3)]
    assert seed_bands(logs, ("no/such/*",)) == []
    drawn = plot_seed_bands({"grpo": logs}, tmp_path / "curves.png")
    assert drawn == ["validation accuracy"] and (tmp_path / "curves.png").stat().st_size > 0
    # step accuracy: the reward's key, which GRPO logs too, comes before SAM's own
    both = tmp_path / "both.jsonl"
    both.write_text(json.dumps({"step": 1, "data": {"sam/step_acc": 0.9, "relevance/step_acc": 0.5}}) + "\n")
    assert seed_bands([both], ("relevance/step_acc", "sam/step_acc")) == [(1, 0.5, 0.5, 0.5)]
    assert "step accuracy (train, sampled)" in plot_seed_bands({"grpo": [both]}, tmp_path / "c2.png")


def test_a_model_without_steps_gets_no_step_accuracy_difference(tmp_path):
    """A student writes the label alone: its difference to the teacher is in accuracy only."""
    m = Matrix(PRESETS["cpu"], [0], tmp_path, {}, "mini")
    m.stages = {"grpo_sam-s0": Stage("grpo_sam-s0", "grpo_sam", 0, "default", "rl"),
                "student-s0": Stage("student-s0", "student", 0, "default", "distill")}
    rng = np.random.default_rng(1)
    _predictions(tmp_path, "grpo_sam-s0", "test_random", rng.integers(0, 2, 50).tolist())
    _predictions(tmp_path, "student-s0", "test_random", rng.integers(0, 2, 50).tolist(), steps=False)
    [row] = interval_rows(m)
    assert row["a"].startswith("Student") and row["diff"] is not None
    assert row["step_accuracy"] == {"over_pairs": None, "over_seeds": None}
    [line] = [l for l in intervals_markdown([row]).splitlines() if l.startswith("| Student")]
    assert "| - | - |" in line  # both step-accuracy cells
