"""Stream rows from JSONL, CSV or parquet without loading the file into memory.

Each reader yields ``(row_number, row_or_error)``: a dict for a readable row,
or a `Rejection` for a row that cannot even be decoded (bad UTF-8, broken JSON),
so the caller records it instead of losing it. Row numbers are line numbers for
JSONL (blank lines are skipped but counted), data-row numbers for CSV/TSV (the
header is row 0) and row positions (from 1) for parquet.

Errors that make the whole file unusable (no such file, a directory, an unknown
extension, a corrupt parquet file, a CSV/parquet file without the required
columns) raise `InputError` with one clear line, before any row is read.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from data_prep.records import REQUIRED_FIELDS, Rejection

try:  # 3-4x faster than json on our rows; any line it refuses goes through json
    import orjson
except ImportError:  # pragma: no cover - orjson comes with verl's dependencies
    orjson = None

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv",
           ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet"}
_PROGRESS_EVERY = 8192  # rows between progress callbacks

Progress = Callable[[int], object] | None


class InputError(ValueError):
    """The input file as a whole cannot be read."""


def detect_format(path: Path) -> str:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InputError(f"{path}: unknown file type {path.suffix!r}; expected one of {sorted(FORMATS)}")
    return fmt


# -- JSONL ------------------------------------------------------------------------


def _fast_loads(line: bytes):
    return json.loads(line.decode("utf-8"))


_LOADS = orjson.loads if orjson is not None else _fast_loads


def _slow_json(line: bytes, number: int):
    """A line the fast parser refused: blank (None), a Rejection, or what json makes of it
    (NaN, a lone-surrogate escape and huge integers are valid for json, not for orjson)."""
    if number == 1 and line.startswith(codecs.BOM_UTF8):
        line = line[len(codecs.BOM_UTF8):]
    if not line.strip():
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return Rejection("bad_encoding", f"line {number}: not valid UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Rejection("bad_type", f"line {number}: not valid JSON ({getattr(exc, 'msg', exc)})")


def _jsonl_rows(path: Path, progress: Progress) -> Iterator[tuple[int, dict | Rejection]]:
    loads = _LOADS
    last = 0
    with _open_binary(path) as fh:
        for number, line in enumerate(fh, start=1):
            if progress is not None and not number % _PROGRESS_EVERY:
                pos = fh.tell()
                progress(pos - last)
                last = pos
            try:
                row = loads(line)
                # orjson reads integers past 64 bits as floats: json keeps an id or label exact
                if type(row) is dict and (type(row.get("id")) is float or type(row.get("label")) is float):
                    row = _slow_json(line, number)
            except (ValueError, RecursionError):
                row = _slow_json(line, number)
                if row is None:
                    continue
            if type(row) is not dict:
                if type(row) is not Rejection:
                    row = Rejection("bad_type", f"line {number}: expected a JSON object, "
                                                f"got {type(row).__name__}")
            yield number, row
        if progress is not None:
            progress(fh.tell() - last)


def read_jsonl(path: Path, progress: Progress = None) -> Iterator[tuple[int, dict | Rejection]]:
    return _jsonl_rows(Path(path), progress)


# -- CSV / TSV --------------------------------------------------------------------


def _csv_rows(path: Path, delimiter: str, required: tuple[str, ...],
              progress: Progress) -> Iterator[tuple[int, dict | Rejection]]:
    number = 0
    last = 0
    fh, reader = _open_csv(path, delimiter, required)
    rows = iter(reader)
    with fh:
        while True:
            try:
                row = next(rows)
            except StopIteration:
                break
            except csv.Error as exc:
                number += 1
                yield number, Rejection("bad_type", f"row {number}: not readable as CSV ({exc})")
                continue
            number += 1
            if progress is not None and not number % _PROGRESS_EVERY:
                pos = fh.buffer.tell()
                progress(pos - last)
                last = pos
            if None in row:  # more cells than header columns
                yield number, Rejection("bad_type", f"row {number}: {len(row[None])} cells more than the header",
                                        row.get("id"))
                continue
            yield number, {k: (None if v == "" else v) for k, v in row.items()}
        if progress is not None:
            progress(os.path.getsize(fh.name) - last)


def _open_csv(path: Path, delimiter: str, required: tuple[str, ...]):
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    # surrogateescape keeps undecodable bytes visible so the row is rejected, not mangled;
    # utf-8-sig drops a byte-order mark before the header.
    fh = open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")
    reader = csv.DictReader(fh, delimiter=delimiter)
    try:
        names = reader.fieldnames
    except csv.Error as exc:
        fh.close()
        raise InputError(f"{path}: not readable as CSV ({exc})") from None
    if not names:
        fh.close()
        raise InputError(f"{path}: empty file (no header row)")
    reader.fieldnames = names = [n.strip() for n in names]
    seen: dict[str, int] = {}
    for column, name in enumerate(names, start=1):
        if name in seen:  # DictReader would keep only the last column's values
            fh.close()
            raise InputError(f"{path}: the header names column {name!r} twice (columns {seen[name]} "
                             f"and {column}); rename or remove one")
        seen[name] = column
    missing = [n for n in required if n not in names]
    if missing:
        fh.close()
        shown = ", ".join(repr(n) for n in names[:6]) + (", ..." if len(names) > 6 else "")
        raise InputError(f"{path}: the header row ({shown}) lacks the column(s) {', '.join(missing)}; "
                         f"the first row must name the columns")
    return fh, reader


def read_csv(path: Path, delimiter: str = ",", progress: Progress = None,
             required: tuple[str, ...] = REQUIRED_FIELDS) -> Iterator[tuple[int, dict | Rejection]]:
    path = Path(path)
    _open_csv(path, delimiter, required)[0].close()  # header errors now, not at the first row
    return _csv_rows(path, delimiter, required, progress)


# -- parquet ----------------------------------------------------------------------


def _batch_rows(batch, start: int) -> list[dict | Rejection]:
    try:
        return batch.to_pylist()
    except UnicodeDecodeError:  # a string column with bytes that are not UTF-8: find the rows
        out: list[dict | Rejection] = []
        for i in range(batch.num_rows):
            try:
                out.append(batch.slice(i, 1).to_pylist()[0])
            except UnicodeDecodeError as exc:
                out.append(Rejection("bad_encoding", f"row {start + i + 1}: text that is not valid "
                                                     f"UTF-8 ({exc.reason} at byte {exc.start})"))
        return out


def _parquet_rows(pf, path: Path, progress: Progress, batch_size: int):
    import pyarrow as pa

    number = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_size):
            rows = _batch_rows(batch, number)
            if progress is not None:
                progress(len(rows))
            for row in rows:
                number += 1
                yield number, row
    except (OSError, pa.ArrowException) as exc:
        reason = " ".join(str(exc).split())  # pyarrow's message spans lines
        raise InputError(f"{path}: corrupt parquet data after row {number} ({reason})") from None


def _open_parquet(path: Path, required: tuple[str, ...]):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a corrupt file
        raise InputError(f"{path}: not a readable parquet file ({exc})") from None
    names = pf.schema_arrow.names
    missing = [n for n in required if n not in names]
    if missing:
        raise InputError(f"{path}: no column(s) {', '.join(missing)} (columns: {', '.join(names[:8])})")
    return pf


def read_parquet(path: Path, batch_size: int = 8192, progress: Progress = None,
                 required: tuple[str, ...] = REQUIRED_FIELDS) -> Iterator[tuple[int, dict | Rejection]]:
    path = Path(path)
    return _parquet_rows(_open_parquet(path, required), path, progress, batch_size)


# -- any format -------------------------------------------------------------------


_JSONL_PEEK = 1 << 16  # bytes read to tell JSON Lines from a JSON document


def _check_jsonl_shape(path: Path) -> None:
    """A JSON array or a pretty-printed object is not JSON Lines: say so instead of
    rejecting the whole file as one or many broken rows."""
    with _open_binary(path) as fh:
        head = fh.read(_JSONL_PEEK)
    if not head:
        raise InputError(f"{path}: empty file (no rows)")
    first = head.removeprefix(codecs.BOM_UTF8).lstrip()
    line = first.split(b"\n", 1)[0].strip()
    if first.startswith(b"["):
        raise InputError(f"{path}: a JSON array; convert reads JSON Lines, one object per line "
                         f"(e.g. jq -c '.[]' {path.name} > {path.stem}.jsonl)")
    if line == b"{":
        raise InputError(f"{path}: a pretty-printed JSON object; convert reads JSON Lines, "
                         f"one object per line (e.g. jq -c . {path.name} > {path.stem}.jsonl)")


def _check_path(path: Path) -> str:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, expected a file")
    return detect_format(path)


def _open_binary(path: Path):
    try:
        return open(path, "rb")
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


@dataclass
class InputFile:
    """An input checked as a whole: `rows()` opens it and streams the rows."""

    path: Path
    format: str
    size: int  # for a progress bar: bytes (text formats) or rows (parquet)
    unit: str
    _rows: Callable[[Progress], Iterator[tuple[int, dict | Rejection]]]

    def rows(self, progress: Progress = None) -> Iterator[tuple[int, dict | Rejection]]:
        return self._rows(progress)


def open_input(path: str | Path, required: tuple[str, ...] = REQUIRED_FIELDS) -> InputFile:
    """Check the whole file (it exists, its type, header or schema) before any row is read."""
    path = Path(path)
    fmt = _check_path(path)
    try:
        if fmt == "parquet":
            pf = _open_parquet(path, required)
            return InputFile(path, fmt, pf.metadata.num_rows, "rows",
                             lambda progress: _parquet_rows(pf, path, progress, 8192))
        size = os.path.getsize(path)
        if fmt == "jsonl":
            _check_jsonl_shape(path)  # readable, and lines of JSON
            return InputFile(path, fmt, size, "B", lambda progress: _jsonl_rows(path, progress))
        delimiter = "\t" if fmt == "tsv" else ","
        _open_csv(path, delimiter, required)[0].close()  # readable, with the required columns
        return InputFile(path, fmt, size, "B",
                         lambda progress: _csv_rows(path, delimiter, required, progress))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or exc})") from None


def input_size(path: Path) -> int:
    """Size used for the progress bar: bytes for text files, rows for parquet."""
    return open_input(path).size


def read_rows(path: str | Path, progress: Progress = None) -> Iterator[tuple[int, dict | Rejection]]:
    return open_input(path).rows(progress)
