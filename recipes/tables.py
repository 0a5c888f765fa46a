"""One command that reproduces the paper's tables in miniature: methods x seeds.

    python -m recipes.tables [--preset cpu|tiny|smollm2|full] [--seeds N] [--out DIR] [--work DIR]
                             [--model PATH] [--tables main,ablation,distillation|data_efficiency] [--dry-run]

Every stage is a real run of the project's launchers in its own folder under the work dir
(default ``runs/tables-<preset>``); a finished stage is skipped when the command runs again, so
an interrupted matrix resumes where it stopped.

* warm-up: the criteria-guided SFT warm-up, its free-form twin (the prompt ablation) and its
  twin on the paper-shaped criteria, once;
* SFT label-only (gold labels), per seed;
* RL, per seed, from the warm-up: GRPO, GRPO + SAM (symmetric, negative_only, first_error,
  paper; symmetric with masked tokens out of the loss), GRPO on free-form prompts, GRPO + SAM
  from the base model (no warm-up), and the paper recipe (`grpo_sam_paper`) on the
  paper-shaped criteria from its warm-up;
* distillation, per seed: the seed's GRPO + SAM model labels the unlabelled pool and a student
  learns to write the label directly (`recipes.distill`); head students read the label from one
  forward pass, from a fresh backbone or from the warm-up's first layers;
* evaluation of every model on test_random and test_longtail (`evaluation.evaluate`).
* ``--tables data_efficiency`` (its own command, default out ``results/<preset>-data-efficiency``):
  accuracy against the number of gold-labelled pairs a method trained on: SFT label-only and the
  classification head on each of the preset's amounts (one pass over that many pairs), GRPO + SAM
  from the warm-up on each of its RL amounts (one pass: steps x prompts per step), beside the main
  table's runs of the same methods (reused, not run again) and the warm-up (teacher traces, no
  gold label).

``<out>`` (default ``results/<preset>``) gets README.md (preset, machine, commit, time, the main,
ablation and distillation tables as mean ± std over seeds), the tables as markdown and PNG, the
RL reward curves, stage times, and records.json to rebuild the tables from. The tables are
rewritten after every evaluation, so a stopped run still shows what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from evaluation.report import PREDICTIONS_FILE
from recipes.presets import sft_batch_size

RECIPES = Path(__file__).resolve().parent
REPO = RECIPES.parent
SPLITS = ("test_random", "test_longtail")


RL_STEPS_CPU = 16


@dataclass(frozen=True)
class Preset:
    machine: str  # recipes.launch --machine
    base_model: str  # model_zoo name or a local folder
    warmup: str  # "zoo:<name>" (a cached model_zoo build) or "sft" (verl's SFT trainer, recipes.sft)
    warmup_free: str
    warmup_steps: int | None  # for "sft" warm-ups (None: the recipe's epochs)
    rl_steps: int
    label_only_steps: int
    student: str
    student_steps: int
    pool_size: int
    eval_rows: int | None  # per test split; None: all
    max_new_tokens: int  # judgements (evaluation and pool labelling)
    eval_batch_size: int
    seeds: int
    rl_overrides: tuple[str, ...] = ()
    warmup_paper: str = "sft"  # the warm-up on the paper-shaped criteria, as `warmup`
    note: str = ""
    ablation_seeds: int | None = None  # seeds of the ablation-only RL runs (None: all seeds)
    ablations: tuple[str, ...] | None = None  # the ablation-only RL runs to make (None: all of RL_RUNS)
    zero_shot: bool = True  # evaluate the base model (a randomly initialised base is chance by construction)
    soft_samples: int = 4  # sampled teacher responses per pool pair: the soft targets of a head student
    head_steps: int = 200  # a classification-head student's steps of 8
    # soft-target head students that start from the warm-up's first N layers, one per N
    warm_students: tuple[int, ...] = ()
    # The data-efficiency table: gold-labelled pairs for label-only SFT and the classification head,
    # and for GRPO + SAM (its steps: pairs / prompts per step), seen once each; its seeds
    data_amounts: tuple[int, ...] = ()
    rl_data_amounts: tuple[int, ...] = ()
    data_seeds: int = 1

    def criteria_of(self, family: str) -> str:
        """The criteria a prompt family is written with: the launcher's scale of the base model
        names its prompt variants (the compact prompts of the miniature), one home for both."""
        from recipes.presets import scale_for

        return scale_for(self.machine, self.base_model).criteria_for(family)


PRESETS = {
    # The CPU miniature: a ~1M-parameter model on compact prompts, warmed up on a lenient teacher's
    # traces, that RL improves within the machine (sizes, steps and learning rates from the sweep
    # in docs/results.md). Main rows get three seeds; the ablations one.
    "cpu": Preset(machine="cpu", base_model="mini", warmup="zoo:mini-sft", warmup_free="zoo:mini-sft-free",
                  # label-only: at 16 steps of 8 the model never wrote "<answer>L</answer>" (100% format
                  # errors); 200 steps of 8 see 1600 gold pairs, against the 256 prompts RL samples from.
                  warmup_steps=None, rl_steps=RL_STEPS_CPU, label_only_steps=200, student="mini",
                  # 384 new tokens: the paper-shaped judgements run ~240 (256 cut 38% of its warm-up's)
                  student_steps=150, pool_size=1000, eval_rows=1000, max_new_tokens=384, eval_batch_size=64,
                  seeds=3, rl_overrides=("trainer.test_freq=4", "trainer.val_before_train=true"),
                  warmup_paper="zoo:mini-sft-paper", ablation_seeds=1, zero_shot=False,
                  ablations=("grpo_sam_negative_only", "grpo_sam_first_error", "grpo_sam_paper_variant",
                             "grpo_sam_excluded", "grpo_sam_paper", "grpo_free"),
                  # beside the main table's 1600 (label-only, head) and 256 (RL) pairs; RL at 4096
                  # pairs would be 256 steps (~1.5 h), more than the machine gives a table
                  data_amounts=(1000, 4000, 20000), rl_data_amounts=(1024,), warm_students=(2, 1),
                  note="~1M-parameter model, compact prompts, the lenient teacher's warm-up, 1000 pairs per split"),
    # A pipeline check on a 2-core CPU in about an hour: the 270K-parameter tiny model, whose
    # warm-up is model_zoo's format warm-up (verl's SFT trainer would need ~25 min per warm-up).
    # Label-only SFT: at 60 steps the tiny model still stopped after "<answer>"; 200 it is.
    "tiny": Preset(machine="cpu", base_model="tiny", warmup="zoo:tiny-sft", warmup_free="zoo:tiny-sft-free",
                   warmup_steps=None, rl_steps=3, label_only_steps=200, student="tiny", student_steps=200,
                   pool_size=128, eval_rows=48, max_new_tokens=256, eval_batch_size=16, seeds=2,
                   rl_overrides=("trainer.test_freq=-1",), warmup_paper="zoo:tiny-sft-paper",
                   data_amounts=(64,), rl_data_amounts=(24,),
                   note="tiny model, 3 RL steps: checks the pipeline, too small to rank the methods"),
    # One GPU with the project's HF rollout (or vLLM when installed).
    "smollm2": Preset(machine="gpu", base_model="smollm2", warmup="sft", warmup_free="sft", warmup_steps=300,
                      rl_steps=40, label_only_steps=300, student="smollm2", student_steps=300, pool_size=2000,
                      eval_rows=500, max_new_tokens=1024, eval_batch_size=64, seeds=3,
                      rl_overrides=("trainer.test_freq=-1",)),
    # A cluster with vLLM: pass the base model with --model; the student is SmolLM2-135M.
    "full": Preset(machine="vllm", base_model="", warmup="sft", warmup_free="sft", warmup_steps=None,
                   rl_steps=200, label_only_steps=1000, student="smollm2", student_steps=1000, pool_size=20000,
                   eval_rows=None, max_new_tokens=1024, eval_batch_size=256, seeds=3,
                   rl_overrides=("trainer.test_freq=-1", "data.train_batch_size=64",
                                 "actor_rollout_ref.actor.ppo_mini_batch_size=64")),
}

# (table, display name) entries per model; a model can stand in several tables.
MAIN, ABLATION, DISTILLATION, DATA_EFFICIENCY = "main", "ablation", "distillation", "data_efficiency"
DEFAULT_TABLES = (MAIN, ABLATION, DISTILLATION)
TABLE_ENTRIES = {
    "zero_shot": [(MAIN, "Base model, zero-shot (criteria prompt)")],
    "sft_label_only": [(MAIN, "SFT label-only"), (DISTILLATION, "SFT label-only on gold labels"),
                       (DATA_EFFICIENCY, "SFT label-only")],
    # the warm-up learned from the lenient teacher's traces: no gold label
    "sft_reasoning": [(MAIN, "SFT reasoning (warm-up)"), (DATA_EFFICIENCY, "SFT reasoning (warm-up, teacher traces)")],
    "grpo": [(MAIN, "GRPO (outcome reward)"), (ABLATION, "GRPO, criteria prompt")],
    "grpo_sam": [(MAIN, "GRPO + SAM (symmetric)"), (ABLATION, "GRPO + SAM symmetric"),
                 (DISTILLATION, "Teacher: GRPO + SAM (reasoning)"), (DATA_EFFICIENCY, "GRPO + SAM from the warm-up")],
    "sft_free": [(ABLATION, "SFT warm-up, free-form prompt")],
    "grpo_free": [(ABLATION, "GRPO, free-form prompt")],
    "grpo_sam_negative_only": [(ABLATION, "GRPO + SAM negative_only")],
    "grpo_sam_first_error": [(ABLATION, "GRPO + SAM first_error")],
    "grpo_sam_no_warmup": [(ABLATION, "GRPO + SAM without warm-up")],
    "grpo_sam_paper_variant": [(ABLATION, "GRPO + SAM paper (the authors' masking rule)")],
    "grpo_sam_excluded": [(ABLATION, "GRPO + SAM symmetric, masked tokens out of the loss")],
    "sft_paper": [(ABLATION, "SFT warm-up, paper-shaped criteria")],
    "grpo_sam_paper": [(ABLATION, "GRPO + SAM, the paper recipe (paper criteria and settings)")],
    "student": [(DISTILLATION, "Student: label only, from the teacher's labels")],
    "student_head": [(DISTILLATION, "Student: classification head, from the teacher's labels")],
    "student_head_soft": [(DISTILLATION, "Student: classification head, from the teacher's label distribution (KL)")],
    "student_warm_l2": [(DISTILLATION, "Student: classification head on the warm-up's first 2 layers, from the "
                                       "teacher's label distribution (KL)")],
    "student_warm_l1": [(DISTILLATION, "Student: classification head on the warm-up's first layer, from the "
                                       "teacher's label distribution (KL)")],
    "classifier": [(MAIN, "Traditional relevance model (classification head, gold labels)"),
                   (DISTILLATION, "Discriminative baseline: classification head on gold labels"),
                   (DATA_EFFICIENCY, "Classification head (gold labels)")],
}
# Label-only SFT writes the answer alone: read in classify mode (its format errors count). The
# students serve in one forward pass (score mode): the label-only one over its label tokens, the
# heads by their head; so does the classification-head baseline.
CLASSIFY = {"sft_label_only"}
SCORE = {"classifier", "student", "student_head", "student_head_soft", "student_warm_l1", "student_warm_l2"}
STUDENTS = ("student_head", "student_head_soft")  # trained on the labels the seed's "student" stage wrote
# The distillation table's serving view: each model's ranking quality on the ranking split of a
# test distribution, and its latency at this batch size on the first SERVE_PAIRS test_random prompts.
RANK_SPLIT = {"test_random": "rank_random", "test_longtail": "rank_longtail"}
SERVE_BATCH, SERVE_PAIRS = 32, 256
MAIN_RL = ("grpo", "grpo_sam")  # the main table's RL rows; every other RL run is an ablation


class RLRun(NamedTuple):
    recipe: str  # recipes/<recipe>.yaml
    overrides: tuple[str, ...]  # on top of the recipe
    start: str  # the stage whose model it starts from
    prompts: str  # the prompt family of its data (a key of Preset.criteria)


RL_RUNS = {
    "grpo": RLRun("grpo", (), "warmup", "default"),
    "grpo_sam": RLRun("grpo_sam", (), "warmup", "default"),
    "grpo_sam_negative_only": RLRun("grpo_sam", ("algorithm.sam.variant=negative_only",), "warmup", "default"),
    "grpo_sam_first_error": RLRun("grpo_sam", ("algorithm.sam.variant=first_error",), "warmup", "default"),
    "grpo_free": RLRun("grpo", (), "warmup_free", "free_form"),
    "grpo_sam_no_warmup": RLRun("grpo_sam", (), "base", "default"),
    "grpo_sam_paper_variant": RLRun("grpo_sam", ("algorithm.sam.variant=paper",), "warmup", "default"),
    "grpo_sam_excluded": RLRun("grpo_sam", ("algorithm.sam.exclude_masked_from_loss=true",), "warmup", "default"),
    # The paper-shaped judgements are the longest (six steps, two labels): ~240 tokens in the terse
    # style, where the miniature's scale allows 256 (it cut 38% of the warm-up's); 384 is the
    # recipes' own limit, which the larger presets keep anyway.
    "grpo_sam_paper": RLRun("grpo_sam_paper", ("data.max_response_length=384",), "warmup_paper", "paper"),
}


@dataclass
class Stage:
    key: str  # folder name and model id, e.g. "grpo_sam-s1"
    model: str  # TABLE_ENTRIES key
    seed: int
    criteria: str  # the prompts the model reads (evaluation data)
    kind: str  # zoo | sft | rl | distill | classifier
    deps: list[str] = field(default_factory=list)  # stages whose models this one starts from
    zoo: str | None = None  # model_zoo name or folder, for kind "zoo"
    args: tuple = ()  # kind-specific: sft options, or (recipe, overrides) for rl
    evaluate: bool = True  # False: the stage only provides a model to later stages
    gold_pairs: int | None = None  # gold-labelled pairs its training saw (the data-efficiency table's x)
    data_efficiency_only: bool = False  # a run of the data-efficiency table alone (another amount of data)
    rl_steps: int | None = None  # an RL stage's steps (None: the preset's)

    def entries(self) -> list[tuple[str, str]]:
        """The (table, name) rows the stage's model stands in."""
        entries = TABLE_ENTRIES[self.model]
        if self.data_efficiency_only:
            return [e for e in entries if e[0] == DATA_EFFICIENCY]
        return [e for e in entries if e[0] != DATA_EFFICIENCY or self.gold_pairs is not None]

    @property
    def row(self) -> str:
        """What its seeds are compared as: the model, or the model at another amount of data."""
        return f"{self.model}-n{self.gold_pairs}" if self.data_efficiency_only else self.model


