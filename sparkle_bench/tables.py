"""Per-sample records -> per-theme table with a MACRO row, and runs -> one leaderboard."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .bench import Bench
from .records import read_jsonl

COUNT_COLUMNS = ["n_total", "n_scored", "n_failed", "n_missing"]
KEY_COLUMNS = ["bench", "model", "source", "theme"]


def run_records(run_dir: Path) -> dict[str, dict]:
    """Latest record per id over ``samples.jsonl`` and any shard files of a run."""
    records: dict[str, dict] = {}
    for path in sorted(Path(run_dir).glob("samples*.jsonl"), key=lambda p: (p.name != "samples.jsonl", p.name)):
        records.update({r["id"]: r for r in read_jsonl(path) if "id" in r})
    return records


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(sum(values) / len(values), 4) if values else math.nan


def summarize(bench: Bench, records: dict[str, dict], model: str, score_keys: tuple[str, ...] = ("metrics",)) -> pd.DataFrame:
    """One row per theme of the bench selection and a MACRO row (mean of theme means).

    Counts cover every selected sample: scored (status ok), failed and missing; a sample with no
    record yet counts as missing. Means are over scored samples with a value.
    """
    columns: list[str] = []
    for record in records.values():
        for key in score_keys:
            columns += [c for c in record.get(key, {}) if c not in columns]
    rows = []
    for theme in bench.themes:
        theme_records = [records.get(s.id, {"status": "missing"}) for s in bench.samples if s.theme == theme]
        statuses = [r.get("status") for r in theme_records]
        row = {"bench": bench.name, "model": model, "source": "measured", "theme": theme,
               "n_total": len(theme_records), "n_scored": statuses.count("ok"),
               "n_failed": statuses.count("failed"), "n_missing": len(statuses) - statuses.count("ok") - statuses.count("failed")}
        for column in columns:
            values = [next((r[k][column] for k in score_keys if column in r.get(k, {})), None) for r in theme_records if r.get("status") == "ok"]
            row[column] = _mean(values)
        rows.append(row)
    table = pd.DataFrame(rows, columns=KEY_COLUMNS + COUNT_COLUMNS + columns)
    macro = {"bench": bench.name, "model": model, "source": "measured", "theme": "MACRO"}
    macro.update({c: int(table[c].sum()) for c in COUNT_COLUMNS})
    macro.update({c: _mean(table[c].tolist()) for c in columns})
    return pd.concat([table, pd.DataFrame([macro])], ignore_index=True)


def write_table(table: pd.DataFrame, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    table.to_csv(tmp, index=False, float_format="%.4f")
    tmp.replace(path)


def merge_leaderboard(tables: list[pd.DataFrame], themes: str = "MACRO") -> pd.DataFrame:
    """Stack run summaries (and published rows) into one table; ``themes='all'`` keeps every theme."""
    merged = pd.concat(tables, ignore_index=True, sort=False)
    if themes != "all":
        merged = merged[merged["theme"] == themes]
    fixed = [c for c in KEY_COLUMNS + COUNT_COLUMNS if c in merged.columns]
    rest = [c for c in merged.columns if c not in fixed]
    return merged[fixed + rest].sort_values(["bench", "model", "source"]).reset_index(drop=True)
