"""The main job on built-in defaults: GRPO + SAM on the offline benchmark.

    python -m recipes.launch [--machine auto|cpu|gpu|vllm] [--model NAME|PATH] [--steps N]
                             [--config grpo_sam|grpo] [--out DIR] [--seed N] [--save-hf]
                             [--dry-run] [HYDRA_OVERRIDE ...]

It generates the benchmark (once, into the cache), builds or converts the model
(once), chooses the machine and scale presets (config groups, ``recipes.presets``)
and the overrides verl needs on the machine (verl_backend), checks the
composed config, runs verl's `main_ppo` with the project's recipe, validates at
the end, and writes a summary and training curves. Overrides given after the
options are passed to verl last, so they win.

A run is prepared, and verl's driver runs, in one child process (``recipes.driver``),
so this process holds no verl, torch or data while training runs; its
`command.sh` is the same run as a plain `python -m verl.trainer.main_ppo` command.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import time
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from evaluation.arguments import positive_int
from recipes.presets import Scale, machine_preset, scale_for
from recipes.runner import (finish_metrics_log, keep_earlier, last_checkpoint, merge_checkpoint, read_metrics,
                            resume_metrics_log, resume_point, run_logged, write_command)

RECIPES = Path(__file__).resolve().parent
REPO = RECIPES.parent


class LaunchRefused(Exception):
    """A run that cannot be made as asked: one line for the user, exit code 2."""


class StaleDataError(ValueError):
    """A data folder whose criteria file has changed since the data was written."""


def ensure_benchmark(data_dir: Path, lang: str = "en", seed: int = 0, criteria: str = "default",
                     pool_size: int = 0) -> Path:
    """Generate the offline benchmark into ``data_dir`` unless it is there.

    ``criteria`` sets the prompts and warm-up traces (``free_form`` for the prompt
    ablation); ``pool_size`` adds the unlabelled pool (``pool/pool.parquet``) that
    distillation labels. The labelled splits are the same for a seed either way. A generated
    benchmark of ``criteria`` written with another content of it (its summary's digest) is written
    again; other data, a benchmark of another criteria included, is used as it is, unless its own
    criteria file has changed since (StaleDataError).
    """
    from data_prep.criteria import load_criteria

    ready = (data_dir / "train.parquet").exists() and (data_dir / "val.parquet").exists()
    pool = data_dir / "pool"
    pool_ready = pool_size == 0 or (pool / "pool.parquet").exists()
    if ready and not (data_dir / "README.md").exists():  # not a generated benchmark card
        _check_unchanged(data_dir)
        if pool_ready:
            return data_dir
    wanted = load_criteria(criteria)
    written = _written(data_dir) if ready else {}
    written_with = written.get("criteria")
    if isinstance(written_with, str) and written_with != wanted.ref:
        # Another criteria's benchmark (the free-form twin passed as --data-dir, say): the rows carry
        # their own criteria, so it is used as it is and never written over.
        _check_unchanged(data_dir)
        if not pool_ready:
            raise StaleDataError(f"{data_dir}: written with criteria {written_with!r} and without the unlabelled "
                                 f"pool; pass a folder written with a pool, or another folder")
        return data_dir
    digest = wanted.digest
    pool_summary = _written(pool) if pool.exists() else None
    stale = ready and (written.get("criteria_digest") != digest
                       or pool_summary is not None and pool_summary.get("criteria_digest") != digest)
    if ready and not stale and pool_ready:
        return data_dir
    from data_prep.benchmark import BenchmarkConfig, build_benchmark

    if stale:  # an earlier pool is written again with the rest, at its size
        pool_size = max(pool_size, int((pool_summary or {}).get("rows_written") or 0))
        print(f"{data_dir} was written with another version of criteria '{criteria}'; writing it again",
              flush=True)
    print(f"generating the offline benchmark into {data_dir} ...", flush=True)
    build_benchmark(BenchmarkConfig(seed=seed, lang=lang, criteria=criteria, pool_size=pool_size), data_dir)
    return data_dir


def _check_unchanged(data_dir: Path) -> None:
    """A data folder whose criteria file holds something else now than when the data was written
    is a StaleDataError (the reward would refuse its rows mid-run)."""
    from data_prep.criteria import CriteriaError, load_criteria

    summary = _written(data_dir)
    written, ref = summary.get("criteria_digest"), summary.get("criteria")
    if not written or not isinstance(ref, str):
        return  # written before data carried a digest: nothing to compare
    try:
        now = load_criteria(ref).digest
    except CriteriaError as exc:
        raise StaleDataError(f"{data_dir}: written with criteria {ref!r}, which cannot be read now: {exc}") from None
    if now != written:
        raise StaleDataError(f"{data_dir}: written with criteria {ref!r} (digest {written}), which now has "
                             f"digest {now}; write the data again with that criteria, or restore the file")


def _written(data_dir: Path) -> dict:
    """A data folder's summary.json ({} when it has none that can be read)."""
    try:
        summary = json.loads((data_dir / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def subset_parquet(src: Path, dst: Path, rows: int) -> Path:
    import pyarrow.parquet as pq

    table = pq.read_table(src)
    pq.write_table(table.slice(0, min(rows, table.num_rows)), dst)
    return dst


def run_overrides(args, machine: str, model: Path, data_dir: Path, val_file: Path, out: Path,
                  backend_overrides: list[str], scale: Scale, criteria_override: list[str] = ()) -> list[str]:
    """The Hydra overrides of a run over its recipe: the machine and scale presets (config groups,
    merged first), then the run's own keys in the order they apply (the user's last)."""
    steps = args.steps or scale.steps
    overrides = [
        machine_preset(machine).override,
        scale.override,
        f"data.train_files={data_dir / 'train.parquet'}",
        f"data.val_files={val_file}",
        f"actor_rollout_ref.model.path={model}",
        f"trainer.total_training_steps={steps}",
        f"trainer.test_freq={steps}",  # validate at the end
        f"trainer.default_local_dir={out / 'checkpoints'}",
        f"trainer.experiment_name={out.name}",
        *([f"trainer.save_freq={steps}"] if args.save_hf else []),
        *([f"data.seed={args.seed}", f"actor_rollout_ref.rollout.seed={args.seed}"] if args.seed is not None else []),
        *criteria_override,
        *backend_overrides,
        *args.overrides,
    ]
    return overrides


MAIN_PPO = [sys.executable, "-m", "verl.trainer.main_ppo"]
# The plan of a run, written by its driver process for the launcher (recipes.driver).
PLAN_FILE = "launch_plan.json"


def main_ppo_command(config_name: str, overrides: list[str]) -> list[str]:
    return [*MAIN_PPO, "--config-path", str(RECIPES), "--config-name", config_name, *overrides]


def compose_recipe(config_name: str, overrides: list[str]):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(RECIPES), version_base=None):
        return compose(config_name=config_name, overrides=overrides)


def check_config(config_name: str, overrides: list[str]):
    """Compose the config here and run the SAM start-up checks before anything starts; return it."""
    from sam_advantage.config import validate_run_config

    cfg = compose_recipe(config_name, overrides)
    validate_run_config(cfg)
    return cfg


def _as_list(files) -> list[str]:
    return [files] if isinstance(files, str) else list(files)


def train_prompt_limit(cfg) -> list[str]:
    """``data.train_max_samples`` for the prompts the run will train on, unless one was given.

    verl tokenises every training prompt at start to drop overlong ones: 16-40 s for the
    benchmark's 20k prompts on 2 cores, for runs that use a few hundred. Twice what the run
    needs is read, so a few dropped prompts cannot shorten it.
    """
    if cfg.data.get("train_max_samples", -1) not in (-1, None):
        return []
    steps = cfg.trainer.total_training_steps
    return [f"data.train_max_samples={2 * steps * cfg.data.train_batch_size}"]


_DATA_FILE_KEYS = ("data.train_files", "data.val_files")
_REWARD_KWARGS = "reward.custom_reward_function.reward_kwargs."


def check_args(args) -> str | None:
    """Why the options and overrides cannot make a run, found before anything is created."""
    from data_prep.criteria import CriteriaError, load_criteria
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import OverrideParseException
    from model_zoo import ModelZooError, builtin_models, resolve_model
    from reward.scoring import make_config

    if args.model is not None and args.model not in builtin_models():
        try:
            resolve_model(args.model)  # a path is only checked, never built
        except ModelZooError as exc:
            return f"--model: {exc}"
    if not (RECIPES / f"{args.config}.yaml").is_file():
        return f"--config {args.config}: no recipe {args.config}.yaml in {RECIPES} (grpo_sam, grpo)"
    if args.data_dir is not None and Path(args.data_dir).exists() and not Path(args.data_dir).is_dir():
        return f"--data-dir {args.data_dir}: is a file; pass the benchmark folder"
    parser = OverridesParser.create()
    reward_kwargs = {}
    for text in args.overrides:
        try:
            [override] = parser.parse_overrides([text])
        except OverrideParseException as exc:
            return f"override {text!r}: {' '.join(str(exc).split())}"
        key = override.key_or_group
        if override.is_delete():
            continue
        value = override.value()
        if key in _DATA_FILE_KEYS:
            for path in value if isinstance(value, list) else [value]:
                if "://" not in str(path) and not Path(str(path)).expanduser().is_file():
                    return f"override {key}: {path}: no such file"
        elif key.startswith(_REWARD_KWARGS):
            reward_kwargs[key[len(_REWARD_KWARGS):]] = value
    try:
        make_config(**reward_kwargs)  # the reward's own check of its kwargs
        if reward_kwargs.get("criteria"):
            load_criteria(str(reward_kwargs["criteria"]))
    except (ValueError, TypeError, CriteriaError) as exc:
        return f"override {_REWARD_KWARGS}*: {exc}"
    return None




def recipe_criteria(config_name: str, overrides: list[str]) -> tuple[str, bool]:
    """The criteria the recipe's reward reads, and whether the recipe names it (else the data's)."""
    from omegaconf import OmegaConf

    cfg = compose_recipe(config_name, overrides)
    named = OmegaConf.select(cfg, "reward.custom_reward_function.reward_kwargs.criteria", default=None)
    return (named or "default"), bool(named)


def default_data_dir(criteria: str) -> Path:
    """<cache>/data/benchmark-en for the default criteria, benchmark-en-<name> for another."""
    from model_zoo import cache_dir

    name = "benchmark-en" if criteria == "default" else f"benchmark-en-{Path(criteria).stem}"
    return cache_dir() / "data" / name


# a recipe that does not compose, or fails SAM's checks (SamConfigError is a ValueError)
CONFIG_ERRORS = (HydraException, OmegaConfBaseException, ValueError)


def config_error(exc: Exception) -> LaunchRefused:
    return LaunchRefused(f"Config error: {' '.join(str(exc).split())}")


def _val_acc(values: dict) -> float | None:
    accs = [v for k, v in values.items() if k.endswith("/acc/mean@1")]
    return accs[0] if accs else None


def accuracy_line(summary: dict) -> str:
    """The main job's last console line: what training did to validation accuracy."""
    acc = summary["validation_accuracy"]
    if acc["after"] is None:
        return "validation accuracy: not measured (no validation ran)"
    after = f"{100 * acc['after']:.1f}%"
    rows = f" on {acc['val_rows']} validation pairs" if acc["val_rows"] else ""
    if acc["before"] is None:
        return f"validation accuracy after {summary['steps']} steps: {after}{rows}"
    return (f"validation accuracy: {100 * acc['before']:.1f}% before training -> {after} after "
            f"{summary['steps']} steps{rows}")


def summarize(metrics_log: Path, out: Path, wall_s: float, hf_dir: Path | None = None,
              val_rows: int | None = None, prepare_s: float | None = None) -> dict:
    rows = read_metrics(metrics_log)
    train = [r for r in rows if any(k.startswith("actor/") for k in r["data"])]
    vals = [(r["step"], {k: v for k, v in r["data"].items() if k.startswith("val-core/")}) for r in rows]
    vals = [(step, v) for step, v in vals if v]
    val = vals[-1][1] if vals else {}

    def mean(key):
        values = [r["data"][key] for r in train if key in r["data"]]
        return sum(values) / len(values) if values else None

    summary = {
        "steps": len(train),
        "wall_s": round(wall_s, 1),  # the whole run, its preparing included
        "prepare_s": prepare_s,
        "final_validation": val,
        # validation before training (trainer.val_before_train) and after the last step
        "validation_accuracy": {"before": _val_acc(vals[0][1]) if len(vals) > 1 and vals[0][0] <= 1 else None,
                                "after": _val_acc(val), "val_rows": val_rows},
        "mean_step_s": mean("timing_s/step"),
        "mean_reward": mean("critic/score/mean"),
        "mean_sam_masked_frac_pos": mean("sam/masked_frac_pos"),
        "mean_sam_masked_frac_neg": mean("sam/masked_frac_neg"),
        "mean_format_error_rate": mean("relevance/format_error_rate"),
        "metrics_log": str(metrics_log),
        "hf_model": str(hf_dir) if hf_dir else None,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if rows:
        from evaluation.curves import plot_training_curves

        plot_training_curves(metrics_log, out / "training_curves.png")
    return summary


@dataclass
class RunPlan:
    """What `prepare` hands the launcher: the verl command and where the run writes."""
    cmd: list[str]
    env_add: dict[str, str]
    out: Path
    model: Path
    metrics_log: Path
    val_rows: int
    prepare_s: float = 0.0  # checking, and on a fresh cache building the data and the model

    @property
    def main_ppo_args(self) -> list[str]:
        return self.cmd[len(MAIN_PPO):]

    def save(self, path: Path) -> None:
        fields = {k: str(v) if isinstance(v, Path) else v for k, v in vars(self).items()}
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(fields, indent=2))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> "RunPlan":
        paths = {f.name for f in dataclasses.fields(cls) if f.type in ("Path", Path)}
        return cls(**{k: Path(v) if k in paths else v for k, v in json.loads(path.read_text()).items()})


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m recipes.launch", description=__doc__.splitlines()[0])
    p.add_argument("--machine", default="auto", choices=("auto", "cpu", "gpu", "vllm"))
    p.add_argument("--model", default=None, help="mini-sft | tiny-sft | smollm2 | a local HF folder "
                   "(default: mini-sft on CPU, smollm2 on GPU)")
    p.add_argument("--config", default="grpo_sam",
                   help="recipe name under recipes/ (grpo_sam, grpo, grpo_sam_paper)")
    p.add_argument("--steps", type=positive_int, default=None, help="training steps (default: the model's scale, 20 for mini-sft and smollm2)")
    p.add_argument("--n-gpus", type=positive_int, default=1)
    p.add_argument("--data-dir", default=None, help="benchmark folder (default: <cache>/data/benchmark-en, "
                   "or benchmark-en-<criteria> for a recipe whose reward reads another criteria)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<config>-<time>)")
    p.add_argument("--seed", type=int, default=None,
                   help="seeds the data order (data.seed) and rollout sampling (rollout.seed)")
    p.add_argument("--save-hf", action="store_true",
                   help="checkpoint the last step and merge the actor into <out>/hf (verl's model merger)")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.add_argument("overrides", nargs="*", help="Hydra overrides for verl, applied last")
    return p.parse_args(argv)


def prepare(args: argparse.Namespace) -> RunPlan:
    """Check the options, make the data and the model, compose and check the config: the run's plan.

    Raises LaunchRefused with the line to show when the run cannot be made.
    """
    problem = check_args(args)
    if problem:
        raise LaunchRefused(f"error: {problem}")

    import pyarrow.parquet as pq

    from model_zoo import model_path, resolve_model
    from verl_backend.overrides import backend_launch, detect_machine

    machine = detect_machine() if args.machine == "auto" else args.machine
    out = run_folder(args)
    out.mkdir(parents=True, exist_ok=True)
    model_name = args.model or machine_preset(machine).model
    scale = scale_for(machine, model_name)
    try:
        recipe_crit, explicit = recipe_criteria(args.config, args.overrides)
    except CONFIG_ERRORS as exc:
        raise config_error(exc) from None
    criteria = scale.criteria_for(recipe_crit)
    # A recipe that names its criteria for the reward reads the variant the data is written with.
    criteria_override = ([f"reward.custom_reward_function.reward_kwargs.criteria={criteria}"]
                         if explicit and criteria != recipe_crit else [])
    try:
        data_dir = ensure_benchmark(Path(args.data_dir or default_data_dir(criteria)).resolve(), criteria=criteria)
    except StaleDataError as exc:
        raise LaunchRefused(f"--data-dir {exc}") from None
    val_file = subset_parquet(data_dir / "val.parquet", out / "val_subset.parquet", scale.val_rows)
    # A dry run prints the command without building a model it does not need.
    model = (model_path(model_name) if args.dry_run else resolve_model(model_name)).resolve()
    env_add, backend_ovr = backend_launch(machine, n_gpus=args.n_gpus)
    overrides = run_overrides(args, machine, model, data_dir, val_file, out, backend_ovr, scale, criteria_override)
    try:
        cfg = check_config(args.config, overrides)
    except CONFIG_ERRORS as exc:
        raise config_error(exc) from None
    cmd = main_ppo_command(args.config, overrides + train_prompt_limit(cfg))
    val_rows = sum(pq.ParquetFile(f).metadata.num_rows for f in _as_list(cfg.data.val_files))

    # The same command again in the same folder resumes from the last complete checkpoint
    # (trainer.save_freq), with one metrics log over both attempts.
    resume_from = None if args.dry_run else resume_point(out / "checkpoints")
    if resume_from is not None:
        print(f"resuming from the checkpoint of step {resume_from} in {out / 'checkpoints'}", flush=True)
        cmd.append("trainer.val_before_train=false")  # the first attempt validated before training
    metrics_log = out / "metrics.jsonl" if args.dry_run else resume_metrics_log(out, resume_from)
    write_command(out, env_add, cmd)
    print(f"machine: {machine}; model: {model}; run folder: {out}", flush=True)
    return RunPlan(cmd=cmd, env_add=env_add, out=out, model=model, metrics_log=metrics_log, val_rows=val_rows)


def run_folder(args: argparse.Namespace) -> Path:
    return Path(args.out or REPO / "runs" / f"{args.config}-{time.strftime('%Y%m%d-%H%M%S')}").resolve()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.dry_run:
        try:
            plan = prepare(args)
        except LaunchRefused as exc:
            print(exc, file=sys.stderr)
            return 2
        print(shlex.join(plan.cmd))
        return 0
    # The run is prepared and verl's driver runs in one child process (recipes.driver); this one
    # stays small while training runs, streams the log and writes the summary.
    out = run_folder(args)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1"}
    plan_file = out / PLAN_FILE
    plan_file.unlink(missing_ok=True)
    start = time.perf_counter()
    code = run_logged([sys.executable, "-m", "recipes.driver", *argv, "--out", str(out)], env,
                      keep_earlier(out / "train.log"), cwd=REPO)
    if not plan_file.exists():  # refused (its line is above) or failed before it could run
        if made and code == 2:
            shutil.rmtree(out)
        return code
    plan = RunPlan.load(plan_file)
    finish_metrics_log(out)
    hf_dir = None
    if code == 0 and args.save_hf:
        ckpt = last_checkpoint(out / "checkpoints") / "actor"
        print(f"merging {ckpt} into {out / 'hf'} ...", flush=True)
        hf_dir = merge_checkpoint(ckpt, out / "hf", {**env, **plan.env_add}, base_model=plan.model, cwd=REPO)
    summary = summarize(out / "metrics.jsonl", out, time.perf_counter() - start, hf_dir, plan.val_rows,
                        plan.prepare_s)
    print(json.dumps(summary, indent=2))
    print(accuracy_line(summary), flush=True)
    if code != 0:
        print(f"training failed with exit code {code}; see {out / 'train.log'}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
