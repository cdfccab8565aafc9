"""Per-sample records -> per-theme table with a MACRO row and bootstrap intervals, and runs -> one
leaderboard."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .bench import Bench
from .records import read_jsonl

COUNT_COLUMNS = ["n_total", "n_scored", "n_failed", "n_missing"]
# Scored samples that break the protocol (sparkle_bench.pair.protocol_flags), per flag: counted in
# n_scored and in the means, and counted again here so a table never passes them off as complete.
FLAG_COLUMNS = {"short": "n_short", "orientation": "n_orientation"}
JUDGE_COUNT_COLUMNS = ["n_total", "n_judged", "n_judge_failed", "n_judge_missing"]
KEY_COLUMNS = ["bench", "model", "source", "theme"]
MISSING_POLICIES = ("exclude", "floor")
MACRO = "MACRO"
# Per row, the metrics some scored samples could not have and how many: "fg_psnr:8;fg_ssim:8".
UNAVAILABLE_COLUMN = "unavailable"
# Published leaderboards ship as package data (``importlib.resources``: found wherever the package is installed).
LEADERBOARDS = resources.files("sparkle_bench") / "data" / "leaderboards"
# 95% percentile bootstrap interval of each mean, over samples: ``<column>_ci_lo``, ``<column>_ci_hi``.
CI_SUFFIXES = ("_ci_lo", "_ci_hi")
# From sparkle_bench.ranks, on the MACRO rows of ranked runs: ``<column>_rank`` (the range of ranks the
# paired tests allow, "1-3") and ``<column>_group`` (letters: runs sharing one are not separable);
# ``rank``: the rank range of the column the board is ranked by.
RANK_SUFFIXES = ("_rank", "_group")
RANK_COLUMN = "rank"
RANK_NOTE = (
    "a, b: runs sharing a letter are not separable on their shared samples; "
    "rank: best-worst the tests allow (docs/ranking.md)"
)
BOOTSTRAP_DRAWS = 2000
# One column order for every view and file: counts, then metrics in the order their classes declare
# (subject -> background -> learned), then the rest (judge dimensions in their rubric's order), each
# score followed by its interval.
COUNT_ORDER = COUNT_COLUMNS + list(FLAG_COLUMNS.values()) + ["n_judged", "n_judge_failed", "n_judge_missing"]
# Counts that fail ``--strict``: every sample neither complete nor judged.
STRICT_COUNTS = ("n_failed", "n_missing", *FLAG_COLUMNS.values(), "n_judge_failed", "n_judge_missing")


def run_records(run_dir: Path, pattern: str = "samples*.jsonl") -> dict[str, dict]:
    """Latest record per id over a run's main file and any shard files matching ``pattern``."""
    main = pattern.replace("*", "")
    records: dict[str, dict] = {}
    for path in sorted(Path(run_dir).glob(pattern), key=lambda p: (p.name != main, p.name)):
        records.update({r["id"]: r for r in read_jsonl(path) if "id" in r})
    return records


def _present(values: list) -> list[float]:
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def _mean(values: list[float]) -> float:
    values = _present(values)
    return round(sum(values) / len(values), 4) if values else math.nan


def bootstrap_means(values: list, key: str) -> np.ndarray | None:
    """Means of ``BOOTSTRAP_DRAWS`` resamples (with replacement) of the present values, drawn
    from a generator seeded by ``key`` (the same table gives the same interval); None for no value."""
    array = np.array(_present(values))
    if not len(array):
        return None
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    return array[rng.integers(0, len(array), (BOOTSTRAP_DRAWS, len(array)))].mean(axis=1)


