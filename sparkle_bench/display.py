"""Tables people can read: split into groups (counts, objective metrics, judge dimensions), short
headers with a legend, 2-3 significant digits, fitted to the terminal; or every column as CSV,
Markdown or JSON for pipes. The files on disk always hold every column at full precision.
"""

from __future__ import annotations

import math
import sys

import pandas as pd

from .bench import Bench
from .tables import (
    CI_SUFFIXES,
    RANK_COLUMN,
    RANK_NOTE,
    RANK_SUFFIXES,
    UNAVAILABLE_COLUMN,
    canonical_order,
    column_rank,
    companion_columns,
    integer_counts,
    is_companion,
    parse_unavailable,
)

GROUP_TITLES = {"counts": "counts", "metrics": "objective metrics", "judge": "judge, 1-5", "other": "values"}
COUNT_HEADERS = {
    "n_total": "N",
    "n_scored": "ok",
    "n_failed": "fail",
    "n_missing": "miss",
    "n_short": "short",
    "n_orientation": "orient",
    "n_judged": "j.ok",
    "n_judge_failed": "j.fail",
    "n_judge_missing": "j.miss",
}
KEY_HEADERS = {"source": "src", "judge_missing_policy": "judge missing-policy"}
ROW_KEYS = ["model", "theme", RANK_COLUMN, "source", "bench"]  # what a row is, most telling first
MAX_KEY_WIDTH = 28  # longer run labels wrap inside their cell
MARKS = "n/a: unavailable for every sample (see the warnings); *: mean over the samples that had it; -: not measured"
CI_NOTE = "±: half the 95% bootstrap interval over samples (bounds: summary.csv, --format csv/json)"


def judge_titles(benches: list[str] | None = None) -> dict[str, str]:
    """``judge_<key>`` -> the dimension's title in the rubrics of ``benches`` (default: every
    built-in rubric); a column two rubrics name differently gets both names."""
    from .judge.rubrics import builtin_names, load_rubric, rubric_for_bench

    rubrics = [rubric_for_bench(b) for b in benches] if benches else [load_rubric(n) for n in builtin_names()]
    names: dict[str, list[str]] = {"judge_overall": ["judge mean over the dimensions"]}
    for rubric in rubrics:
        for dim in rubric.dimensions:
            if dim.title not in names.setdefault(dim.column, []):
                names[dim.column].append(dim.title)
    return {column: " / ".join(titles) for column, titles in names.items()}


def table_titles(table: pd.DataFrame) -> dict[str, str]:
    return judge_titles(sorted(table["bench"].dropna().astype(str).unique()) if "bench" in table else None)


def group_of(column: str) -> str:
    if column.startswith("n_"):
        return "counts"
    if column.startswith("judge_"):
        return "judge"
    from .metrics import declared

    return "metrics" if declared(column) is not None else "other"


def higher_is_better(column: str) -> bool | None:
    """A score's direction: from the metric's class, judge scores up; None when unknown (or informational)."""
    from .metrics import declared

    if column.startswith("judge_"):
        return True
    metric = declared(column)
    return metric.higher_is_better if metric is not None else None


def short_header(column: str, titles: dict[str, str]) -> str:
    if column in COUNT_HEADERS:
        return COUNT_HEADERS[column]
    if column == "judge_overall":
        base = "avg"
    elif column in titles and " / " not in titles[column]:
        base = "".join(word[0] for word in titles[column].split() if word[0].isalpha()).upper()
    elif column.startswith("judge_"):
        base = "".join(word[0] for word in column.removeprefix("judge_").split("_")).upper()
    else:
        from .metrics import declared

        metric = declared(column)
        base = (metric.header if metric is not None else "") or column
    arrow = {True: "↑", False: "↓", None: ""}[higher_is_better(column)]
    return base + arrow


