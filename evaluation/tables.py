"""Result tables from per-run evaluation metrics: mean and spread over seeds.

Input: one record per (table, method, seed, split) evaluation,
``{"table", "method", "seed", "split", "metrics"}``, where ``metrics`` is the
dict returned by `evaluation.evaluate`. `write_results` turns them into
markdown tables (main, ablation, distillation, data efficiency), a results README,
JSON and one plot per table; the folder keeps records.json and header.json so it
can be rebuilt later:

    python -m evaluation.tables --records DIR/records.json --out DIR2
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import textwrap
from pathlib import Path
from typing import Any, Mapping, Sequence

from evaluation.report import _atomic_write

TABLES = ("main", "ablation", "distillation", "data_efficiency")
SPLITS = ("test_random", "test_longtail")
METRICS = ("accuracy", "macro_f1", "step_accuracy", "implied_accuracy", "format_error_rate", "latency_s_per_pair",
           "pairs_per_s",
           # the distillation table's serving view (recipes.tables): ranking on the test distribution's
           # ranking split, latency at the serving batch size (test_random records only)
           "ndcg@10", "serve_pairs_per_s", "serve_p50_ms",
           # the data-efficiency table: the gold-labelled pairs the method trained on
           "gold_pairs")
TITLES = {"main": "Main results", "ablation": "Ablation", "distillation": "Distillation",
          "data_efficiency": "Data efficiency"}
SHORT = {"test_random": "RANDOM", "test_longtail": "LONGTAIL"}
FIELDS = ("table", "method", "seed", "split", "metrics")
DASH = "—"

Stat = dict[str, Any]  # {"mean", "std", "min", "max", "n"}


# -- aggregation -------------------------------------------------------------------------


def _check(i: int, rec: Any) -> None:
    def bad(field: str, why: str) -> ValueError:
        return ValueError(f"record {i}: field {field!r} {why}")

    if not isinstance(rec, Mapping):
        raise ValueError(f"record {i}: expected a dict, got {type(rec).__name__}")
    for field in FIELDS:
        if field not in rec:
            raise bad(field, "is missing")
    if rec["table"] not in TABLES:
        raise bad("table", f"is {rec['table']!r}, not one of {list(TABLES)}")
    if rec["split"] not in SPLITS:
        raise bad("split", f"is {rec['split']!r}, not one of {list(SPLITS)}")
    if not isinstance(rec["method"], str) or not rec["method"].strip():
        raise bad("method", f"must be a non-empty string, got {rec['method']!r}")
    if isinstance(rec["seed"], bool) or not isinstance(rec["seed"], int):
        raise bad("seed", f"must be an int, got {rec['seed']!r}")
    metrics = rec["metrics"]
    if not isinstance(metrics, Mapping):
        raise bad("metrics", f"must be a dict, got {type(metrics).__name__}")
    if "accuracy" not in metrics:
        raise bad("metrics", "has no 'accuracy' key (not an evaluate() result?)")
    for name in METRICS:
        v = metrics.get(name)
        # A NaN would silently poison a mean; a string is a serialisation slip.
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
            raise bad(f"metrics.{name}", f"must be a finite number or None, got {v!r}")


def stat(values: Sequence[float | None]) -> Stat | None:
    """Mean, sample std (n - 1; None for n < 2), min, max and count; None values are skipped."""
    xs = [float(v) for v in values if v is not None]
    if not xs:
        return None
    n, mean = len(xs), sum(xs) / len(xs)
    std = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n >= 2 else None
    return {"mean": mean, "std": std, "min": min(xs), "max": max(xs), "n": n}


def aggregate(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per (table, method), in first-appearance order.

    Row: ``{"table", "method", "mode", "seeds" (sorted), "n_seeds",
    "splits": {split: {metric: stat or None}}}``, with `stat`'s dict per metric.
    Raises ValueError naming the record index and field of a malformed record.
    """
    seen: dict[tuple, int] = {}
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for i, rec in enumerate(records):
        _check(i, rec)
        key = (rec["table"], rec["method"], rec["seed"], rec["split"])
        if key in seen:
            raise ValueError(f"record {i}: fields (table, method, seed, split) = {key!r} "
                             f"repeat record {seen[key]}")
        seen[key] = i
        groups.setdefault((rec["table"], rec["method"]), []).append(rec)
    rows = []
    for (table, method), recs in groups.items():
        modes = list(dict.fromkeys(str(r["metrics"]["mode"]) for r in recs if r["metrics"].get("mode")))
        seeds = sorted({r["seed"] for r in recs})
        splits = {split: {name: stat([r["metrics"].get(name) for r in recs if r["split"] == split])
                          for name in METRICS} for split in SPLITS}
        rows.append({"table": table, "method": method, "mode": "/".join(modes) or None,
                     "seeds": seeds, "n_seeds": len(seeds), "splits": splits})
    return rows


