"""Per-sample records -> per-theme table with a MACRO row, and runs -> one leaderboard."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from .bench import Bench
from .records import read_jsonl

COUNT_COLUMNS = ["n_total", "n_scored", "n_failed", "n_missing"]
JUDGE_COUNT_COLUMNS = ["n_total", "n_judged", "n_judge_failed", "n_judge_missing"]
KEY_COLUMNS = ["bench", "model", "source", "theme"]
MISSING_POLICIES = ("exclude", "floor")
MACRO = "MACRO"
# Per row, the metrics some scored samples could not have and how many: "fg_psnr:8;fg_ssim:8".
UNAVAILABLE_COLUMN = "unavailable"
LEADERBOARDS = Path(__file__).resolve().parent.parent / "leaderboards"


def run_records(run_dir: Path, pattern: str = "samples*.jsonl") -> dict[str, dict]:
    """Latest record per id over a run's main file and any shard files matching ``pattern``."""
    main = pattern.replace("*", "")
    records: dict[str, dict] = {}
    for path in sorted(Path(run_dir).glob(pattern), key=lambda p: (p.name != main, p.name)):
        records.update({r["id"]: r for r in read_jsonl(path) if "id" in r})
    return records


def _mean(values: list[float]) -> float:
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return round(sum(values) / len(values), 4) if values else math.nan


def summarize(
    bench: Bench, records: dict[str, dict], model: str, score_keys: tuple[str, ...] = ("metrics",),
    counts: list[str] = COUNT_COLUMNS, columns: list[str] | None = None, floor: float | None = None,
) -> pd.DataFrame:
    """One row per theme of the bench selection and a MACRO row (mean of theme means).

    ``counts`` names the total, ok, failed and missing columns; every selected sample is counted,
    one with no record yet as missing. ``columns`` fixes the order of known score columns. Means
    are over ok samples with a value; with ``floor``, failed and missing samples enter the means
    with that value instead of being left out.
    """
    columns = list(columns or [])
    for record in records.values():
        for key in score_keys:
            columns += [c for c in record.get(key, {}) if c not in columns]
    total, ok, failed, missing = counts
    rows = []
    for theme in bench.themes:
        theme_records = [records.get(s.id, {"status": "missing"}) for s in bench.samples if s.theme == theme]
        statuses = [r.get("status") for r in theme_records]
        row = {"bench": bench.name, "model": model, "source": "measured", "theme": theme,
               total: len(theme_records), ok: statuses.count("ok"),
               failed: statuses.count("failed"), missing: len(statuses) - statuses.count("ok") - statuses.count("failed")}
        for column in columns:
            values = [next((r[k][column] for k in score_keys if column in r.get(k, {})), None) if r.get("status") == "ok"
                      else floor for r in theme_records]
            row[column] = _mean(values)
        rows.append(row)
    table = pd.DataFrame(rows, columns=KEY_COLUMNS + counts + columns)
    macro = {"bench": bench.name, "model": model, "source": "measured", "theme": MACRO}
    macro.update({c: int(table[c].sum()) for c in counts})
    macro.update({c: _mean(table[c].tolist()) for c in columns})
    return pd.concat([table, pd.DataFrame([macro])], ignore_index=True)


def unavailable_counts(records: list[dict]) -> dict[str, int]:
    """How many scored records lack each metric because it could not apply to them."""
    counts: dict[str, int] = {}
    for record in records:
        if record.get("status") == "ok":
            for name in record.get("unavailable") or {}:
                counts[name] = counts.get(name, 0) + 1
    return counts


def format_unavailable(counts: dict[str, int]) -> str:
    return ";".join(f"{name}:{counts[name]}" for name in sorted(counts) if counts[name])


def parse_unavailable(text) -> dict[str, int]:
    if not isinstance(text, str) or not text:
        return {}
    return {name: int(n) for name, _, n in (item.rpartition(":") for item in text.split(";"))}


def mark_unavailable(table: pd.DataFrame, bench: Bench, records: dict[str, dict]) -> pd.DataFrame:
    """Add the ``unavailable`` column to an objective summary, so a cell without a value says why."""
    by_theme = {theme: format_unavailable(unavailable_counts([records[s.id] for s in bench.samples if s.theme == theme and s.id in records]))
                for theme in bench.themes}
    by_theme[MACRO] = format_unavailable(unavailable_counts([records[s.id] for s in bench.samples if s.id in records]))
    return table.assign(**{UNAVAILABLE_COLUMN: table["theme"].map(by_theme)})


