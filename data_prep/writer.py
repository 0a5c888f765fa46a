"""Write validated rows as verl parquet, streaming, with rejects and a summary.

Output folder layout:
    <split>.parquet        verl RL data (one file per split)
    sft_<split>.parquet    `messages` for verl's SFT trainer (rows with a reasoning trace)
    rejected.jsonl         every refused row: row number, id, reason code, detail
    summary.json           counts per split and label, rejects per reason, rows/s, the input

Every file is written under a temporary name (``.<name>.tmp-<pid>``) and renamed
when the whole input has been read; `summary.json` comes last, so a folder with
a summary holds one complete run. A run that fails (`abort`) removes its
temporary files and leaves an earlier complete output as it was.

Rows are written in chunks (one parquet row group each), so a million-row input
never sits in memory. A chunk is kept as columns, not as per-row records: the
constant parts (system message, data source, criteria name, ...) are stored
once per chunk and the arrow arrays are built column by column.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from data_prep.criteria import Criteria, load_criteria
from data_prep.records import ABILITY, Limits, RecordBuilder, Rejection, check_split_name

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_MESSAGES = pa.list_(_MESSAGE)
_EXTRA = pa.struct([
    ("split", pa.string()), ("index", pa.int64()), ("id", pa.string()),
    ("criteria", pa.string()), ("criteria_version", pa.int64()), ("criteria_digest", pa.string()),
    ("lang", pa.string()), ("step_gold", pa.string()), ("query", pa.string()), ("title", pa.string()),
])
_REWARD = pa.struct([("style", pa.string()), ("ground_truth", pa.string())])
RL_SCHEMA = pa.schema([
    ("data_source", pa.string()),
    ("prompt", _MESSAGES),
    ("ability", pa.string()),
    ("reward_model", _REWARD),
    ("extra_info", _EXTRA),
])
SFT_SCHEMA = pa.schema([("messages", _MESSAGES), ("extra_info", _EXTRA)])
UNLABELLED = "unlabelled"  # the label count key of rows without a label
SUMMARY, REJECTED = "summary.json", "rejected.jsonl"


class OutputError(ValueError):
    """The output folder cannot take this run (it would destroy an input or another run's output)."""


def is_output_name(name: str) -> bool:
    """A file name the writer may create, replace or remove in its folder."""
    return name in (SUMMARY, REJECTED) or name.endswith(".parquet")


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}")


def _json_line(entry: Mapping[str, Any]) -> str:
    """Strict JSON (a NaN or infinite id would make the line unreadable): such values as text."""
    try:
        return json.dumps(entry, ensure_ascii=False, default=str, allow_nan=False)
    except ValueError:  # only the id comes from the row as it was read
        return json.dumps({**entry, "id": repr(entry["id"])}, ensure_ascii=False)


_LINE_BREAKS = str.maketrans({"\x85": "\\u0085", "\u2028": "\\u2028", "\u2029": "\\u2029"})


def _const(value: str, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, pa.string()), n)


def _strings(values: list) -> pa.Array:
    return pa.array(values, pa.string())


def _messages(turns: list[list[str]], roles: tuple[str, ...]) -> pa.Array:
    """list<struct<role, content>> from one list of contents per turn (all rows have every turn)."""
    n, k = len(turns[0]), len(turns)
    if k == 1:
        content = turns[0]
    else:
        content = [None] * (n * k)  # interleave: row 0 turn 0, row 0 turn 1, ...
        for i, turn in enumerate(turns):
            content[i::k] = turn
    values = pa.StructArray.from_arrays(
        [_strings(list(roles) * n), _strings(content)], fields=list(_MESSAGE))
    offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values, type=_MESSAGES)


def rejected_line(row_number: int, rejection: Rejection, raw: Mapping[str, Any] | None = None) -> str:
    """One line of rejected.jsonl: row number, id, reason code, detail."""
    row_id = raw.get("id") if isinstance(raw, Mapping) else rejection.row_id
    entry = {"row": row_number, "id": row_id, "reason": rejection.reason, "detail": rejection.detail}
    text = _json_line(entry)
    if not text.isascii():  # characters some readers take for line breaks stay escaped
        text = text.translate(_LINE_BREAKS)
    return text + "\n"


