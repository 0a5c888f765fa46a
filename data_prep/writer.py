"""Write validated rows as verl parquet, streaming, with rejects and a summary.

Output folder layout:
    <split>.parquet        verl RL data (one file per split)
    sft_<split>.parquet    `messages` for verl's SFT trainer (rows with a reasoning trace)
    rejected.jsonl         every refused row: row number, id, reason code, detail
    summary.json           counts per split and label, rejects per reason, rows/s

Rows are written in chunks (one parquet row group each), so a million-row input
never sits in memory. A chunk is kept as columns, not as per-row records: the
constant parts (system message, data source, criteria name, ...) are stored
once per chunk and the arrow arrays are built column by column.
"""

from __future__ import annotations

import json
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
    ("criteria", pa.string()), ("lang", pa.string()), ("step_gold", pa.string()),
    ("query", pa.string()), ("title", pa.string()),
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
    text = json.dumps(entry, ensure_ascii=False, default=str)
    if not text.isascii():  # characters some readers take for line breaks stay escaped
        text = text.translate(_LINE_BREAKS)
    return text + "\n"


class _SplitFile:
    """One output parquet file, buffered as columns and flushed as one row group per chunk."""

    def __init__(self, path: Path, schema: pa.Schema, chunk_rows: int, split: str,
                 builder: RecordBuilder, data_source: str, sft: bool):
        self.path, self.schema, self.chunk_rows, self.split = path, schema, chunk_rows, split
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
             _strings(self.ids), _const(b.criteria_ref, n), _const(b.lang, n),
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
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table)
        self.rows += n
        self._clear()

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()


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
    ):
        criteria_ref = str(criteria) if isinstance(criteria, (str, Path)) else None
        self.crit = load_criteria(criteria)
        kwargs = {} if data_source is None else {"data_source": data_source}
        self.builder = RecordBuilder(self.crit, lang=lang, limits=limits,
                                     criteria_ref=criteria_ref, require_label=require_label, **kwargs)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._remove_previous_outputs()
        self.chunk_rows = chunk_rows
        self._rl: dict[str, _SplitFile] = {}
        self._sft: dict[str, _SplitFile] = {}
        # backslashreplace: an id with undecodable bytes is written escaped, never lost.
        self._rejected = open(self.out_dir / "rejected.jsonl", "w", encoding="utf-8",
                              errors="backslashreplace")
        self.reject_counts: Counter = Counter()
        self.rows_in = 0
        self._start = time.perf_counter()

    def _remove_previous_outputs(self) -> None:
        """A re-run into the same folder must not leave split files of the last run behind."""
        summary = self.out_dir / "summary.json"
        try:
            previous = json.loads(summary.read_text(encoding="utf-8"))
            names = [f"{s}.parquet" for s in previous.get("splits", {})] + \
                    [f"sft_{s}.parquet" for s in previous.get("sft_splits", {})]
        except (OSError, ValueError, AttributeError):
            return
        for name in names:
            if "/" not in name and "\\" not in name:
                (self.out_dir / name).unlink(missing_ok=True)
        summary.unlink(missing_ok=True)

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

    def close(self) -> dict:
        for out in (*self._rl.values(), *self._sft.values()):
            out.close()
        self._rejected.close()
        elapsed = time.perf_counter() - self._start
        accepted = sum(out.rows for out in self._rl.values())
        summary = {
            "criteria": self.crit.name,
            "lang": self.builder.lang,
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
        (self.out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        return summary


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
    summaries = {}
    labelled = {k: v for k, v in splits.items() if k != "pool"}
    writer = DatasetWriter(out_dir, criteria=criteria, lang=lang, **writer_kwargs)
    number = 0
    for split, rows in labelled.items():
        for row in rows:
            number += 1
            writer.add(row, number, split=split)
    summaries = writer.close()
    if "pool" in splits:
        pool_dir = Path(out_dir) / "pool"
        pool_writer = DatasetWriter(pool_dir, criteria=criteria, lang=lang, require_label=False,
                                    **writer_kwargs)
        for i, row in enumerate(splits["pool"], start=1):
            pool_writer.add({**row, "label": None, "split": "pool"}, i, split="pool")
        summaries["pool"] = pool_writer.close()
    return summaries
