"""Runs made of hand-written records (no video is decoded): exact values for tables and the gate."""

from __future__ import annotations

from pathlib import Path

from sparkle_bench.bench import Bench
from sparkle_bench.records import append_jsonl
from sparkle_bench.runs import open_run


def write_run(
    run_dir: Path,
    bench: Bench,
    records: dict[str, dict],
    model: str = "identity",
    label: str | None = None,
    judge: dict[str, dict] | None = None,
) -> Path:
    """A run folder over ``bench`` whose samples.jsonl holds ``records`` (id -> status, metrics,
    unavailable); ids without a record have never been scored. ``judge``: id -> judge scores."""
    open_run(run_dir, bench, model, {}, label)
    themes = {s.id: s.theme for s in bench.samples}
    for sample_id, record in records.items():
        append_jsonl(
            run_dir / "samples.jsonl",
            {
                "id": sample_id,
                "theme": themes[sample_id],
                "edited": None,
                "fingerprint": "crafted",
                "metrics": {},
                "unavailable": {},
                **record,
            },
        )
    for sample_id, scores in (judge or {}).items():
        append_jsonl(
            run_dir / "judge.jsonl",
            {
                "id": sample_id,
                "theme": themes[sample_id],
                "status": "ok",
                "judge": scores,
                "judge_model": "test-judge",
                "rubric": "sparkle",
                "rubric_version": "sparkle-v1",
                "judged_at": "2026-01-01T00:00:00.000000000Z",
                "answers": ["Instruction Compliance: 4"],
            },
        )
    return run_dir


def ok(**metrics) -> dict:
    return {"status": "ok", "metrics": metrics}
