"""python -m model_zoo tiny|smollm2|PATH [--out DIR]: print the model's folder.

Only the path goes to stdout, so scripts can use MODEL=$(python -m model_zoo tiny).
"""

from __future__ import annotations

import argparse
import sys

from model_zoo import ModelZooError, builtin_models, resolve_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model_zoo",
        description="Build or convert a built-in model once (offline) and print its folder; "
                    "an existing path is printed as is.",
    )
    parser.add_argument("model", help=f"{' | '.join(builtin_models())} | PATH")
    parser.add_argument("--out", help="build a built-in model into this folder instead of the cache")
    args = parser.parse_args(argv)
    try:
        path = resolve_model(args.model, out=args.out)
    except (ModelZooError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
