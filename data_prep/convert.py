"""`python -m data_prep convert`: query-note pairs (JSONL/CSV/parquet) -> verl parquet."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from data_prep.criteria import DEFAULT_CRITERIA, CriteriaError
from data_prep.readers import InputError, detect_format, input_size, read_rows
from data_prep.records import DEFAULT_DATA_SOURCE, Limits
from data_prep.writer import DatasetWriter


def add_convert_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="JSONL, CSV/TSV or parquet file of query-note pairs")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--criteria", default=DEFAULT_CRITERIA,
                        help="built-in criteria name or path to a criteria YAML (default: %(default)s)")
    parser.add_argument("--lang", default="en", choices=("en", "zh"), help="prompt language")
    parser.add_argument("--split", default="train",
                        help="split for rows without a 'split' field (default: %(default)s)")
    parser.add_argument("--data-source", default=DEFAULT_DATA_SOURCE)
    parser.add_argument("--max-query-chars", type=int, default=Limits.max_query_chars)
    parser.add_argument("--max-note-chars", type=int, default=Limits.max_note_chars)
    parser.add_argument("--unlabelled", action="store_true",
                        help="accept rows without a label (an unlabelled pool for distillation)")
    parser.add_argument("--no-progress", action="store_true")


def convert_file(input_path, out_dir, criteria=DEFAULT_CRITERIA, lang="en", split="train",
                 data_source=DEFAULT_DATA_SOURCE, limits: Limits | None = None,
                 unlabelled: bool = False, progress: bool = True) -> dict:
    input_path = Path(input_path)
    detect_format(input_path)
    if not input_path.exists():
        raise InputError(f"{input_path}: no such file")
    writer = DatasetWriter(out_dir, criteria=criteria, lang=lang, limits=limits,
                           data_source=data_source, require_label=not unlabelled)
    unit = "rows" if detect_format(input_path) == "parquet" else "B"
    bar = tqdm(total=input_size(input_path), unit=unit, unit_scale=True, disable=not progress,
               desc=f"convert {input_path.name}", mininterval=0.5)
    try:
        for number, row in read_rows(input_path, progress=bar.update):
            writer.add(row, number, split=split)
    finally:
        bar.close()
        summary = writer.close()
    return summary


def run_convert_cli(args: argparse.Namespace) -> int:
    try:
        summary = convert_file(
            args.input, args.out, criteria=args.criteria, lang=args.lang, split=args.split,
            data_source=args.data_source,
            limits=Limits(max_query_chars=args.max_query_chars, max_note_chars=args.max_note_chars),
            unlabelled=args.unlabelled, progress=not args.no_progress,
        )
    except (InputError, CriteriaError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {summary['rows_written']} rows, rejected {summary['rows_rejected']} "
          f"({summary['rejected_by_reason']}) -> {args.out}")
    for split, counts in summary["labels_per_split"].items():
        print(f"  {split}: {counts}")
    print(f"  {summary['rows_per_s']:.0f} rows/s ({summary['seconds']:.1f} s)")
    return 0