class _SplitFile:
    """One output parquet file, buffered as columns and flushed as one row group per chunk."""

    def __init__(self, path: Path, schema: pa.Schema, chunk_rows: int, split: str,
                 builder: RecordBuilder, data_source: str, sft: bool):
        self.path, self.schema, self.chunk_rows, self.split = path, schema, chunk_rows, split
        self.temp = _temp_name(path)
        self.builder, self.data_source, self.sft = builder, data_source, sft
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0  # rows flushed
        self.labels: Counter = Counter()
        self._clear()

    def _clear(self) -> None:
        self.users: list[str] = []
        self.responses: list[str] = []
        self.index: list[int] = []
        self.ids: list[str] = []
        self.truths: list[str] = []
        self.golds: list[str] = []
        self.queries: list[str] = []
        self.titles: list[str] = []

    def __len__(self) -> int:
        return self.rows + len(self.ids)

    def add(self, row: Mapping[str, Any], user: str, index: int, response: str | None = None) -> None:
        self.users.append(user)
        if response is not None:
            self.responses.append(response)
        self.index.append(index)
        self.ids.append(row["id"])
        label = row["label"]
        self.truths.append("" if label is None else str(label))
        self.golds.append(row["step_gold"])
        self.queries.append(row["query"])
        self.titles.append(row["title"])
        if len(self.ids) >= self.chunk_rows:
            self.flush()

    def _extra(self, n: int) -> pa.Array:
        b = self.builder
        return pa.StructArray.from_arrays(
            [_const(self.split, n), pa.array(np.asarray(self.index, dtype=np.int64)),
             _strings(self.ids), _const(b.identity["criteria"], n),
             pa.array(np.full(n, b.identity["criteria_version"], dtype=np.int64)),
             _const(b.identity["criteria_digest"], n), _const(b.lang, n),
             _strings(self.golds), _strings(self.queries), _strings(self.titles)],
            fields=list(_EXTRA))

    def flush(self) -> None:
        n = len(self.ids)
        if not n:
            return
        system = self.builder.renderer.system
        turns, roles = ([[system] * n, self.users], ("system", "user")) if system \
            else ([self.users], ("user",))
        if self.sft:
            columns = [_messages(turns + [self.responses], roles + ("assistant",)), self._extra(n)]
        else:
            columns = [
                _const(self.data_source, n),
                _messages(turns, roles),
                _const(ABILITY, n),
                pa.StructArray.from_arrays([_const("rule", n), _strings(self.truths)], fields=list(_REWARD)),
                self._extra(n),
            ]
            self.labels.update(self.truths)
        table = pa.Table.from_arrays(columns, schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.temp, self.schema)
        self.writer.write_table(table)
        self.rows += n
        self._clear()

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()

    def discard(self) -> None:
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # the run is failing already; the temp file goes either way
                pass
        self.temp.unlink(missing_ok=True)


