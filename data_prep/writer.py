"""Write validated rows as verl parquet, streaming, with rejects and a summary.

Output folder layout:
    <split>.parquet        verl RL data (one file per split)
    sft_<split>.parquet    `messages` for verl's SFT trainer (rows with a reasoning trace)
    rejected.jsonl         every refused row: row number, id, reason code, detail
    summary.json           counts per split and label, rejects per reason, rows/s

Rows are written in chunks so a million-row input never sits in memory twice.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Mapping

import pyarrow as pa
import pyarrow.parquet as pq

from data_prep.criteria import Criteria, load_criteria
from data_prep.records import Limits, RecordBuilder, Rejection

_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
_EXTRA = pa.struct([
    ("split", pa.string()), ("index", pa.int64()), ("id", pa.string()),
    ("criteria", pa.string()), ("lang", pa.string()), ("step_gold", pa.string()),
    ("query", pa.string()), ("title", pa.string()),
])
RL_SCHEMA = pa.schema([
    ("data_source", pa.string()),
    ("prompt", pa.list_(_MESSAGE)),
    ("ability", pa.string()),
    ("reward_model", pa.struct([("style", pa.string()), ("ground_truth", pa.string())])),
    ("extra_info", _EXTRA),
])
SFT_SCHEMA = pa.schema([("messages", pa.list_(_MESSAGE)), ("extra_info", _EXTRA)])


def _to_arrow(values: list, typ: pa.DataType) -> pa.Array:
    """Column-wise conversion for our nested schemas; much faster than from_pylist."""
    if pa.types.is_struct(typ):
        fields = [typ.field(i) for i in range(typ.num_fields)]
        children = [_to_arrow([v[f.name] for v in values], f.type) for f in fields]
        return pa.StructArray.from_arrays(children, fields=fields)
    if pa.types.is_list(typ):
        offsets = [0]
        flat: list = []
        for v in values:
            flat.extend(v)
            offsets.append(len(flat))
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), _to_arrow(flat, typ.value_type))
    return pa.array(values, typ)


class _ChunkedParquet:
    def __init__(self, path: Path, schema: pa.Schema, chunk_rows: int):
        self.path, self.schema, self.chunk_rows = path, schema, chunk_rows
        self.buffer: list[dict] = []
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def add(self, record: dict) -> None:
        self.buffer.append(record)
        if len(self.buffer) >= self.chunk_rows:
            self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        table = pa.Table.from_arrays(
            [_to_arrow([r[f.name] for r in self.buffer], f.type) for f in self.schema],
            schema=self.schema)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.path, self.schema)
        self.writer.write_table(table)
        self.rows += len(self.buffer)
        self.buffer = []

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
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        criteria_ref = str(criteria) if isinstance(criteria, (str, Path)) else None
        self.crit = load_criteria(criteria)
        kwargs = {} if data_source is None else {"data_source": data_source}
        self.builder = RecordBuilder(self.crit, lang=lang, limits=limits,
                                     criteria_ref=criteria_ref, require_label=require_label, **kwargs)
        self.chunk_rows = chunk_rows
        self._rl: dict[str, _ChunkedParquet] = {}
        self._sft: dict[str, _ChunkedParquet] = {}
        self._rejected = open(self.out_dir / "rejected.jsonl", "w", encoding="utf-8")
        self.label_counts: dict[str, Counter] = defaultdict(Counter)
        self.reject_counts: Counter = Counter()
        self.rows_in = 0
        self._start = time.perf_counter()

    def _split_writer(self, table: dict, prefix: str, split: str, schema: pa.Schema) -> _ChunkedParquet:
        if split not in table:
            table[split] = _ChunkedParquet(self.out_dir / f"{prefix}{split}.parquet", schema, self.chunk_rows)
        return table[split]

    def reject(self, row_number: int, rejection: Rejection, raw: Mapping[str, Any] | None = None) -> None:
        self.reject_counts[rejection.reason] += 1
        entry = {"row": row_number, "id": None if raw is None else raw.get("id"),
                 "reason": rejection.reason, "detail": rejection.detail}
        self._rejected.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")

    def add(self, raw: Mapping[str, Any] | Rejection, row_number: int, split: str = "train") -> bool:
        """Validate and write one row; returns False when it was rejected."""
        self.rows_in += 1
        if isinstance(raw, Rejection):
            self.reject(row_number, raw)
            return False
        row = self.builder.validate(raw, row_number)
        if isinstance(row, Rejection):
            self.reject(row_number, row, raw)
            return False
        split = str(raw.get("split") or split)
        rl_out = self._split_writer(self._rl, "", split, RL_SCHEMA)
        record = self.builder.rl_record(row, split, rl_out.rows + len(rl_out.buffer))
        rl_out.add(record)
        if row["reasoning"]:
            self._split_writer(self._sft, "sft_", split, SFT_SCHEMA).add(
                self.builder.sft_record(record, row["reasoning"]))
        self.label_counts[split]["unlabelled" if row["label"] is None else str(row["label"])] += 1
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
