"""`python -m data_prep convert`: query-note pairs (JSONL/CSV/parquet) -> verl parquet."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from data_prep.criteria import DEFAULT_CRITERIA, CriteriaError
from data_prep.readers import InputError, open_input
from data_prep.records import DEFAULT_DATA_SOURCE, Limits, check_split_name
from data_prep.writer import DatasetWriter, OutputError
from evaluation.arguments import error_exit, positive_int


def _split_arg(value: str) -> str:
    try:
        return check_split_name(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_convert_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="JSONL, CSV/TSV or parquet file of query-note pairs")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--criteria", default=DEFAULT_CRITERIA,
                        help="built-in criteria name or path to a criteria YAML (default: %(default)s)")
    parser.add_argument("--lang", default="en", choices=("en", "zh"), help="prompt language")
    parser.add_argument("--split", default="train", type=_split_arg,
                        help="split for rows without a 'split' field (default: %(default)s)")
    parser.add_argument("--data-source", default=DEFAULT_DATA_SOURCE)
    parser.add_argument("--max-query-chars", type=positive_int, default=Limits.max_query_chars)
    parser.add_argument("--max-note-chars", type=positive_int, default=Limits.max_note_chars)
    parser.add_argument("--unlabelled", action="store_true",
                        help="accept rows without a label (an unlabelled pool for distillation)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier output of another input in --out")
    parser.add_argument("--no-progress", action="store_true")


def convert_file(input_path, out_dir, criteria=DEFAULT_CRITERIA, lang="en", split="train",
                 data_source=DEFAULT_DATA_SOURCE, limits: Limits | None = None,
                 unlabelled: bool = False, progress: bool = True, overwrite: bool = False) -> dict:
    """Convert one file; returns the summary (also written to ``out_dir/summary.json``).

    Raises `InputError` (the file as a whole is unusable, or holds no rows), `OutputError`
    (``out_dir`` would lose an input or another input's output) or `CriteriaError`. Bad
    rows never raise: they go to ``rejected.jsonl``. Whatever stops a run part-way (an
    error, Ctrl-C) leaves no new file in ``out_dir``.
    """
    source = open_input(input_path)
    writer = DatasetWriter(out_dir, criteria=criteria, lang=lang, limits=limits,
                           data_source=data_source, require_label=not unlabelled,
                           source=source.path, overwrite=overwrite)
    bar = tqdm(total=source.size, unit=source.unit, unit_scale=True, disable=not progress,
               desc=f"convert {source.path.name}", mininterval=0.5)
    add = writer.add
    try:
        for number, row in source.rows(bar.update if progress else None):
            add(row, number, split)
        if not writer.rows_in:
            raise InputError(f"{source.path}: no rows (only blank lines or a header)")
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    return writer.close()


def run_convert_cli(args: argparse.Namespace) -> int:
    try:
        summary = convert_file(
            args.input, args.out, criteria=args.criteria, lang=args.lang, split=args.split,
            data_source=args.data_source,
            limits=Limits(max_query_chars=args.max_query_chars, max_note_chars=args.max_note_chars),
            unlabelled=args.unlabelled, progress=not args.no_progress, overwrite=args.overwrite,
        )
    except (InputError, OutputError, CriteriaError, OSError) as exc:  # OSError: the output folder cannot be written
        return error_exit(exc, args.out)
    except KeyboardInterrupt:
        print(f"interrupted: nothing was written to {args.out}", file=sys.stderr)
        return 130
    print(f"wrote {summary['rows_written']} rows, rejected {summary['rows_rejected']} "
          f"({summary['rejected_by_reason']}) -> {args.out}")
    for split, counts in summary["labels_per_split"].items():
        print(f"  {split}: {counts}")
    print(f"  {summary['rows_per_s']:.0f} rows/s ({summary['seconds']:.1f} s)")
    return 0