def interval(draws: np.ndarray | None, n: int) -> tuple[float, float]:
    """95% percentile interval of bootstrap means; none from fewer than 2 samples."""
    if draws is None or n < 2:
        return math.nan, math.nan
    low, high = np.percentile(draws, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def interval_columns(column: str) -> list[str]:
    return [column + suffix for suffix in CI_SUFFIXES]


def is_interval(column: str) -> bool:
    return column.endswith(CI_SUFFIXES)


def companion_columns(column: str) -> list[str]:
    """The columns that belong to a score column: its interval bounds, then its rank and letters."""
    return [column + suffix for suffix in CI_SUFFIXES + RANK_SUFFIXES]


def is_companion(column: str) -> bool:
    return column.endswith(CI_SUFFIXES + RANK_SUFFIXES)


def column_rank(column: str) -> tuple[int, float]:
    """Sort key of a value column in the one order every view uses (unknown columns keep theirs)."""
    from .metrics import declared

    base = column[: -len(CI_SUFFIXES[0])] if is_interval(column) else column
    if base in COUNT_ORDER:
        return 0, COUNT_ORDER.index(base)
    if (metric := declared(base)) is not None:
        return 1, metric.order
    return 2, 0


def canonical_order(table: pd.DataFrame) -> pd.DataFrame:
    """Text columns first (as they are), then values in :func:`column_rank` order, each score
    followed by its interval and rank, the ``unavailable`` column last."""
    text = [
        c
        for c in table.columns
        if c != UNAVAILABLE_COLUMN and not is_companion(c) and not pd.api.types.is_numeric_dtype(table[c])
    ]
    values = [c for c in table.columns if c not in text and c != UNAVAILABLE_COLUMN and not is_companion(c)]
    values = sorted(values, key=column_rank)
    ordered = []
    for column in values:
        ordered += [column] + [c for c in companion_columns(column) if c in table.columns]
    rest = [c for c in table.columns if c not in text and c not in ordered and c != UNAVAILABLE_COLUMN]
    return table[text + ordered + rest + ([UNAVAILABLE_COLUMN] if UNAVAILABLE_COLUMN in table.columns else [])]


def summarize(
    bench: Bench,
    records: dict[str, dict],
    model: str,
    score_keys: tuple[str, ...] = ("metrics",),
    counts: list[str] = COUNT_COLUMNS,
    columns: list[str] | None = None,
    floor: float | None = None,
) -> pd.DataFrame:
    """One row per theme of the bench selection and a MACRO row (mean of theme means).

    ``counts`` names the total, ok, failed and missing columns; every selected sample is counted,
    one with no record yet as missing. ``columns`` fixes the order of known score columns. Means
    are over ok samples with a value; with ``floor``, failed and missing samples enter the means
    with that value instead of being left out. Each mean gets a 95% bootstrap interval over its
    samples; MACRO's resamples every theme on its own and averages the theme means, as the
    MACRO value does (a theme of one sample enters it as a constant).
    """
    columns = list(columns or [])
    for record in records.values():
        for key in score_keys:
            columns += [c for c in record.get(key, {}) if c not in columns]
    total, ok, failed, missing = counts
    rows, draws = [], {c: [] for c in columns}
    for theme in bench.themes:
        theme_records = [records.get(s.id, {"status": "missing"}) for s in bench.samples if s.theme == theme]
        statuses = [r.get("status") for r in theme_records]
        row = {
            "bench": bench.name,
            "model": model,
            "source": "measured",
            "theme": theme,
            total: len(theme_records),
            ok: statuses.count("ok"),
            failed: statuses.count("failed"),
            missing: len(statuses) - statuses.count("ok") - statuses.count("failed"),
        }
        for column in columns:
            values = [
                next((r[k][column] for k in score_keys if column in r.get(k, {})), None)
                if r.get("status") == "ok"
                else floor
                for r in theme_records
            ]
            row[column] = _mean(values)
            theme_draws = bootstrap_means(values, f"{theme}|{column}")
            row[column + CI_SUFFIXES[0]], row[column + CI_SUFFIXES[1]] = interval(theme_draws, len(_present(values)))
            if theme_draws is not None:
                draws[column].append(theme_draws)
        rows.append(row)
    value_columns = [c for column in columns for c in [column] + interval_columns(column)]
    table = pd.DataFrame(rows, columns=KEY_COLUMNS + counts + value_columns)
    macro = {"bench": bench.name, "model": model, "source": "measured", "theme": MACRO}
    macro.update({c: int(table[c].sum()) for c in counts})
    for column in columns:
        macro[column] = _mean(table[column].tolist())
        spread = any(table[c].notna().any() for c in interval_columns(column))  # some theme had 2+ samples
        macro[column + CI_SUFFIXES[0]], macro[column + CI_SUFFIXES[1]] = (
            interval(np.mean(draws[column], axis=0), 2) if draws[column] and spread else (math.nan, math.nan)
        )
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
    by_theme = {
        theme: format_unavailable(
            unavailable_counts([records[s.id] for s in bench.samples if s.theme == theme and s.id in records])
        )
        for theme in bench.themes
    }
    by_theme[MACRO] = format_unavailable(unavailable_counts([records[s.id] for s in bench.samples if s.id in records]))
    return table.assign(**{UNAVAILABLE_COLUMN: table["theme"].map(by_theme)})


def flag_counts(records: list[dict]) -> dict[str, int]:
    """Per count column of :data:`FLAG_COLUMNS`, how many scored records carry that flag."""
    scored = [r for r in records if r.get("status") == "ok"]
    return {column: sum(flag in (r.get("flags") or {}) for r in scored) for flag, column in FLAG_COLUMNS.items()}


def mark_flags(table: pd.DataFrame, bench: Bench, records: dict[str, dict]) -> pd.DataFrame:
    """Add the protocol-violation counts (``n_short``, ``n_orientation``) to an objective summary,
    right after its counts."""
    by_theme = {
        theme: flag_counts([records[s.id] for s in bench.samples if s.theme == theme and s.id in records])
        for theme in bench.themes
    }
    by_theme[MACRO] = flag_counts([records[s.id] for s in bench.samples if s.id in records])
    table = table.copy()
    at = list(table.columns).index(COUNT_COLUMNS[-1]) + 1
    for offset, column in enumerate(FLAG_COLUMNS.values()):
        table.insert(at + offset, column, [by_theme.get(theme, {}).get(column, 0) for theme in table["theme"]])
    return table


def order_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Measured rows before published ones, models in name order, each model's MACRO row last."""
    keys = pd.DataFrame(
        {
            "bench": table["bench"].astype(str),
            "paper": table["source"].eq("paper"),
            "model": table["model"].astype(str).str.lower(),
            "macro": table["theme"].eq(MACRO),
            "theme": table["theme"].astype(str),
        }
    )
    order = keys.sort_values(list(keys.columns), kind="stable").index
    return table.loc[order].reset_index(drop=True)


def latest_judge(records: dict[str, dict]) -> tuple[dict[str, dict], int]:
    """The records of the judge model and rubric version used last (by record time), and how
    many records of other judges were left out: one table never mixes two judges."""
    newest = max(records.values(), key=lambda r: r.get("judged_at", ""))
    which = (newest.get("judge_model"), newest.get("rubric_version"))
    kept = {k: r for k, r in records.items() if (r.get("judge_model"), r.get("rubric_version")) == which}
    return kept, len(records) - len(kept)


def judge_summary(
    bench: Bench, records: dict[str, dict], model: str, columns: list[str], policy: str = "exclude"
) -> pd.DataFrame:
    """Judge scores per theme and MACRO, with judged / failed / missing counts.

    ``exclude`` (the published behaviour) leaves failed and missing samples out of the means;
    ``floor`` scores them 1 on every dimension. The policy is a column of the table.
    """
    if policy not in MISSING_POLICIES:
        raise ValueError(f"--missing-policy must be one of {', '.join(MISSING_POLICIES)}, not {policy!r}")
    table = summarize(
        bench, records, model, ("judge",), JUDGE_COUNT_COLUMNS, columns, 1.0 if policy == "floor" else None
    )
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
    integer_counts(canonical_order(table)).to_csv(tmp, index=False, float_format="%.4f")
    tmp.replace(path)


def covered_samples(run_dir: Path) -> set[str]:
    """Ids of a run's selection that have a score: an ok metric record, or an ok judge record."""
    from .runs import read_provenance

    selected = set(read_provenance(run_dir)["sample_ids"])
    scored = {k for k, r in run_records(run_dir).items() if r.get("status") == "ok"}
    judged = {k for k, r in run_records(run_dir, "judge*.jsonl").items() if r.get("status") == "ok"}
    return selected & (scored | judged)


def coverage_warning(runs: list[Path]) -> str | None:
    """A line when the run folders' scores rest on different samples (their means are then not
    comparable); None when they share every scored sample."""
    from .runs import PROVENANCE_FILE, read_provenance, run_label

    folders = [Path(run) for run in runs if (Path(run) / PROVENANCE_FILE).is_file()]
    covered = [covered_samples(run) for run in folders]
    if len(covered) < 2 or len({frozenset(ids) for ids in covered}) == 1:
        return None
    shared = set.intersection(*covered)
    labels = _distinct([run_label(read_provenance(run)) for run in folders], folders)
    each = ", ".join(f"{label} {len(ids)}" for label, ids in zip(labels, covered))
    return (
        f"the runs' scores rest on different samples ({each}; {len(shared)} shared): their means are not comparable; "
        f"--common compares them on the shared samples only"
    )


@dataclass
class RunSummary:
    table: pd.DataFrame
    metric_records: dict[str, dict]  # what the objective part was made from
    notes: list[str]  # what the user should know about it (ignored or left-out judge records)


def summarize_run(run_dir: Path, bench: Bench, model: str, policy: str = "exclude") -> RunSummary:
    """A run's table (objective metrics and the latest judge's scores) over ``bench``'s samples."""
    from .judge.rubrics import load_rubric

    metric_records, judge_records = run_records(run_dir), run_records(run_dir, "judge*.jsonl")
    notes: list[str] = []
    objective = None
    if metric_records or not judge_records:
        objective = summarize(bench, metric_records, model)
        objective = mark_flags(mark_unavailable(objective, bench, metric_records), bench, metric_records)
    judge = None
    if judge_records:
        judge_records, other = latest_judge(judge_records)
        if other:
            notes.append(f"{other} judge records made with another judge model or rubric are ignored (re-judge them)")
        rubric = load_rubric(next(iter(judge_records.values()))["rubric"])
        judge = judge_summary(bench, judge_records, model, rubric.columns, policy)
        macro = judge[judge["theme"] == "MACRO"].iloc[0]
        left_out = int(macro["n_judge_failed"] + macro["n_judge_missing"])
        if left_out and policy == "exclude":
            notes.append(
                f"{left_out} samples without a judge score are left out of the judge means (published behaviour); "
                f"--missing-policy floor scores them 1"
            )
    return RunSummary(combine(objective, judge), metric_records, notes)


def _common_summary(run: Path, shared: set[str]) -> pd.DataFrame:
    """A run's summary recomputed over the ``shared`` samples, with the judge policy it was made with."""
    from .bench import select
    from .runs import bench_of_run, run_label

    bench, provenance = bench_of_run(run)
    summary = pd.read_csv(run / "summary.csv") if (run / "summary.csv").is_file() else pd.DataFrame()
    policy = (
        str(summary["judge_missing_policy"].dropna().iloc[0])
        if "judge_missing_policy" in summary and summary["judge_missing_policy"].notna().any()
        else "exclude"
    )
    return summarize_run(
        run, select(bench, ids=[s.id for s in bench.samples if s.id in shared]), run_label(provenance), policy
    ).table


def _distinct(names: list[str], runs: list[Path]) -> list[str]:
    """Labels made unique by the shortest tail of each run's path that tells the runs apart."""
    out = list(names)
    for name in set(names):
        same = [i for i, n in enumerate(names) if n == name]
        if len(same) < 2:
            continue
        parts = [Path(runs[i]).resolve().parts for i in same]
        depth = next((d for d in range(1, max(map(len, parts)) + 1) if len({p[-d:] for p in parts}) == len(same)), None)
        for k, i in enumerate(same):
            out[i] = f"{name} ({'/'.join(parts[k][-depth:])})" if depth else f"{name} (#{k + 1})"
    return out


def leaderboard_inputs(runs: list[Path], published: list[str], common: bool = False) -> list[pd.DataFrame]:
    """Each run's summary named by its label (run folders), or as written (summary CSVs), then the
    shipped published rows; runs with one label are told apart by their paths. ``common``: run
    folders' summaries recomputed over the samples every one of them scored."""
    from .runs import PROVENANCE_FILE, read_provenance, run_label

    folders = [run for run in runs if (run / PROVENANCE_FILE).is_file()]
    shared = set.intersection(*(covered_samples(run) for run in folders)) if common and folders else None
    tables = []
    for run in runs:
        path = run / "summary.csv" if run.is_dir() else run
        if shared is not None and run in folders:
            table = _common_summary(run, shared)
        elif not path.is_file():
            raise FileNotFoundError(f"{path} not found (run `sparkle-bench table {run}` first)")
        else:
            table = pd.read_csv(path)
        if (run / PROVENANCE_FILE).is_file():
            table["model"] = run_label(read_provenance(run))
        tables.append(table)
    names = [str(t["model"].iloc[0]) if len(t) else "" for t in tables]
    for table, name, label in zip(tables, names, _distinct(names, runs)):
        if label != name:
            table["model"] = label
    return tables + [published_rows(name) for name in published]


def published_rows(name: str) -> pd.DataFrame:
    """A shipped leaderboard of published numbers (``source=paper``): ``sparkle_bench``, ``openve_bench``."""
    path = LEADERBOARDS / f"{name}.csv"
    if not path.is_file():
        known = ", ".join(
            sorted(p.name.removesuffix(".csv") for p in LEADERBOARDS.iterdir() if p.name.endswith(".csv"))
        )
        raise FileNotFoundError(f"no published leaderboard {name!r}; shipped: {known}")
    with path.open("rb") as handle:
        return pd.read_csv(handle)


def merge_leaderboard(tables: list[pd.DataFrame], themes: str = MACRO) -> pd.DataFrame:
    """Stack run summaries (and published rows) into one table; ``themes='all'`` keeps every theme."""
    merged = pd.concat(tables, ignore_index=True, sort=False)
    if themes != "all":
        merged = merged[merged["theme"] == themes]
    fixed = [
        c
        for c in dict.fromkeys(KEY_COLUMNS + COUNT_COLUMNS + list(FLAG_COLUMNS.values()) + JUDGE_COUNT_COLUMNS)
        if c in merged.columns
    ]
    rest = [c for c in merged.columns if c not in fixed]
    return integer_counts(canonical_order(order_rows(merged[fixed + rest])))
