"""Command line: `python -m data_prep {convert,benchmark}`."""

from __future__ import annotations

import argparse
import sys

from data_prep import benchmark, convert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    convert.add_convert_args(sub.add_parser("convert", help="convert query-note pairs to verl parquet"))
    benchmark.add_benchmark_args(sub.add_parser("benchmark", help="generate the offline relevance benchmark"))
    args = parser.parse_args(argv)
    if args.command == "convert":
        return convert.run_convert_cli(args)
    return benchmark.run_benchmark_cli(args)


if __name__ == "__main__":
    sys.exit(main())
