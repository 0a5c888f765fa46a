"""The launcher's checks: bad options and overrides are one line and exit code 2 before a run folder
is made; a config that does not compose or pass SAM's checks is one `Config error:` line."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_prep.writer import write_splits
from recipes import launch


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    rows = [{"id": f"r{i}", "query": "cheap hotpot chengdu", "title": f"hotpot guide {i}",
             "content": "where to eat hotpot for under 100 yuan", "label": i % 4} for i in range(8)]
    out = tmp_path_factory.mktemp("bench")
    write_splits({"train": rows[:4], "val": rows[4:]}, out)
    return out


@pytest.fixture(scope="module")
def tiny() -> str:
    from model_zoo import resolve_model

    return str(resolve_model("tiny"))


def run(tmp_path, capsys, *argv: str) -> tuple[int, list[str]]:
    rc = launch.main(["--machine", "cpu", "--out", str(tmp_path / "run"), "--dry-run", *argv])
    return rc, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize("option,value,message", [
    ("--steps", "0", "argument --steps: must be >= 1, got 0"),  # was silently the preset's 3
    ("--steps", "-1", "argument --steps: must be >= 1, got -1"),
    ("--n-gpus", "0", "argument --n-gpus: must be >= 1, got 0"),
])
def test_counts_must_be_positive(tmp_path, capsys, option, value, message):
    with pytest.raises(SystemExit) as exit_:
        run(tmp_path, capsys, option, value)
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def _folder_without_config(tmp_path: Path) -> str:
    (tmp_path / "not-a-model").mkdir()
    return str(tmp_path / "not-a-model")


def _model_without_tokenizer(tmp_path: Path) -> str:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text("{}")
    return str(tmp_path / "m")


@pytest.mark.parametrize("make,message", [
    (lambda tmp: "/nonexistent/model", "--model: unknown model '/nonexistent/model'"),
    (_folder_without_config, "not a Hugging Face model folder, no config.json"),
    (_model_without_tokenizer, "the model folder has no tokenizer"),
])
def test_model_that_is_not_there(tmp_path, capsys, data_dir, make, message):
    rc, err = run(tmp_path, capsys, "--model", make(tmp_path), "--data-dir", str(data_dir))
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override,message", [
    ("data.train_files=/nonexistent/train.parquet", "override data.train_files: /nonexistent/train.parquet: no such file"),
    ("data.val_files=[/nonexistent/a.parquet]", "override data.val_files: /nonexistent/a.parquet: no such file"),
    ("+reward.custom_reward_function.reward_kwargs.criteria=/nonexistent.yaml", "'/nonexistent.yaml'"),
    ("+reward.custom_reward_function.reward_kwargs.variant=bogus", "unknown reward variant 'bogus'"),
    ("+reward.custom_reward_function.reward_kwargs.ordinal_lambda=abc", "ordinal_lambda='abc' is not a number"),
    ("+reward.custom_reward_function.reward_kwargs.lamda=0.5", "unknown reward kwarg(s) ['lamda']"),
    ("data.train_files=[unclosed", "override 'data.train_files=[unclosed'"),
    # these pass the option checks; composing the config (after the run folder is made) finds them
    ("algorithm.adv_estimator=nonexistent", "Config error: algorithm.adv_estimator='nonexistent' is not a registered"),
    ("reward.reward_manager.name=naive", "Config error: algorithm.adv_estimator=sam needs reward.reward_manager.name"),
    ("trainer.no_such_key=1", "Config error: Could not override 'trainer.no_such_key'"),
])
def test_bad_override_is_one_line(tmp_path, capsys, tiny, data_dir, override, message):
    rc, err = run(tmp_path, capsys, "--model", tiny, "--data-dir", str(data_dir), override)
    assert rc == 2 and len(err) == 1 and message in err[0], err
    if message.startswith("Config error: "):
        return
    assert err[0].startswith("error: ") and not (tmp_path / "run").exists()  # found before anything is made


def test_unknown_recipe(tmp_path, capsys):
    rc, err = run(tmp_path, capsys, "--config", "grpo_typo")
    assert rc == 2 and len(err) == 1 and "--config grpo_typo: no recipe grpo_typo.yaml" in err[0], err


def test_good_dry_run_still_passes(tmp_path, capsys, tiny, data_dir):
    rc, err = run(tmp_path, capsys, "--model", tiny, "--data-dir", str(data_dir), "--steps", "2",
                  "reward.custom_reward_function.reward_kwargs.variant=ordinal")
    assert rc == 0, err
    assert "trainer.total_training_steps=2" in (tmp_path / "run" / "command.sh").read_text()


def test_a_refused_run_leaves_the_launcher_lean_and_no_folder(tmp_path, tiny, data_dir):
    """A real (not dry) run prepares in its driver process (recipes.driver): the launcher imports
    no verl, torch or data library, a refusal there still reaches the user as its one line with
    exit code 2, and the run folder the launcher made for it is gone."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from recipes import launch\n"
        f"rc = launch.main(['--machine', 'cpu', '--model', {tiny!r}, '--data-dir', {str(data_dir)!r},\n"
        f"                  '--out', {str(tmp_path / 'run')!r}, 'reward.reward_manager.name=naive'])\n"
        "assert rc == 2, rc\n"
        "heavy = sorted(m for m in ('verl', 'torch', 'transformers', 'pyarrow') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=Path(launch.__file__).parents[1])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("Config error: ")]
    assert len(lines) == 1 and "reward.reward_manager.name=sam_steps" in lines[0], proc.stdout[-3000:]
    assert not (tmp_path / "run").exists()


def test_the_driver_runs_one_launch_only(capsys):
    from recipes import driver

    assert driver.main(["--machine", "cpu", "--dry-run", "--out", "x"]) == 2
    assert "recipes.driver runs one launch" in capsys.readouterr().err


def test_the_run_plan_reads_back_as_written(tmp_path):
    plan = launch.RunPlan(cmd=[*launch.MAIN_PPO, "--config-name", "grpo_sam"], env_add={"VERL_PLATFORM": "cpu"},
                          out=tmp_path, model=tmp_path / "model", metrics_log=tmp_path / "metrics.jsonl",
                          val_rows=300, prepare_s=7.5)
    plan.save(tmp_path / launch.PLAN_FILE)
    assert launch.RunPlan.load(tmp_path / launch.PLAN_FILE) == plan
    assert plan.main_ppo_args == ["--config-name", "grpo_sam"]
