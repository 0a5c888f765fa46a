"""The committed result tables are what the table writer makes of the committed raw records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evaluation.tables import write_results

RESULTS = Path(__file__).resolve().parent.parent / "results"
PRESETS = sorted(p.parent.name for p in RESULTS.glob("*/records.json"))


@pytest.mark.skipif(not PRESETS, reason="no committed results")
@pytest.mark.parametrize("preset", PRESETS)
def test_committed_tables_rebuild_from_their_records(preset, tmp_path):
    folder = RESULTS / preset
    records = json.loads((folder / "records.json").read_text())
    header = json.loads((folder / "header.json").read_text())
    assert header["status"] == "complete" and header["commit"] != "unknown"
    intervals = folder / "intervals.md"
    written = write_results(records, tmp_path, header, intervals.read_text() if intervals.exists() else "")
    tables = {rec["table"] for rec in records}
    for name in (*(f"{t}.md" for t in sorted(tables)), "README.md"):
        assert name in written
        assert (tmp_path / name).read_text() == (folder / name).read_text(), name
    if preset == "cpu":  # the committed main run has every table but the data-efficiency one
        assert tables == {"main", "ablation", "distillation"}
    # every committed number comes from a real evaluation of its split
    for rec in records:
        assert rec["metrics"]["n"] > 0 and rec["metrics"]["data"].endswith(f"{rec['split']}.parquet")