def number(value: float) -> str:
    """Three significant digits, no exponent (at most 4 decimals)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"  # 0, inf (regress: what one sample could detect), nan
    decimals = 2 - math.floor(math.log10(abs(value)))
    return f"{value:.{min(max(decimals, 0), 4)}f}"


def cell(value, column: str, unavailable: dict[str, int]) -> str:
    """A value as shown; ``n/a`` when the metric could not apply, ``-`` when it was not measured."""
    if value is None or pd.isna(value):
        return "n/a" if column in unavailable else "-"
    if pd.api.types.is_bool(value):
        return "yes" if value else "no"
    if column.startswith("n_") or pd.api.types.is_integer(value):
        return str(int(value))
    return number(float(value)) + ("*" if column in unavailable else "")


def column_order(column: str) -> tuple[int, float]:
    """Where a column goes in every view (:func:`sparkle_bench.tables.column_rank`)."""
    return column_rank(column)


def with_interval(value: str, row: pd.Series, column: str) -> str:
    """``value ±h``, h = half the 95% interval's width, when the row has the interval."""
    low, high = (row.get(column + suffix) for suffix in CI_SUFFIXES)
    if low is None or high is None or pd.isna(low) or pd.isna(high) or value in ("n/a", "-"):
        return value
    return f"{value} ±{number((float(high) - float(low)) / 2)}"


def with_group(value: str, row: pd.Series, column: str) -> str:
    """``value letters`` when the row has the column's letters (runs sharing a letter are tied)."""
    letters = row.get(column + RANK_SUFFIXES[1])
    return value if not isinstance(letters, str) or value in ("n/a", "-") else f"{value} {letters}"


def value_columns(table: pd.DataFrame) -> list[str]:
    """Numeric columns, the known ones in a fixed order (counts, subject, background, judge);
    intervals and letters are shown with their value, never as columns of their own."""
    columns = [
        c
        for c in table.columns
        if c != UNAVAILABLE_COLUMN and not is_companion(c) and pd.api.types.is_numeric_dtype(table[c])
    ]
    return sorted(columns, key=column_order)


def shown_columns(table: pd.DataFrame) -> list[str]:
    """Value columns worth a look: with a value somewhere, or marked unavailable somewhere."""
    marked = set().union(*[parse_unavailable(v) for v in table.get(UNAVAILABLE_COLUMN, pd.Series([], dtype=object))])
    return [c for c in value_columns(table) if table[c].notna().any() or c in marked]


