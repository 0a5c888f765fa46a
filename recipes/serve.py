"""Batch scoring for serving: one forward pass per query-note pair with a label-only student.

    python -m recipes.serve --model DIR --input pairs.jsonl|.csv|.tsv|.parquet --out scores.jsonl
                            [--criteria default|free_form|PATH] [--lang en|zh] [--batch-size N]
                            [--chunk-rows N] [--device auto|cpu|cuda] [--threads N]
                            [--max-query-chars N] [--max-note-chars N] [--no-progress]

The input is read and validated exactly as ``python -m data_prep convert`` reads it (same
readers, fields and reject reasons; a ``label``, when present, is checked but not used), the
prompt is the one the student was trained on (criteria and language as for ``convert``), and
the student is read at its label tokens (`evaluation.label_scorer`). Rows stream through in
chunks of ``--chunk-rows``, so memory stays bounded whatever the input size.

Output, written under temporary names and renamed when complete:
    <out>                          per pair: {"row", "id", "label", "expected", "probs", "label_mass"}
                                   (``expected`` is E[y], the ranking score; ``probs`` maps each
                                   label to its probability)
    <out folder>/rejected.jsonl    every refused row: row number, id, reason code, detail
    <out folder>/summary.json      rows in, scored, rejected per reason, predicted labels, speed

A model folder or input file that cannot be used gives one ``error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from evaluation.arguments import error_exit, offline_torch, positive_int

REJECTED_FILE, SUMMARY_FILE = "rejected.jsonl", "summary.json"


def build_parser() -> argparse.ArgumentParser:
    from data_prep.criteria import DEFAULT_CRITERIA
    from data_prep.records import Limits

    p = argparse.ArgumentParser(prog="python -m recipes.serve", description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a label-only student: a HF folder (or a model_zoo name)")
    p.add_argument("--input", required=True, help="JSONL, CSV/TSV or parquet rows with query, title, content")
    p.add_argument("--out", required=True, help="the scores file (JSONL); rejected.jsonl and summary.json "
                                                "are written next to it")
    p.add_argument("--criteria", default=DEFAULT_CRITERIA,
                   help="the criteria the student's prompt was written with (default: %(default)s)")
    p.add_argument("--lang", default="en", choices=("en", "zh"), help="prompt language")
    p.add_argument("--batch-size", type=positive_int, default=32, help="pairs per forward pass")
    p.add_argument("--chunk-rows", type=positive_int, default=2048, help="rows read before scoring them")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--threads", type=positive_int, default=None, help="CPU threads for torch")
    p.add_argument("--max-query-chars", type=int, default=Limits.max_query_chars)
    p.add_argument("--max-note-chars", type=int, default=Limits.max_note_chars)
    p.add_argument("--no-progress", action="store_true")
    return p


class _Outputs:
    """The three output files under temporary names, renamed into place by `commit`."""

    def __init__(self, scores: Path):
        folder = scores.parent
        folder.mkdir(parents=True, exist_ok=True)
        self.final = {"scores": scores, "rejected": folder / REJECTED_FILE, "summary": folder / SUMMARY_FILE}
        self.tmp = {k: v.with_name(f".{v.name}.{os.getpid()}.tmp") for k, v in self.final.items()}
        self.scores = open(self.tmp["scores"], "w", encoding="utf-8")
        # backslashreplace: an id with undecodable bytes is written escaped, never lost (as convert).
        self.rejected = open(self.tmp["rejected"], "w", encoding="utf-8", errors="backslashreplace")

    def commit(self, summary: dict) -> None:
        self.scores.close()
        self.rejected.close()
        self.tmp["summary"].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        for key in ("rejected", "summary", "scores"):  # the scores last: their presence means done
            os.replace(self.tmp[key], self.final[key])

    def discard(self) -> None:
        for fh in (self.scores, self.rejected):
            fh.close()
        for path in self.tmp.values():
            path.unlink(missing_ok=True)


def serve(model: str, input_path: str | os.PathLike, out: str | os.PathLike, *, criteria: str | None = None,
          lang: str = "en", batch_size: int = 32, chunk_rows: int = 2048, device: str = "auto",
          limits=None, progress: bool = True, scorer=None) -> dict[str, Any]:
    """Score every valid row of ``input_path`` into ``out``; the summary (also in summary.json).

    Raises `data_prep.readers.InputError`, `data_prep.criteria.CriteriaError` or
    `evaluation.label_scorer.ScorerError` (one line each) before anything is written.
    ``scorer`` reuses a loaded `LabelTokenScorer` instead of loading ``model``.
    """
    from tqdm import tqdm

    from data_prep.criteria import DEFAULT_CRITERIA, load_criteria
    from data_prep.readers import open_input
    from data_prep.records import RecordBuilder, Rejection
    from data_prep.writer import rejected_line
    from evaluation.generation import render_prompts
    from evaluation.label_scorer import load_scorer

    out, input_path = Path(out), Path(input_path)
    if out.resolve() == input_path.resolve():
        raise ValueError(f"--out {out} is the input file; the input is never written")
    source = open_input(input_path)
    crit = load_criteria(criteria or DEFAULT_CRITERIA)
    builder = RecordBuilder(crit, lang=lang, limits=limits, require_label=False)
    if scorer is None:
        from model_zoo import resolve_model

        scorer = load_scorer(str(resolve_model(model)), device=device, batch_size=batch_size)
    outputs = _Outputs(out)
    rejects: Counter = Counter()
    labels: Counter = Counter()
    rows_in = scored = 0
    score_seconds = 0.0
    start = time.perf_counter()
    pending: list[tuple[int, str, list[dict]]] = []  # (row number, id, chat) of rows waiting to be scored

    def flush() -> None:
        nonlocal scored, score_seconds
        if not pending:
            return
        t0 = time.perf_counter()
        scores = scorer.score(render_prompts(scorer.tokenizer, [chat for _, _, chat in pending]))
        score_seconds += time.perf_counter() - t0
        lines = []
        for (number, row_id, _), s in zip(pending, scores):
            labels[s.label] += 1
            lines.append(json.dumps({"row": number, "id": row_id, "label": s.label,
                                     "expected": round(s.expected, 6),
                                     "probs": {str(k): round(p, 6) for k, p in s.probs.items()},
                                     "label_mass": round(s.label_mass, 6)}, ensure_ascii=False))
        outputs.scores.write("\n".join(lines) + "\n")
        scored += len(pending)
        pending.clear()

    bar = tqdm(total=source.size, unit=source.unit, unit_scale=True, disable=not progress,
               desc=f"serve {source.path.name}", mininterval=0.5)
    try:
        for number, raw in source.rows(bar.update if progress else None):
            rows_in += 1
            row = raw if type(raw) is Rejection else builder.validate(raw, number)
            if type(row) is Rejection:
                rejects[row.reason] += 1
                outputs.rejected.write(rejected_line(number, row, None if type(raw) is Rejection else raw))
                continue
            pending.append((number, row["id"], builder.rl_record(row, "serve", scored + len(pending))["prompt"]))
            if len(pending) >= chunk_rows:
                flush()
        flush()
    except BaseException:
        outputs.discard()
        raise
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    summary = {
        "model": scorer.model_path, "input": str(input_path), "out": str(out), **crit.identity,
        "lang": lang, "device": scorer.device, "batch_size": scorer.batch_size,
        "rows_in": rows_in, "rows_scored": scored, "rows_rejected": sum(rejects.values()),
        "rejected_by_reason": dict(sorted(rejects.items())),
        "predicted_labels": {str(k): labels[k] for k in sorted(labels, reverse=True)},
        "seconds": round(seconds, 3), "score_seconds": round(score_seconds, 3),
        "pairs_per_s": round(scored / seconds, 1) if seconds > 0 and scored else None,
        "scoring_pairs_per_s": round(scored / score_seconds, 1) if score_seconds > 0 and scored else None,
    }
    # Nothing may be lost: every input row is either scored or rejected.
    assert summary["rows_scored"] + summary["rows_rejected"] == rows_in, summary
    outputs.commit(summary)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    offline_torch(args.threads)
    from data_prep.criteria import CriteriaError
    from data_prep.readers import InputError
    from data_prep.records import Limits
    from evaluation.label_scorer import ScorerError
    from model_zoo import ModelZooError

    try:
        summary = serve(args.model, args.input, args.out, criteria=args.criteria, lang=args.lang,
                        batch_size=args.batch_size, chunk_rows=args.chunk_rows, device=args.device,
                        limits=Limits(max_query_chars=args.max_query_chars, max_note_chars=args.max_note_chars),
                        progress=not args.no_progress)
    except (InputError, CriteriaError, ScorerError, ModelZooError, ValueError, OSError) as exc:
        return error_exit(exc, args.out)  # OSError: the output folder cannot be written
    print(f"scored {summary['rows_scored']} pairs, rejected {summary['rows_rejected']} "
          f"{summary['rejected_by_reason']} -> {args.out}")
    print(f"  predicted labels {summary['predicted_labels']}; {summary['pairs_per_s']} pairs/s "
          f"({summary['scoring_pairs_per_s']} pairs/s scoring, {summary['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