# -- markdown ------------------------------------------------------------------------------


def format_cell(s: Stat | None, percent: bool = True, *, scale: float | None = None,
                n_seeds: int | None = None) -> str:
    """"41.2 ± 3.1" (n >= 2), "41.2" (n == 1), "—" (None); one decimal.

    ``percent`` multiplies by 100; otherwise ``scale`` (default 1, 1000 for
    seconds to ms). With ``n_seeds``, a cell over fewer seeds than its row
    says so: "40.0 ± 2.0 (n=2)".
    """
    if s is None:
        return DASH
    k = scale if scale is not None else (100.0 if percent else 1.0)
    text = f"{k * s['mean']:.1f}"
    if s["std"] is not None:
        text += f" ± {k * s['std']:.1f}"
    if n_seeds is not None and s["n"] < n_seeds:
        text += f" (n={s['n']})"
    return text


def _escape(text: str) -> str:
    return text.replace("|", "\\|")


def _md_table(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])


_QUALITY = [(split, name) for split in SPLITS for name in ("accuracy", "macro_f1")]
_QUALITY_HEAD = [f"{SHORT[split]} {'acc' if name == 'accuracy' else 'macro-F1'}" for split, name in _QUALITY]
_LEGEND = ("Mean ± sample standard deviation (n − 1) over seeds{unit}; a single-seed cell shows the mean "
           "alone (no spread), (n=k) marks a cell over fewer seeds than its row, — is not available; "
           "RANDOM = test_random, LONGTAIL = test_longtail{extra}.")


def render_markdown(rows: Sequence[Mapping[str, Any]], table: str) -> str:
    """The markdown of one table (heading, table, one-line legend) from `aggregate`'s rows."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {list(TABLES)}, got {table!r}")
    rows = [r for r in rows if r["table"] == table]
    if table == "distillation":
        return _distillation_markdown(rows)
    if table == "data_efficiency":
        return _data_efficiency_markdown(rows)
    body = []
    for r in rows:
        sp, n = r["splits"], r["n_seeds"]
        quality = [format_cell(sp[split][name], n_seeds=n) for split, name in _QUALITY]
        rnd = sp["test_random"]
        body.append([_escape(r["method"]), str(n), *quality,
                     format_cell(rnd["step_accuracy"], n_seeds=n),
                     format_cell(rnd["implied_accuracy"], n_seeds=n),
                     format_cell(rnd["format_error_rate"], n_seeds=n)])
    head = ["Method", "seeds", *_QUALITY_HEAD, "step acc (RANDOM)", "steps imply gold (RANDOM)",
            "format errors (RANDOM)"]
    legend = _LEGEND.format(unit=", in %", extra="; *steps imply gold*: the share of responses whose step "
                            "verdicts give the gold label by the criteria's label rules, whatever they answered")
    table_md = _md_table(head, body) if body else "_No runs._"
    return f"## {TITLES[table]}\n\n{table_md}\n\n{legend}\n"


TEACHER_PREFIX = "Teacher:"


def _distillation_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """Quality, ranking and serving speed; the speed-up is over the teacher row's serving pairs/s."""
    def serve(r, name):
        return r["splits"]["test_random"][name]

    teacher = next((r for r in rows if r["method"].startswith(TEACHER_PREFIX)), None)
    base = serve(teacher, "serve_pairs_per_s") if teacher else None
    served = any(serve(r, "serve_pairs_per_s") for r in rows)
    body = []
    for r in rows:
        sp, n = r["splits"], r["n_seeds"]
        cells = [_escape(r["method"]), r["mode"] or DASH, str(n),
                 *(format_cell(sp[split][name], n_seeds=n) for split, name in _QUALITY),
                 *(format_cell(sp[split]["ndcg@10"], n_seeds=n) for split in SPLITS)]
        if served:
            rate = serve(r, "serve_pairs_per_s")
            speedup = f"{rate['mean'] / base['mean']:.1f}x" if rate and base else DASH
            cells += [format_cell(rate, False, n_seeds=n), format_cell(serve(r, "serve_p50_ms"), False, n_seeds=n),
                      speedup]
        else:  # records from before the serving view: the evaluation's own throughput
            cells += [format_cell(sp["test_random"]["pairs_per_s"], False, n_seeds=n),
                      format_cell(sp["test_random"]["latency_s_per_pair"], scale=1000.0, n_seeds=n)]
        body.append(cells)
    head = ["Model", "mode", "seeds", *_QUALITY_HEAD, *(f"{SHORT[s]} NDCG@10" for s in SPLITS)]
    if served:
        head += ["pairs/s", "p50 ms", "speed-up"]
        extra = ("; NDCG@10 on the ranking split of each distribution (x100); pairs/s and p50 ms per pair at "
                 "the serving batch size on test_random prompts (a forward pass per batch for a one-pass "
                 "scorer, greedy generation otherwise), speed-up = pairs/s over the teacher's")
    else:
        head += ["pairs/s", "ms/pair"]
        extra = "; pairs/s and ms/pair are generation throughput on test_random at the evaluation batch size"
    table_md = _md_table(head, body) if body else "_No runs._"
    legend = _LEGEND.format(unit=", quality in %", extra=extra)
    return f"## {TITLES['distillation']}\n\n{table_md}\n\n{legend}\n"