def key_columns(table: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(text columns that tell rows apart, text columns constant over the table). Published rows
    are marked in the model's cell, so ``source`` needs no column of its own."""
    text = [
        c
        for c in dict.fromkeys(ROW_KEYS + list(table.columns))
        if c in table and c != UNAVAILABLE_COLUMN and not is_companion(c) and c not in value_columns(table)
    ]
    sources_in_model = "model" in table and set(table.get("source", pd.Series([], dtype=object)).dropna()) <= {
        "measured",
        "paper",
    }
    varying = [
        c for c in text if (table[c].nunique() > 1 or c == RANK_COLUMN) and not (c == "source" and sources_in_model)
    ]
    constant = [c for c in text if c not in varying and table[c].nunique() == 1]
    if not varying and text:
        keep = "model" if "model" in text else next(c for c in table.columns if c in text)
        varying, constant = [keep], [c for c in constant if c != keep]
    return varying, constant


def _key_cells(rows: pd.DataFrame, column: str) -> list[str]:
    if column == "model" and "source" in rows:
        return [f"{m} (paper)" if s == "paper" else str(m) for m, s in zip(rows["model"], rows["source"])]
    return ["" if pd.isna(v) else str(v) for v in rows[column]]


def unavailable_lines(bench: Bench, records: dict[str, dict]) -> list[str]:
    """One line per cause: which metrics, for how many of the scored samples, and what to do."""
    scored = [records[s.id] for s in bench.samples if records.get(s.id, {}).get("status") == "ok"]
    causes: dict[tuple[str, tuple[str, ...]], int] = {}
    for record in scored:
        by_reason: dict[str, list[str]] = {}
        for name, reason in (record.get("unavailable") or {}).items():
            by_reason.setdefault(reason, []).append(name)
        for reason, names in by_reason.items():
            key = (reason, tuple(sorted(names, key=column_order)))
            causes[key] = causes.get(key, 0) + 1
    lines = []
    for (reason, names), n in causes.items():
        cause, _, hint = reason.partition(" (")  # "no foreground mask (run `sparkle-bench masks` ...)"
        hint = hint[:-1] if hint.endswith(")") and ("`" in hint or "--" in hint) else ""
        cause = cause if hint else reason
        lines.append(f"{', '.join(names)}: {cause} for {n}/{len(scored)} samples" + (f": {hint}" if hint else ""))
    return lines


def select_columns(table: pd.DataFrame, wanted: list[str] | None) -> pd.DataFrame:
    """Keep the row keys plus the named columns: full names, short headers or a group
    (counts, metrics, judge); an unknown name is an error that lists the known ones."""
    if not wanted:
        return table
    titles = table_titles(table)
    values = value_columns(table)
    names = {c.lower(): [c] for c in values}
    names.update({short_header(c, titles).rstrip("↑↓").lower(): [c] for c in values})
    for column in values:
        names.setdefault(group_of(column), []).append(column)
    unknown = [w for w in wanted if w.lower() not in names]
    if unknown:
        raise ValueError(
            f"unknown column(s) {', '.join(unknown)}; this table has {', '.join(values)} "
            f"(or a group: {', '.join(sorted({group_of(c) for c in values}))})"
        )
    chosen = [c for w in wanted for c in names[w.lower()]]
    companions = {i for c in chosen for i in companion_columns(c)}
    keep = [c for c in table.columns if (c not in values and not is_companion(c)) or c in chosen or c in companions]
    return table[keep]


def _chunks(keys: list[int], values: list[tuple[str, int]], width: int) -> list[list[str]]:
    """Value columns split so each printed table, with its key columns, fits ``width``."""
    base = sum(w + 3 for w in keys)
    chunks: list[list[str]] = [[]]
    used = base
    for column, w in values:
        if chunks[-1] and used + w + 3 > width:
            chunks.append([])
            used = base
        chunks[-1].append(column)
        used += w + 3
    return chunks


def legend_lines(notes: list[str], width: int) -> list[str]:
    """Notes packed into lines of at most ``width``, two spaces apart, never broken inside a note
    (one longer than a line gets a line of its own)."""
    lines: list[str] = []
    for note in notes:
        if lines and len(lines[-1]) + 2 + len(note) <= width:
            lines[-1] += "  " + note
        else:
            lines.append(note)
    return lines


def render(table: pd.DataFrame, title: str, width: int, ci: bool = False) -> list:
    """Rich renderables: a title line, one table per group (split further if too wide), the legend;
    ``ci``: each value with ``±`` half its interval."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    titles = table_titles(table)
    keys, constant = key_columns(table)
    rows = table.reset_index(drop=True)
    facts = [
        str(v) if c in ROW_KEYS else f"{KEY_HEADERS.get(c, c)}: {v}"
        for c in constant
        for v in rows[c].dropna().unique()
    ]
    out: list = [Text(" · ".join([title] + facts), style="bold")]
    marks = [parse_unavailable(v) for v in table.get(UNAVAILABLE_COLUMN, pd.Series([""] * len(table)))]
    key_cells = {c: _key_cells(rows, c) for c in keys}
    key_width = {
        c: min(MAX_KEY_WIDTH, max([len(KEY_HEADERS.get(c, c))] + [len(v) for v in key_cells[c]])) for c in keys
    }
    wraps = any(len(v) > MAX_KEY_WIDTH for c in keys for v in key_cells[c])
    legend: dict[str, str] = {}
    marked = False
    shown = shown_columns(rows)
    for group in ("counts", "metrics", "judge", "other"):
        columns = [c for c in shown if group_of(c) == group]
        cells = {c: [cell(v, c, marks[i]) for i, v in enumerate(rows[c])] for c in columns}
        if ci:
            cells = {c: [with_interval(text, rows.iloc[i], c) for i, text in enumerate(cells[c])] for c in columns}
        cells = {c: [with_group(text, rows.iloc[i], c) for i, text in enumerate(cells[c])] for c in columns}
        headers = {c: short_header(c, titles) for c in columns}
        widths = [(c, max([len(headers[c])] + [len(v) for v in cells[c]])) for c in columns]
        for part in _chunks(list(key_width.values()), widths, width) if columns else []:
            view = Table(
                title=GROUP_TITLES[group],
                title_justify="left",
                box=box.SIMPLE_HEAD,
                show_edge=False,
                pad_edge=False,
                show_lines=wraps,
            )  # a blank line between rows, so a wrapped label never reads as another row
            for c in keys:
                view.add_column(KEY_HEADERS.get(c, c), max_width=MAX_KEY_WIDTH, overflow="fold")
            for c in part:
                view.add_column(headers[c], justify="right", no_wrap=True)
            for i in range(len(rows)):
                view.add_row(*[key_cells[c][i] for c in keys], *[cells[c][i] for c in part])
            out.append(view)
        for c in columns:
            if headers[c].rstrip("↑↓") != c:
                legend[headers[c].rstrip("↑↓")] = titles.get(c, c)
            marked = marked or any(v in ("n/a", "-") or v.endswith("*") for v in cells[c])
    notes = [f"{short}={full}" for short, full in legend.items()]
    if any(h.endswith(("↑", "↓")) for h in (short_header(c, titles) for c in shown)):
        notes.append("↑ higher is better, ↓ lower")
    if marked:
        notes.append(MARKS)
    if ci and any(c + CI_SUFFIXES[0] in rows for c in shown):
        notes.append(CI_NOTE)
    if any(c + RANK_SUFFIXES[1] in rows for c in shown):
        notes.append(RANK_NOTE)
    out += [Text(line, style="dim") for line in legend_lines(notes, width)]
    return out


def _text(value) -> str:
    return "" if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value).replace("|", "\\|")


def to_markdown(table: pd.DataFrame, ci: bool = False) -> str:
    """Every column by its full name, numbers as in the terminal view (``ci``: with ``±``), empty
    cells for missing text; for PR comments and docs."""
    table = table.reset_index(drop=True)
    marks = [parse_unavailable(v) for v in table.get(UNAVAILABLE_COLUMN, pd.Series([""] * len(table)))]
    values = set(shown_columns(table))
    columns = [
        c
        for c in table.columns
        if c in values or (c != UNAVAILABLE_COLUMN and not is_companion(c) and c not in value_columns(table))
    ]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" if c in values else "---" for c in columns) + "|"]
    for i, row in table.iterrows():
        cells = [
            with_group(with_interval(cell(row[c], c, marks[i]), row, c) if ci else cell(row[c], c, marks[i]), row, c)
            if c in values
            else _text(row[c])
            for c in columns
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if ci and any(c + CI_SUFFIXES[0] in table for c in values):
        lines += ["", CI_NOTE]
    if any(c + RANK_SUFFIXES[1] in table for c in values):
        lines += ["", RANK_NOTE]
    return "\n".join(lines)


def show(
    table: pd.DataFrame, title: str, fmt: str = "table", columns: list[str] | None = None, ci: bool = False
) -> None:
    """Print ``table`` to stdout: fitted to the terminal (``table``), or ``csv``/``md``/``json``;
    every format in one column order. ``ci``: values with ``±`` (table, md); csv and json always
    carry the interval bounds."""
    table = canonical_order(select_columns(table, columns))
    if fmt == "csv":
        integer_counts(table).to_csv(sys.stdout, index=False, float_format="%.4f")
    elif fmt == "json":
        print(integer_counts(table).to_json(orient="records", indent=2))
    elif fmt == "md":
        print(to_markdown(table, ci))
    else:
        from rich.console import Console

        console = Console(highlight=False)
        for item in render(table, title, console.width, ci):
            console.print(item)
