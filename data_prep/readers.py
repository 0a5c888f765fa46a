"""Stream rows from JSONL, CSV or parquet without loading the file into memory.

Each reader yields ``(row_number, row_or_error)``: a dict for a readable row,
or a `Rejection` for a row that cannot even be decoded (bad UTF-8, broken JSON),
so the caller records it instead of losing it. Errors that make the whole file
unusable raise `InputError` with one clear line.
"""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path
from typing import Iterator

from data_prep.records import Rejection

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
           ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}


class InputError(ValueError):
    """The input file as a whole cannot be read."""


def detect_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown file type {path.suffix!r}; expected one of {sorted(FORMATS)}")
    return fmt


def input_size(path: Path) -> int:
    """Size used for the progress bar: bytes for text files, rows for parquet."""
    if detect_format(path) == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return os.path.getsize(path)


def read_jsonl(path: Path, progress=None) -> Iterator[tuple[int, dict | Rejection]]:
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            if progress is not None:
                progress(len(line))
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, Rejection("bad_encoding", f"line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start})")
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, Rejection("bad_type", f"line {number}: not valid JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                yield number, Rejection("bad_type", f"line {number}: expected a JSON object, got {type(row).__name__}")
                continue
            yield number, row


def read_csv(path: Path, delimiter: str = ",", progress=None) -> Iterator[tuple[int, dict | Rejection]]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # surrogateescape keeps undecodable bytes visible so the row is rejected, not mangled.
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        if reader.fieldnames is None:
            raise InputError(f"{path}: empty file (no header row)")
        last = 0
        for number, row in enumerate(reader, start=1):
            if progress is not None:
                pos = fh.buffer.tell() if hasattr(fh, "buffer") else 0
                progress(max(0, pos - last))
                last = pos
            if None in row:  # more cells than header columns
                yield number, Rejection("bad_type", f"row {number}: {len(row[None])} cells more than the header")
                continue
            yield number, {k: (None if v == "" else v) for k, v in row.items()}


def read_parquet(path: Path, batch_size: int = 8192, progress=None) -> Iterator[tuple[int, dict | Rejection]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None
    number = 0
    for batch in pf.iter_batches(batch_size=batch_size):
        rows = batch.to_pylist()
        if progress is not None:
            progress(len(rows))
        for row in rows:
            number += 1
            yield number, row


def read_rows(path: str | Path, progress=None) -> Iterator[tuple[int, dict | Rejection]]:
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    fmt = detect_format(path)
    if fmt == "jsonl":
        return read_jsonl(path, progress)
    if fmt in ("csv", "tsv"):
        return read_csv(path, "\t" if fmt == "tsv" else ",", progress)
    return read_parquet(path, progress=progress)