_PAIRS_SUFFIX = " gold pairs"


def data_efficiency_method(family: str, gold_pairs: int) -> str:
    """A data-efficiency row's name: the method and the gold-labelled pairs it trained on."""
    return f"{family}, {gold_pairs}{_PAIRS_SUFFIX}"


def data_efficiency_family(method: str) -> str:
    """The method of a data-efficiency row's name (`data_efficiency_method`'s inverse)."""
    head, sep, tail = method.rpartition(", ")
    return head if sep and tail.endswith(_PAIRS_SUFFIX) else method


def _gold_pairs(row: Mapping[str, Any]) -> float | None:
    s = row["splits"]["test_random"]["gold_pairs"] or row["splits"]["test_longtail"]["gold_pairs"]
    return s["mean"] if s else None


def _data_efficiency_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Grouped by method (first-appearance order), by amount of gold pairs within a method."""
    order = list(dict.fromkeys(data_efficiency_family(r["method"]) for r in rows))
    return sorted(rows, key=lambda r: (order.index(data_efficiency_family(r["method"])), _gold_pairs(r) or 0))


def _data_efficiency_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    body = []
    for r in _data_efficiency_rows(rows):
        sp, n, pairs = r["splits"], r["n_seeds"], _gold_pairs(r)
        body.append([_escape(data_efficiency_family(r["method"])), DASH if pairs is None else f"{pairs:.0f}", str(n),
                     *(format_cell(sp[split][name], n_seeds=n) for split, name in _QUALITY),
                     format_cell(sp["test_random"]["step_accuracy"], n_seeds=n)])
    head = ["Method", "gold pairs", "seeds", *_QUALITY_HEAD, "step acc (RANDOM)"]
    legend = _LEGEND.format(unit=", in %", extra="; *gold pairs*: the gold-labelled pairs the method trained on "
                            "(label-only SFT and the classification head: one pass over them; GRPO + SAM: the "
                            "prompts its steps sampled, whose gold labels are its reward), on top of the "
                            "warm-up's teacher traces for GRPO + SAM")
    table_md = _md_table(head, body) if body else "_No runs._"
    return f"## {TITLES['data_efficiency']}\n\n{table_md}\n\n{legend}\n"


# -- plots ---------------------------------------------------------------------------------


def plot_tables(rows: Sequence[Mapping[str, Any]], out_dir: str | Path) -> list[Path]:
    """One PNG per table with rows: accuracy and macro-F1 bars per split and method, error bars = std."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    out, paths = Path(out_dir), []
    out.mkdir(parents=True, exist_ok=True)
    colors = plt.get_cmap("tab20").colors  # dark/light pairs: one hue per split
    for table in TABLES:
        trows = [r for r in rows if r["table"] == table]
        if not trows:
            continue
        if table == "data_efficiency":
            paths.append(_plot_data_efficiency(trows, out / f"{table}.png"))
            continue
        fig, ax = plt.subplots(figsize=(max(7.4, 1.6 * len(trows) + 3), 4.2))
        width = 0.8 / len(_QUALITY)
        for j, ((split, name), label) in enumerate(zip(_QUALITY, _QUALITY_HEAD)):
            cells = [r["splits"][split][name] for r in trows]
            # A missing value leaves a gap rather than a misleading zero-height bar.
            heights = [100 * c["mean"] if c else math.nan for c in cells]
            # No std (one seed): no whisker, rather than a cap that reads as zero spread.
            errors = [100 * c["std"] if c and c["std"] is not None else math.nan for c in cells]
            xs = [i + (j - (len(_QUALITY) - 1) / 2) * width for i in range(len(trows))]
            ax.bar(xs, heights, width, yerr=errors, capsize=3, label=label, color=colors[j])
        # Wrapped names keep long ablation labels from running into each other.
        ax.set_xticks(range(len(trows)), [f"{textwrap.fill(r['method'], 20)}\n(seeds: {r['n_seeds']})"
                                          for r in trows], fontsize=8)
        ax.set_ylabel("%")
        ax.set_ylim(0, 100)
        ax.set_title(f"{TITLES[table]}: mean ± std over seeds", fontsize=10)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))  # never over a tall bar
        fig.tight_layout()
        path = out / f"{table}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