class Matrix:
    """The stages of one preset, in an order where each stage's inputs come first."""

    def __init__(self, preset: Preset, seeds: list[int], work: Path, data: dict[str, Path], base_model: str):
        self.preset, self.seeds, self.work, self.data = preset, seeds, work, data
        self.stages: dict[str, Stage] = {}
        self._add(Stage("base", "zero_shot", 0, "default", "zoo", zoo=base_model, evaluate=preset.zero_shot))
        ablations = [m for m in RL_RUNS if m not in MAIN_RL and (preset.ablations is None or m in preset.ablations)]
        starts = {RL_RUNS[m].start for m in (*MAIN_RL, *ablations)}
        self.sft_batch = sft_batch_size(base_model)
        self.rl_batch = rl_prompts_per_step(preset)
        for key, model, warmup, criteria in (("warmup", "sft_reasoning", preset.warmup, "default"),
                                             ("warmup_free", "sft_free", preset.warmup_free, "free_form"),
                                             ("warmup_paper", "sft_paper", preset.warmup_paper, "paper")):
            if key not in starts:  # no RL run of this preset starts from it
                continue
            gold = 0 if key == "warmup" and warmup.startswith("zoo:") else None  # the lenient teacher's traces
            if warmup.startswith("zoo:"):
                self._add(Stage(key, model, 0, criteria, "zoo", zoo=warmup[4:], gold_pairs=gold))
            else:
                steps = ("--steps", str(preset.warmup_steps)) if preset.warmup_steps else ()
                self._add(Stage(key, model, 0, criteria, "sft", deps=["base"], args=steps))
        ablation_seeds = seeds[:preset.ablation_seeds] if preset.ablation_seeds is not None else seeds
        # The main and distillation rows of every seed first, so a stopped run has answered the
        # main questions before it starts on the ablations.
        for seed in seeds:
            self._add_gold_label_runs(preset.label_only_steps, seed)
            for model in MAIN_RL:
                self._add_rl(model, seed)
            self._add(Stage(f"student-s{seed}", "student", seed, "default", "distill", deps=[f"grpo_sam-s{seed}"]))
            for model in STUDENTS:
                self._add(Stage(f"{model}-s{seed}", model, seed, "default", "distill", deps=[f"student-s{seed}"]))
            for layers in preset.warm_students:
                self._add(Stage(f"student_warm_l{layers}-s{seed}", f"student_warm_l{layers}", seed, "default",
                                "distill", deps=[f"student-s{seed}", "warmup"], args=(layers,)))
        for seed in ablation_seeds:
            for model in ablations:
                self._add_rl(model, seed)
        # the data-efficiency table's other amounts, smallest first; the warm-up is its RL's start
        amounts = sorted([(n, "gold") for n in preset.data_amounts] + [(n, "rl") for n in preset.rl_data_amounts])
        for seed in seeds[:preset.data_seeds]:
            for pairs, kind in amounts:
                if kind == "gold":
                    self._add_gold_label_runs(max(1, pairs // self.sft_batch), seed, suffix=f"-n{pairs}")
                else:
                    self._add_rl("grpo_sam", seed, steps=max(1, pairs // self.rl_batch), suffix=f"-n{pairs}")

    def _add_gold_label_runs(self, steps: int, seed: int, suffix: str = "") -> None:
        """SFT label-only and the discriminative baseline on the same gold pairs (steps of the SFT batch)."""
        pairs, series = steps * self.sft_batch, bool(suffix)
        self._add(Stage(f"sft_label_only{suffix}-s{seed}", "sft_label_only", seed, "default", "sft", deps=["base"],
                        args=("--label-only", "--steps", str(steps)), gold_pairs=pairs,
                        data_efficiency_only=series))
        self._add(Stage(f"classifier{suffix}-s{seed}", "classifier", seed, "default", "classifier", deps=["base"],
                        args=("--steps", str(steps), "--batch-size", str(self.sft_batch)), gold_pairs=pairs,
                        data_efficiency_only=series))

    def _add_rl(self, model: str, seed: int, steps: int | None = None, suffix: str = "") -> None:
        run = RL_RUNS[model]
        gold = (steps or self.preset.rl_steps) * self.rl_batch if run.start == "warmup" else None
        self._add(Stage(f"{model}{suffix}-s{seed}", model, seed, run.prompts, "rl", deps=[run.start],
                        args=(run.recipe, run.overrides), gold_pairs=gold, data_efficiency_only=bool(suffix),
                        rl_steps=steps))

    def _add(self, stage: Stage) -> None:
        self.stages[stage.key] = stage

    def keep_tables(self, tables: set[str]) -> None:
        """Drop the stages no row of ``tables`` needs (a stage stays if a kept stage starts from it)."""
        needed = {k for k, s in self.stages.items() if any(t in tables for t, _ in s.entries())}
        for key in reversed(list(self.stages)):
            if key in needed:
                needed.update(self.stages[key].deps)
        self.stages = {k: s for k, s in self.stages.items() if k in needed}

    def model_dir(self, key: str) -> Path:
        """The HF folder a stage leaves (a model_zoo model is built on first use)."""
        stage = self.stages[key]
        if stage.kind == "zoo":
            from model_zoo import resolve_model

            return resolve_model(stage.zoo).resolve()
        folder = self.work / key
        return folder / "student" / "hf" if stage.kind == "distill" else folder / "hf"

    def _model_ref(self, key: str) -> str:
        """A stage's model as a launcher takes it: a model_zoo name (built by the launcher on first
        use, and its per-model presets apply) or the stage's HF folder."""
        stage = self.stages[key]
        return stage.zoo if stage.kind == "zoo" else str(self.model_dir(key))

    def command(self, stage: Stage) -> list[str] | None:
        """The stage's command, with its inputs' model folders filled in (None for a model_zoo stage)."""
        p, py, out = self.preset, sys.executable, str(self.work / stage.key)
        # SFT and distillation take cpu|gpu: vLLM only matters to the RL launcher (and evaluation).
        machine = p.machine if stage.kind == "rl" or p.machine != "vllm" else "gpu"
        common = ["--machine", machine, "--out", out, "--seed", str(stage.seed)]
        # A model_zoo input goes by name, so the launchers pick their per-model presets (tiny: lr, batch).
        start = self._model_ref(stage.deps[0]) if stage.deps else None
        if stage.kind == "sft":
            return [py, "-m", "recipes.sft", *common, "--model", start, "--data", str(self.data[stage.criteria]),
                    *stage.args]
        if stage.kind == "rl":
            recipe, extra = stage.args
            steps = stage.rl_steps or p.rl_steps
            # a longer run validates at the preset's cadence in steps, not 4x as often
            cadence = (f"trainer.test_freq={max(1, steps // 4)}",) if stage.rl_steps else ()
            return [py, "-m", "recipes.launch", *common, "--config", recipe, "--model", start,
                    "--data-dir", str(self.data[stage.criteria]), "--steps", str(steps), "--save-hf",
                    *p.rl_overrides, *cadence, *extra]
        if stage.kind == "classifier":
            return [py, "-m", "recipes.classifier", *common, "--model", start, "--data",
                    str(self.data[stage.criteria]), "--no-progress", *stage.args]
        warm = stage.model.startswith("student_warm")  # on the warm-up's first layers
        if stage.kind == "distill" and (warm or stage.model in STUDENTS):  # on the seed's "student" stage's labels
            backbone = (self._model_ref(stage.deps[1]), "--student-layers", str(stage.args[0])) if warm \
                else (p.student,)
            return [py, "-m", "recipes.distill", *common, "--stage", "train", "--labels-dir",
                    str(self.work / stage.deps[0]), "--student-kind", "head",
                    "--targets", "soft" if warm or stage.model == "student_head_soft" else "hard",
                    "--student", *backbone, "--steps", str(p.head_steps), "--no-progress"]
        if stage.kind == "distill":
            return [py, "-m", "recipes.distill", *common, "--teacher", start, "--student", p.student,
                    "--pool", str(self.data["pool"]), "--steps", str(p.student_steps),
                    "--max-new-tokens", str(p.max_new_tokens), "--batch-size", str(p.eval_batch_size),
                    "--soft-samples", str(p.soft_samples)]
        return None


def rl_prompts_per_step(preset: Preset) -> int:
    """Labelled prompts an RL step of the preset samples: its overrides', else its model's scale's."""
    from recipes.presets import scale_for

    given = [o.split("=", 1)[1] for o in preset.rl_overrides if o.startswith("data.train_batch_size=")]
    return int(given[-1]) if given else scale_for(preset.machine, preset.base_model or "").prompts_per_step


def ensure_data(preset: Preset, seed: int = 0) -> dict[str, Path]:
    """The benchmark with the pool (criteria prompts), its free-form-prompt and paper-criteria twins."""
    from model_zoo import cache_dir
    from recipes.launch import ensure_benchmark

    root = cache_dir() / "data"
    crit = preset.criteria_of
    variant = "" if crit("default") == "default" else f"-{crit('default')}"
    default = ensure_benchmark(root / f"benchmark-en{variant}-pool{preset.pool_size}", seed=seed,
                               criteria=crit("default"), pool_size=preset.pool_size)
    free = ensure_benchmark(root / f"benchmark-en-{crit('free_form')}", seed=seed, criteria=crit("free_form"))
    paper = ensure_benchmark(root / f"benchmark-en-{crit('paper')}", seed=seed, criteria=crit("paper"))
    return {"default": default, "free_form": free, "paper": paper, "pool": default / "pool" / "pool.parquet"}


def machine_facts() -> dict:
    """What the numbers were measured on (no host names or paths)."""
    facts = {"platform": platform.platform(terse=True), "python": platform.python_version(),
             "cpu_cores": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines()
                      if l.startswith("MemTotal"))
        facts["memory_gib"] = round(mem_kb / 2**20, 1)
    except (OSError, StopIteration, ValueError):
        pass
    import torch

    facts["torch"] = torch.__version__
    facts["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    for pkg in ("verl", "transformers", "vllm"):
        try:
            from importlib.metadata import version

            facts[pkg] = version(pkg)
        except Exception:  # not installed
            facts[pkg] = "not installed"
    return facts


def git_commit() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = [l for l in git("status", "--porcelain", "--untracked-files=no").splitlines()
             if not l[3:].startswith("results/")]
    return commit + ("+uncommitted changes" if dirty else "")


def run_stage(matrix: Matrix, stage: Stage, log) -> tuple[bool, float]:
    """Run one stage (or find it done); (success, wall seconds)."""
    folder = matrix.work / stage.key
    marker = folder / "done.json"
    if marker.exists():
        return True, json.loads(marker.read_text()).get("wall_s", 0.0)
    start = time.perf_counter()
    try:
        cmd = matrix.command(stage)
        path = matrix.model_dir(stage.key)  # builds a model_zoo stage's model
    except Exception as exc:  # an input that cannot be had: this stage and its dependents fail
        log(f"  {stage.key} failed: {type(exc).__name__}: {exc}")
        return False, time.perf_counter() - start
    if stage.kind == "zoo":
        ok = True
    else:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "stage_command.sh").write_text(shlex.join(cmd) + "\n")
        env = {**os.environ, "HF_HUB_OFFLINE": "1"}
        with open(folder / "stage.log", "w") as out:
            code = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT).returncode
        ok = code == 0 and (path / "config.json").exists()
        if not ok:
            log(f"  {stage.key} failed (exit {code}); see {folder / 'stage.log'}")
    wall = time.perf_counter() - start
    if ok:
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(json.dumps({"wall_s": round(wall, 1), "model": str(path)}))
    return ok, wall


def evaluate_stage(matrix: Matrix, stage: Stage) -> dict[str, dict]:
    """Metrics per test split for the stage's model (cached in <work>/eval/<key>); a model of the
    distillation table also gets its ranking metrics and serving latency (`serving_view`)."""
    from evaluation import evaluate

    p = matrix.preset
    mode = evaluation_mode(stage)
    results, reader = {}, None
    for split in SPLITS:
        out = matrix.work / "eval" / stage.key / split
        if (out / "metrics.json").exists():
            results[split] = json.loads((out / "metrics.json").read_text())
            continue
        reader = reader or load_reader(matrix, stage)
        results[split] = evaluate(reader, matrix.data[stage.criteria] / f"{split}.parquet", out,
                                  max_examples=p.eval_rows, mode=mode, progress=False,
                                  max_new_tokens=p.max_new_tokens if mode == "generate" else None)
    if any(table == DISTILLATION for table, _ in stage.entries()):
        for split, extra in serving_view(matrix, stage, reader).items():
            results[split] = {**results[split], **extra}
    return results


def evaluation_mode(stage: Stage) -> str:
    return "score" if stage.model in SCORE else "classify" if stage.model in CLASSIFY else "generate"


def load_reader(matrix: Matrix, stage: Stage):
    """The stage's model as evaluation reads it: a one-pass scorer or a generator."""
    from evaluation import load_generator
    from evaluation.label_scorer import load_scorer

    p, model = matrix.preset, str(matrix.model_dir(stage.key))
    device = "cpu" if p.machine == "cpu" else "auto"
    if evaluation_mode(stage) == "score":
        return load_scorer(model, device, p.eval_batch_size)
    return load_generator(model, "auto", device, p.eval_batch_size)


def serving_view(matrix: Matrix, stage: Stage, reader=None) -> dict[str, dict]:
    """Per test split: NDCG@5, NDCG@10 and MRR on its ranking split (all of it); for test_random also
    pairs/s and p50 / p99 ms per pair at batch SERVE_BATCH on its first SERVE_PAIRS prompts. Cached
    in <work>/eval/<key>/<rank split> and serve_b<batch>.json."""
    from evaluation import evaluate

    p, mode, folder = matrix.preset, evaluation_mode(stage), matrix.work / "eval" / stage.key
    view: dict[str, dict] = {}
    for split, rank in RANK_SPLIT.items():
        data = matrix.data[stage.criteria] / f"{rank}.parquet"
        if not data.exists():
            continue
        cached = folder / rank / "metrics.json"
        if cached.exists():
            metrics = json.loads(cached.read_text())
        else:
            reader = reader or load_reader(matrix, stage)
            metrics = evaluate(reader, data, folder / rank, mode=mode, progress=False, ranking=True,
                               max_new_tokens=p.max_new_tokens if mode == "generate" else None)
        view[split] = {k: metrics["ranking"][k] for k in ("ndcg@5", "ndcg@10", "mrr")}
    serve_file = folder / f"serve_b{SERVE_BATCH}.json"
    if serve_file.exists():
        serve = json.loads(serve_file.read_text())
    else:
        reader = reader or load_reader(matrix, stage)
        serve = measure_serving(reader, matrix.data[stage.criteria] / "test_random.parquet", mode, p.max_new_tokens)
        serve_file.write_text(json.dumps(serve, indent=2))
    view.setdefault("test_random", {}).update({"serve_pairs_per_s": serve["pairs_per_s"],
                                               "serve_p50_ms": serve["p50_ms"], "serve_p99_ms": serve["p99_ms"]})
    return view


def measure_serving(reader, data: Path, mode: str, max_new_tokens: int) -> dict:
    """`evaluation.latency.measure_latency` of the model as it is read (a forward pass per batch for
    a scorer, a greedy `generate` otherwise) at batch SERVE_BATCH."""
    from evaluation.generation import SamplingConfig, render_prompts
    from evaluation.latency import generate_fn, measure_latency
    from evaluation.scoring import load_rows

    prompts = render_prompts(reader.tokenizer, [r["prompt"] for r in load_rows(data, SERVE_PAIRS)])
    if mode == "score":
        run = reader.score
    else:
        run = generate_fn(reader, SamplingConfig(max_new_tokens=8 if mode == "classify" else max_new_tokens))
    result = measure_latency(run, prompts, SERVE_BATCH)
    return {"batch_size": SERVE_BATCH, "mode": mode, **{k: result[k] for k in ("pairs", "pairs_per_s", "p50_ms",
                                                                               "p99_ms")}}


def portable(obj):
    """``obj`` with paths inside the checkout made relative to it: results are committed."""
    if isinstance(obj, str):
        return obj.replace(str(REPO) + os.sep, "")
    if isinstance(obj, dict):
        return {k: portable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v) for v in obj]
    return obj


def records_for(stage: Stage, metrics: dict[str, dict]) -> list[dict]:
    """One record per (table, split); a data-efficiency row is named by its amount of gold pairs,
    which its metrics carry as ``gold_pairs``."""
    from evaluation.tables import data_efficiency_method

    records = []
    for table, name in stage.entries():
        extra = {}
        if table == DATA_EFFICIENCY:
            name, extra = data_efficiency_method(name, stage.gold_pairs), {"gold_pairs": stage.gold_pairs}
        records += [{"table": table, "method": name, "seed": stage.seed, "split": split,
                     "metrics": portable({**metrics[split], **extra})} for split in SPLITS]
    return records


# Paired differences printed with the tables: (A, B) model keys; A minus B over the same pairs.
COMPARISONS = (("grpo_sam", "grpo"), ("grpo", "sft_reasoning"), ("grpo_sam", "sft_reasoning"),
               ("grpo_sam", "classifier"), ("student", "grpo_sam"), ("student_head", "grpo_sam"),
               ("student_head_soft", "grpo_sam"), ("student_warm_l2", "grpo_sam"), ("student_warm_l1", "grpo_sam"))


def data_efficiency_comparisons(matrix: Matrix) -> tuple[tuple[str, str], ...]:
    """GRPO + SAM on the main table's few gold pairs against the gold-label methods on the most."""
    most = max(matrix.preset.data_amounts, default=None)
    return () if most is None else (("grpo_sam", f"sft_label_only-n{most}"), ("grpo_sam", f"classifier-n{most}"))


def row_name(matrix: Matrix, row: str) -> str:
    """A compared row's display name: its model's first table entry, or its data-efficiency row."""
    from evaluation.tables import data_efficiency_method

    stage = next((s for s in matrix.stages.values() if s.row == row), None)
    if stage is not None and stage.data_efficiency_only:
        return data_efficiency_method(stage.entries()[0][1], stage.gold_pairs)
    return TABLE_ENTRIES[row][0][1]


def seed_evaluations(matrix: Matrix, row: str, split: str) -> dict[int, Path]:
    """Seed -> evaluation folder of the row's evaluated stages on the split (`Stage.row`)."""
    folders = {stage.seed: matrix.work / "eval" / stage.key / split for stage in matrix.stages.values()
               if stage.row == row}
    return {seed: f for seed, f in sorted(folders.items()) if (f / PREDICTIONS_FILE).exists()}


def interval_rows(matrix: Matrix) -> list[dict]:
    """Paired 95% intervals of A - B per split (evaluation.compare): accuracy and step accuracy,
    over the pairs (seeds averaged per pair) and over the seeds (t interval, seed i with seed i;
    a single-seed B, e.g. the warm-up, with every seed of A)."""
    from evaluation.compare import compare, load_predictions

    rows = []
    for a, b in (*COMPARISONS, *data_efficiency_comparisons(matrix)):
        for split in SPLITS:
            fa, fb = seed_evaluations(matrix, a, split), seed_evaluations(matrix, b, split)
            if len(fb) > 1:  # pair seed with seed; a seed only one side has is left out
                fa, fb = ({s: f for s, f in side.items() if s in fa and s in fb} for side in (fa, fb))
            if not fa or not fb:
                continue
            try:
                result = compare([load_predictions(f) for f in fa.values()],
                                 [load_predictions(f) for f in fb.values()])
            except ValueError as exc:  # no shared pair: the row is left out, and says why
                print(f"interval {a} - {b} on {split} left out: {exc}", file=sys.stderr)
                continue
            acc = result["metrics"]["accuracy"]
            step = result["metrics"].get("step_accuracy", {"over_pairs": None, "over_seeds": None})
            diff, low, high = acc["over_pairs"]
            acc_b = statistics.fmean(acc["b"])
            rows.append({"a": row_name(matrix, a), "b": row_name(matrix, b), "split": split, "pairs": result["pairs"],
                         "seeds": [len(fa), len(fb)], "diff": diff, "low": low, "high": high,
                         "excludes_zero": low > 0 or high < 0, "over_seeds": acc["over_seeds"],
                         "ratio": (acc_b + diff) / acc_b if acc_b else None,
                         "step_accuracy": {"over_pairs": step["over_pairs"], "over_seeds": step["over_seeds"]}})
    return rows


def _points(triple: list[float] | None) -> str:
    if triple is None:
        return "-"
    d, lo, hi = (100 * x for x in triple)
    return f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def intervals_markdown(rows: list[dict]) -> str:
    lines = ["## Paired differences (A - B in points, 95% intervals)", "",
             "| A | B | split | pairs | seeds A/B | accuracy, over pairs | excludes 0 | accuracy, over seeds "
             "| step accuracy, over pairs | step accuracy, over seeds | A / B |",
             "|---|---|---|---:|---:|---|---|---|---|---|---:|"]
    for r in rows:
        ratio = f"{r['ratio']:.3f}" if r["ratio"] is not None else "-"
        step = r["step_accuracy"]
        lines.append(f"| {r['a']} | {r['b']} | {r['split']} | {r['pairs']} | {r['seeds'][0]}/{r['seeds'][1]} | "
                     f"{_points([r['diff'], r['low'], r['high']])} | {'yes' if r['excludes_zero'] else 'no'} | "
                     f"{_points(r['over_seeds'])} | {_points(step['over_pairs'])} | {_points(step['over_seeds'])} "
                     f"| {ratio} |")
    lines += ["", "*Over pairs*: seeds are averaged per pair, then the pairs are resampled (10,000 paired "
              "bootstrap resamples): the evaluation pairs' noise for these trained models. *Over seeds*: a "
              "Student t interval over the per-seed differences (seed i of A with seed i of B; a single B "
              "with every A): whether the method wins when retrained, wide with three seeds. Step accuracy "
              "is correct / verifiable steps over all pairs. `python -m evaluation.compare` prints the same "
              "for any two sets of evaluation folders."]
    return "\n".join(lines) + "\n"


def write_stage_times(out: Path, rows: list[dict]) -> None:
    lines = ["# Stage times", "", "| stage | model | seed | status | wall s |", "|---|---|---:|---|---:|"]
    lines += [f"| {r['key']} | {r['model']} | {r['seed']} | {r['status']} | {r['wall_s']:.0f} |" for r in rows]
    from evaluation.report import _atomic_write

    _atomic_write(out / "stages.md", "\n".join(lines) + "\n")


def plot_learning_curves(matrix: Matrix, out: Path) -> Path | None:
    """Validation accuracy, reward, SAM's masking and step accuracy against step, per RL method
    (mean over seeds with a min-max band)."""
    from evaluation.curves import plot_seed_bands

    runs: dict[str, list[Path]] = {}
    for stage in matrix.stages.values():
        log = matrix.work / stage.key / "metrics.jsonl"
        if stage.kind == "rl" and log.exists():  # a run of another amount of data is its own curve
            runs.setdefault(stage.row, []).append(log)
    if not runs:
        return None
    path = out / "learning_curves.png"
    plot_seed_bands(dict(sorted(runs.items(), key=lambda kv: (kv[0] not in MAIN_RL, kv[0]))), path,
                    title=f"RL methods: {matrix.preset.note}" if matrix.preset.note else "RL methods")
    return path


def default_preset() -> str:
    from verl_backend.overrides import detect_machine

    return "cpu" if detect_machine() == "cpu" else "smollm2"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m recipes.tables", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=default_preset(), choices=sorted(PRESETS),
                    help="default: cpu on a machine without a GPU, smollm2 with one")
    ap.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the preset's)")
    ap.add_argument("--model", default=None, help="base model (required by the full preset)")
    ap.add_argument("--out", default=None, help="results folder (default: results/<preset>, and "
                                                "results/<preset>-data-efficiency for that table alone)")
    ap.add_argument("--work", default=None, help="run folders (default: runs/tables-<preset>)")
    ap.add_argument("--tables", default=",".join(DEFAULT_TABLES),
                    help="comma-separated tables to make (main, ablation, distillation, data_efficiency; default: "
                         "the first three): a stage runs only if its model has a row in one of them or a later "
                         "stage needs it")
    ap.add_argument("--dry-run", action="store_true", help="print the stages and commands, run nothing")
    args = ap.parse_args(argv)

    preset = PRESETS[args.preset]
    base_model = args.model or preset.base_model
    if not base_model:
        ap.error(f"the {args.preset} preset needs --model (a local model folder)")
    seeds = list(range(args.seeds if args.seeds is not None else preset.seeds))
    if not seeds:
        ap.error("--seeds must be at least 1")
    work = Path(args.work or REPO / "runs" / f"tables-{args.preset}").resolve()
    tables = {t.strip() for t in args.tables.split(",") if t.strip()}
    if not tables or tables - {*DEFAULT_TABLES, DATA_EFFICIENCY}:
        ap.error(f"--tables: choose from {', '.join((*DEFAULT_TABLES, DATA_EFFICIENCY))}; got {args.tables!r}")
    if DATA_EFFICIENCY in tables and not (preset.data_amounts or preset.rl_data_amounts):
        ap.error(f"the {args.preset} preset has no data-efficiency amounts (Preset.data_amounts)")
    # the data-efficiency table alone is a command of its own: its results sit beside the others
    suffix = "-data-efficiency" if tables == {DATA_EFFICIENCY} else ""
    out = Path(args.out or REPO / "results" / f"{args.preset}{suffix}").resolve()
    work.mkdir(parents=True, exist_ok=True)
    data = ensure_data(preset)
    matrix = Matrix(preset, seeds, work, data, base_model)
    matrix.keep_tables(tables)

    if args.dry_run:
        for stage in matrix.stages.values():
            cmd = matrix.command(stage)
            print(f"{stage.key:28s} " + (shlex.join(cmd) if cmd else f"model_zoo {stage.zoo}"))
        return 0

    from tqdm import tqdm

    from evaluation.tables import write_results

    # The tables grow in the work folder while stages run and reach `out` only when the run ends, so a
    # half-finished run can never be committed as a result by accident.
    live = work / f"live{suffix}"
    live.mkdir(parents=True, exist_ok=True)
    header = {"preset": args.preset, "seeds": len(seeds), "tables": ", ".join(sorted(tables)), "commit": git_commit(),
              "command": "python -m recipes.tables " + shlex.join(argv if argv is not None else sys.argv[1:]),
              "started": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              **{f"machine.{k}": v for k, v in machine_facts().items()}, "note": preset.note}
    started = time.perf_counter()
    print(f"tables so far: {live / 'README.md'} (results go to {out} when the run ends)")
    records, times, failed, eval_failed = [], [], set(), set()
    bar = tqdm(matrix.stages.values(), desc="tables", unit="stage")
    for stage in bar:
        bar.set_postfix_str(stage.key)
        if any(d in failed for d in stage.deps):
            failed.add(stage.key)
            times.append({"key": stage.key, "model": stage.model, "seed": stage.seed,
                          "status": "skipped (an input failed)", "wall_s": 0.0})
            continue
        reused = (work / stage.key / "done.json").exists()
        ok, wall = run_stage(matrix, stage, tqdm.write)
        status = ("done in an earlier run" if reused else "done") if ok else "failed"
        if ok and not stage.evaluate:
            status += ", not evaluated (the preset's choice)"
        elif ok:
            eval_start = time.perf_counter()
            cached = all((work / "eval" / stage.key / split / "metrics.json").exists() for split in SPLITS)
            try:
                records += [r for r in records_for(stage, evaluate_stage(matrix, stage)) if r["table"] in tables]
                status += ", evaluated in an earlier run" if cached else \
                    f", evaluated in {time.perf_counter() - eval_start:.0f} s"
            except Exception as exc:  # the model stays usable by later stages; its rows are missing
                status = f"trained; evaluation failed: {type(exc).__name__}: {exc}"
                eval_failed.add(stage.key)
        else:
            failed.add(stage.key)
        times.append({"key": stage.key, "model": stage.model, "seed": stage.seed, "status": status, "wall_s": wall})
        header.update({"status": f"in progress: {len(times)} of {len(matrix.stages)} stages",
                       "wall_s": round(time.perf_counter() - started)})
        if records:
            intervals = intervals_markdown(interval_rows(matrix))
            write_results(records, live, header, intervals=intervals)
        if stage.kind == "rl":
            plot_learning_curves(matrix, live)
        write_stage_times(live, times)
        tqdm.write(f"{stage.key}: {status} ({wall:.0f} s)")

    problems = ([f"failed stages: {sorted(failed)}"] if failed else []) + \
        ([f"failed evaluations: {sorted(eval_failed)}"] if eval_failed else [])
    header.update({"status": "complete" if not problems else "finished with " + "; ".join(problems),
                   "finished": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                   "wall_s": round(time.perf_counter() - started)})
    out.mkdir(parents=True, exist_ok=True)
    plot_learning_curves(matrix, out)
    write_stage_times(out, times)
    if records:  # the intervals of the last stage's write: the evaluations have not changed since
        write_results(records, out, header, intervals=intervals)
    print(f"results: {out / 'README.md'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