class DatasetWriter:
    """Validates raw rows and streams them into per-split parquet files."""

    def __init__(
        self,
        out_dir: str | Path,
        criteria: Criteria | str | None = None,
        lang: str = "en",
        limits: Limits | None = None,
        data_source: str | None = None,
        chunk_rows: int = 10_000,
        require_label: bool = True,
        source: str | Path | None = None,
        overwrite: bool = False,
    ):
        """``source`` is the input file (never written, replaced or removed; recorded in the
        summary); an earlier output of another input is replaced only with ``overwrite``."""
        self.crit = load_criteria(criteria)
        kwargs = {} if data_source is None else {"data_source": data_source}
        self.builder = RecordBuilder(self.crit, lang=lang, limits=limits, require_label=require_label, **kwargs)
        self.out_dir = Path(out_dir)
        self.source = Path(source).resolve() if source is not None else None
        self._check_source_is_not_an_output()
        self._previous = self._previous_outputs(overwrite)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.chunk_rows = chunk_rows
        self._rl: dict[str, _SplitFile] = {}
        self._sft: dict[str, _SplitFile] = {}
        # backslashreplace: an id with undecodable bytes is written escaped, never lost.
        self._rejected_path = self.out_dir / REJECTED
        self._rejected = open(_temp_name(self._rejected_path), "w", encoding="utf-8",
                              errors="backslashreplace")
        self.reject_counts: Counter = Counter()
        self.rows_in = 0
        self._start = time.perf_counter()

    def _check_source_is_not_an_output(self) -> None:
        src = self.source
        if src is not None and src.parent == self.out_dir.resolve() and is_output_name(src.name):
            raise OutputError(f"{src}: the input lies in the output folder under a name the converter "
                              f"writes ({src.name}); move it or choose another --out")

    def _previous_outputs(self, overwrite: bool) -> list[Path]:
        """The files of an earlier run into the folder (replaced when this run completes)."""
        try:
            previous = json.loads((self.out_dir / SUMMARY).read_text(encoding="utf-8"))
            names = [f"{s}.parquet" for s in previous.get("splits", {})] + \
                    [f"sft_{s}.parquet" for s in previous.get("sft_splits", {})]
        except (OSError, ValueError, AttributeError):
            return []
        earlier = previous.get("input")
        mine = str(self.source) if self.source is not None else None
        if earlier != mine and not overwrite:
            raise OutputError(f"{self.out_dir}: holds the output of another input ({earlier or 'the benchmark'}, "
                              f"see {SUMMARY}); choose another --out, or pass --overwrite to replace it")
        return [self.out_dir / n for n in names if "/" not in n and "\\" not in n]

    def _split_file(self, split: str, sft: bool = False) -> _SplitFile:
        table = self._sft if sft else self._rl
        out = table.get(split)
        if out is None:
            check_split_name(split)  # a default split given by the caller; rows' splits are checked
            prefix, schema = ("sft_", SFT_SCHEMA) if sft else ("", RL_SCHEMA)
            out = table[split] = _SplitFile(self.out_dir / f"{prefix}{split}.parquet", schema,
                                            self.chunk_rows, split, self.builder,
                                            self.builder.data_source, sft)
        return out

    @property
    def label_counts(self) -> dict[str, Counter]:
        counts: dict[str, Counter] = defaultdict(Counter)
        for split, out in self._rl.items():
            pending = Counter(out.truths)
            for truth, n in (out.labels + pending).items():
                counts[split][truth or UNLABELLED] += n
        return counts

    def reject(self, row_number: int, rejection: Rejection, raw: Mapping[str, Any] | None = None) -> None:
        self.reject_counts[rejection.reason] += 1
        self._rejected.write(rejected_line(row_number, rejection, raw))

    def add(self, raw: Mapping[str, Any] | Rejection, row_number: int, split: str = "train") -> bool:
        """Validate and write one row; returns False when it was rejected."""
        self.rows_in += 1
        if type(raw) is Rejection:
            self.reject(row_number, raw)
            return False
        row = self.builder.validate(raw, row_number)
        if type(row) is Rejection:
            self.reject(row_number, row, raw)
            return False
        split = row["split"] or split
        out = self._rl.get(split) or self._split_file(split)
        user = self.builder.user_prompt(row)
        index = len(out)
        out.add(row, user, index)
        if row["reasoning"] is not None:
            (self._sft.get(split) or self._split_file(split, sft=True)).add(
                row, user, index, row["reasoning"])
        return True

    def _files(self) -> list[_SplitFile]:
        return [*self._rl.values(), *self._sft.values()]

    def abort(self) -> None:
        """A failed run: remove what it wrote; an earlier complete output stays as it was."""
        for out in self._files():
            out.discard()
        self._rejected.close()
        _temp_name(self._rejected_path).unlink(missing_ok=True)

    def close(self) -> dict:
        """Finish the files and put them in place; the summary (written last) describes them."""
        try:
            for out in self._files():
                out.close()
            self._rejected.close()
            summary = self._summary()
        except BaseException:
            self.abort()
            raise
        self._commit(summary)
        return summary

    def _summary(self) -> dict:
        elapsed = time.perf_counter() - self._start
        accepted = sum(out.rows for out in self._rl.values())
        summary = {
            **self.crit.identity,
            "criteria_name": self.crit.name,
            "lang": self.builder.lang,
            "input": str(self.source) if self.source is not None else None,
            "rows_in": self.rows_in,
            "rows_written": accepted,
            "rows_rejected": sum(self.reject_counts.values()),
            "rejected_by_reason": dict(sorted(self.reject_counts.items())),
            "splits": {s: out.rows for s, out in sorted(self._rl.items())},
            "sft_splits": {s: out.rows for s, out in sorted(self._sft.items())},
            "labels_per_split": {s: dict(sorted(c.items())) for s, c in sorted(self.label_counts.items())},
            "seconds": round(elapsed, 3),
            "rows_per_s": round(self.rows_in / elapsed, 1) if elapsed > 0 else None,
        }
        # Nothing may be lost: every input row is either written or rejected.
        assert summary["rows_written"] + summary["rows_rejected"] == self.rows_in, summary
        return summary

    def _commit(self, summary: dict) -> None:
        """Renames only (a name that is also the input's, through a link, loses the name, never
        the data): the earlier summary goes first, so the folder never looks complete with a
        mix of two runs' files, and the new one comes last."""
        (self.out_dir / SUMMARY).unlink(missing_ok=True)
        moves = [(_temp_name(self._rejected_path), self._rejected_path)] + \
                [(out.temp, out.path) for out in self._files()]
        for temp, final in moves:
            os.replace(temp, final)
        written = {final for _, final in moves}
        for stale in self._previous:
            if stale not in written:
                stale.unlink(missing_ok=True)
        summary_temp = _temp_name(self.out_dir / SUMMARY)
        summary_temp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
        os.replace(summary_temp, self.out_dir / SUMMARY)


def write_splits(
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    out_dir: str | Path,
    criteria: Criteria | str | None = None,
    lang: str = "en",
    **writer_kwargs,
) -> dict:
    """Write already-split rows (e.g. the generated benchmark) through the same writer.

    Rows of a split named ``pool`` may be unlabelled.
    """
    labelled = {k: v for k, v in splits.items() if k != "pool"}
    summaries = _write_all(DatasetWriter(out_dir, criteria=criteria, lang=lang, **writer_kwargs),
                           ((row, split) for split, rows in labelled.items() for row in rows))
    if "pool" in splits:
        pool_writer = DatasetWriter(Path(out_dir) / "pool", criteria=criteria, lang=lang, require_label=False,
                                    **writer_kwargs)
        summaries["pool"] = _write_all(pool_writer, (({**row, "label": None, "split": "pool"}, "pool")
                                                     for row in splits["pool"]))
    return summaries


def _write_all(writer: DatasetWriter, rows: Iterable[tuple[Mapping[str, Any], str]]) -> dict:
    try:
        for number, (row, split) in enumerate(rows, start=1):
            writer.add(row, number, split=split)
    except BaseException:
        writer.abort()
        raise
    return writer.close()
