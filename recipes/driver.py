"""The process that drives one launch: it prepares the run, then runs verl's `main_ppo` in itself.

    python -m recipes.driver <the options of recipes.launch> --out DIR

`python -m recipes.launch` starts it and stays small (it streams the log, then writes the
summary). Preparing composes verl's config, so it imports verl (about 4 s of CPU and 0.5 GB);
running verl's own driver here, instead of in one more `python -m verl.trainer.main_ppo`,
pays for that once. The run folder's `command.sh` holds the equivalent `main_ppo` command, and
`launch_plan.json` what the launcher needs after the run (model, metrics log, validation rows).
"""

from __future__ import annotations

import os
import sys
import time


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    from recipes import launch
    from verl_backend.overrides import backend_env, detect_machine

    args = launch.parse_args(argv)
    if args.dry_run or args.out is None:
        print("error: recipes.driver runs one launch: --out DIR, no --dry-run (use recipes.launch)", file=sys.stderr)
        return 2
    args.machine = detect_machine() if args.machine == "auto" else args.machine
    # verl reads the platform when it is imported, and preparing imports it: the environment first
    # (the plan's env_add is the same, for the launcher's later commands).
    os.environ.update(backend_env(args.machine))
    try:
        plan = launch.prepare(args)
    except launch.LaunchRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    plan.prepare_s = round(time.perf_counter() - started, 1)
    # verl's file logger writes here; Ray's workers inherit this process's environment.
    os.environ["VERL_FILE_LOGGER_PATH"] = str(plan.metrics_log)
    plan.save(plan.out / launch.PLAN_FILE)
    sys.stdout.flush()

    from verl.trainer import main_ppo

    sys.argv = [main_ppo.__file__, *plan.main_ppo_args]
    main_ppo.main()  # Hydra reads sys.argv; a failure exits non-zero from inside
    return 0


if __name__ == "__main__":
    sys.exit(main())