def order_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Measured rows before published ones, models in name order, each model's MACRO row last."""
    keys = pd.DataFrame({
        "bench": table["bench"].astype(str), "paper": table["source"].eq("paper"),
        "model": table["model"].astype(str).str.lower(), "macro": table["theme"].eq(MACRO), "theme": table["theme"].astype(str),
    })
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return table.loc[order].reset_index(drop=True)


def latest_judge(records: dict[str, dict]) -> tuple[dict[str, dict], int]:
    """The records of the judge model and rubric version used last (by record time), and how
    many records of other judges were left out: one table never mixes two judges."""
    newest = max(records.values(), key=lambda r: r.get("judged_at", ""))
    which = (newest.get("judge_model"), newest.get("rubric_version"))
    kept = {k: r for k, r in records.items() if (r.get("judge_model"), r.get("rubric_version")) == which}
    return kept, len(records) - len(kept)


def judge_summary(bench: Bench, records: dict[str, dict], model: str, columns: list[str], policy: str = "exclude") -> pd.DataFrame:
    """Judge scores per theme and MACRO, with judged / failed / missing counts.

    ``exclude`` (the published behaviour) leaves failed and missing samples out of the means;
    ``floor`` scores them 1 on every dimension. The policy is a column of the table.
    """
    if policy not in MISSING_POLICIES:
        raise ValueError(f"--missing-policy must be one of {', '.join(MISSING_POLICIES)}, not {policy!r}")
    table = summarize(bench, records, model, ("judge",), JUDGE_COUNT_COLUMNS, columns, 1.0 if policy == "floor" else None)
    table.insert(len(KEY_COLUMNS) + len(JUDGE_COUNT_COLUMNS), "judge_missing_policy", policy)
    return table


def combine(objective: pd.DataFrame | None, judge: pd.DataFrame | None) -> pd.DataFrame:
    """One table per run: objective metrics and judge scores side by side, per theme."""
    if objective is None or judge is None:
        return objective if judge is None else judge
    return order_rows(objective.merge(judge, on=KEY_COLUMNS + ["n_total"], how="outer", sort=False))


def integer_counts(table: pd.DataFrame) -> pd.DataFrame:
    """Count columns as integers (empty where unknown, as in published rows), never ``4.0000``."""
    counts = [c for c in table.columns if c.startswith("n_")]
    return table.astype({c: "Int64" for c in counts})


def write_table(table: pd.DataFrame, path: Path) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    integer_counts(table).to_csv(tmp, index=False, float_format="%.4f")
    tmp.replace(path)


def leaderboard_inputs(runs: list[Path], published: list[str]) -> list[pd.DataFrame]:
    """Each run's summary named by its label (run folders), or as written (summary CSVs), then the
    shipped published rows; two runs with one label are told apart by their folder names."""
    from .runs import PROVENANCE_FILE, read_provenance, run_label

    tables, folders = [], []
    for run in runs:
        path = run / "summary.csv" if run.is_dir() else run
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found (run `sparkle-bench table {run}` first)")
        table = pd.read_csv(path)
        if (run / PROVENANCE_FILE).is_file():
            table["model"] = run_label(read_provenance(run))
        tables.append(table)
        folders.append(run.name if run.is_dir() else path.stem)
    labels = [t["model"].iloc[0] if len(t) else "" for t in tables]
    for table, label, folder in zip(tables, labels, folders):
        if labels.count(label) > 1:
            table["model"] = f"{label} ({folder})"
    return tables + [published_rows(name) for name in published]


def published_rows(name: str) -> pd.DataFrame:
    """A shipped leaderboard of published numbers (``source=paper``): ``sparkle_bench``, ``openve_bench``."""
    path = LEADERBOARDS / f"{name}.csv"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in LEADERBOARDS.glob("*.csv")))
        raise FileNotFoundError(f"no published leaderboard {name!r}; shipped: {known}")
    return pd.read_csv(path)


def merge_leaderboard(tables: list[pd.DataFrame], themes: str = MACRO) -> pd.DataFrame:
    """Stack run summaries (and published rows) into one table; ``themes='all'`` keeps every theme."""
    merged = pd.concat(tables, ignore_index=True, sort=False)
    if themes != "all":
        merged = merged[merged["theme"] == themes]
    fixed = [c for c in dict.fromkeys(KEY_COLUMNS + COUNT_COLUMNS + JUDGE_COUNT_COLUMNS) if c in merged.columns]
    rest = [c for c in merged.columns if c not in fixed]
    return integer_counts(order_rows(merged[fixed + rest]))