def _plot_data_efficiency(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
    """Accuracy against gold pairs (log axis), one line per method and a panel per split; error bars
    = std over seeds; a method trained on no gold pair (the warm-up) is a dashed level."""
    import matplotlib
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401 (matplotlib.ticker below)

    families: dict[str, list] = {}
    for r in _data_efficiency_rows(rows):
        families.setdefault(data_efficiency_family(r["method"]), []).append(r)
    fig, axes = plt.subplots(1, len(SPLITS), figsize=(11, 4.2), sharey=True)
    for ax, split in zip(axes, SPLITS):
        for i, (family, frows) in enumerate(families.items()):
            color = plt.get_cmap("tab10").colors[i % 10]
            points = [(_gold_pairs(r), r["splits"][split]["accuracy"]) for r in frows]
            points = [(x, s) for x, s in points if x is not None and s is not None]
            level = [s for x, s in points if x == 0]
            points = [(x, s) for x, s in points if x > 0]
            if level:
                ax.axhline(100 * level[0]["mean"], color=color, ls="--", lw=1.2, label=f"{family} (no gold pair)")
            if points:
                xs = [x for x, _ in points]
                ys = [100 * s["mean"] for _, s in points]
                errs = [100 * s["std"] if s["std"] is not None else math.nan for _, s in points]
                ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, color=color, label=family)
        ax.axhline(20, color="grey", ls=":", lw=1, label="chance (five balanced labels)")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("gold-labelled training pairs")
        ax.set_title(f"{SHORT[split]} accuracy", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy, %")
    axes[-1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.suptitle("Data efficiency: mean ± std over seeds", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# -- files ---------------------------------------------------------------------------------


def _header_md(header: Mapping[str, Any]) -> str:
    def value(key: str, v: Any) -> str:
        if key == "command":
            return f"`{v}`"
        if key == "wall_s" and isinstance(v, (int, float)):
            return f"{v:.0f} s ({v / 3600:.2f} h)"
        return json.dumps(v, ensure_ascii=False) if isinstance(v, (dict, list)) else str(v)

    return "\n".join(f"- **{k}**: {value(k, v)}" for k, v in header.items())


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def write_results(records: Sequence[Mapping[str, Any]], out_dir: str | Path,
                  header: Mapping[str, Any] | None = None, intervals: str = "") -> dict[str, Path]:
    """Write the tables, README, JSON and plots; returns {file name: path}.

    Files: ``<table>.md`` and ``<table>.png`` for each table with records,
    README.md, records.json (rebuild input), tables.json (aggregated rows),
    header.json; ``intervals`` (markdown: the paired differences) goes after the tables and into intervals.md.
    """
    rows = aggregate(records)  # validates before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    header = dict(header or {})
    present = [t for t in TABLES if any(r["table"] == t for r in rows)]
    paths: dict[str, Path] = {}

    def put(name: str, text: str) -> None:
        _atomic_write(out / name, text)
        paths[name] = out / name

    sections = []
    for table in present:
        md = render_markdown(rows, table)
        put(f"{table}.md", md)
        sections.append(f"{md}\n![{TITLES[table]}]({table}.png)\n")
    for png in plot_tables(rows, out):
        paths[png.name] = png
    intro = ["# Results", "", _header_md(header) if header else "_No run information._", "",
             "Rebuild from records.json: `python -m evaluation.tables --records records.json --out DIR`.", ""]
    if intervals:
        put("intervals.md", intervals)
        sections.append(intervals)
    put("README.md", "\n".join(intro) + "\n" + "\n".join(sections))
    put("records.json", _dump(list(records)))
    put("tables.json", _dump(rows))
    put("header.json", _dump(header))
    return paths


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m evaluation.tables",
                                 description="Rebuild the result tables, README and plots from records.json.")
    ap.add_argument("--records", required=True, help="records.json written by write_results")
    ap.add_argument("--out", required=True, help="folder to write to")
    args = ap.parse_args(argv)
    src = Path(args.records)
    if not src.is_file():
        ap.error(f"no such file: {src}")
    header_file = src.with_name("header.json")
    header = json.loads(header_file.read_text(encoding="utf-8")) if header_file.is_file() else {}
    # the paired intervals need the per-pair predictions: a rebuild keeps the ones written with the records
    intervals_file = src.with_name("intervals.md")
    intervals = intervals_file.read_text(encoding="utf-8") if intervals_file.is_file() else ""
    paths = write_results(json.loads(src.read_text(encoding="utf-8")), args.out, header, intervals)
    for name, path in paths.items():
        print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
