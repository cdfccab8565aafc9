"""Charts as SVG data URIs (matplotlib's object API: no pyplot, no display, no global state).

Inside an ``<img>``, an SVG is only a picture: whatever text it carries (run labels) can neither
run nor change the page.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap

import pandas as pd

from ..display import higher_is_better, short_header, table_titles
from ..tables import CI_SUFFIXES


def _data_uri(figure) -> str:
    """The figure as an SVG data URI, its text kept as text (smaller, and searchable in the page)."""
    from matplotlib import rc_context

    buffer = io.BytesIO()
    with rc_context({"svg.fonttype": "none"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _count(row: pd.Series, column: str) -> str:
    """`` (n=12)`` from a count column of the row, empty when it has none (published rows)."""
    value = row.get(column)
    return "" if value is None or pd.isna(value) else f" (n={int(value)})"


def _bounds(row: pd.Series, column: str) -> tuple[float, float] | None:
    low, high = (row.get(column + suffix) for suffix in CI_SUFFIXES)
    return None if low is None or high is None or pd.isna(low) or pd.isna(high) else (float(low), float(high))


def radar(board: pd.DataFrame, dimensions: list[str]) -> str:
    """Judge dimensions per model on a 1-5 radar, each run's 95% interval shaded, n in the
    legend; published rows dashed."""
    from matplotlib.figure import Figure

    titles = table_titles(board)
    angles = [2 * math.pi * i / len(dimensions) for i in range(len(dimensions))]
    figure = Figure(figsize=(6.4, 5.2))
    axes = figure.add_subplot(projection="polar")
    for _, row in board.iterrows():
        values = [float(row[d]) for d in dimensions]
        paper = row["source"] == "paper"
        line = axes.plot(
            angles + angles[:1],
            values + values[:1],
            linestyle="--" if paper else "-",
            linewidth=1.6,
            label=f"{row['model']} (paper)" if paper else f"{row['model']}{_count(row, 'n_judged')}",
        )[0]
        bounds = [_bounds(row, d) for d in dimensions]
        if all(bounds):
            low, high = [b[0] for b in bounds], [b[1] for b in bounds]
            axes.fill_between(
                angles + angles[:1], low + low[:1], high + high[:1], color=line.get_color(), alpha=0.15, linewidth=0
            )
    axes.set_xticks(angles, ["\n".join(textwrap.wrap(titles.get(d, d), 14)) for d in dimensions], fontsize=8)
    axes.set_ylim(1, 5)
    axes.set_yticks([1, 2, 3, 4, 5], ["1", "2", "3", "4", "5"], fontsize=7)
    axes.legend(loc="upper left", bbox_to_anchor=(1.08, 1.05), fontsize=8, frameon=False)
    return _data_uri(figure)


def bars(board: pd.DataFrame, metrics: list[str]) -> str:
    """One small panel per objective metric, a bar per measured model with its 95% interval as an
    error bar, and n (samples scored) beside each model's name."""
    from matplotlib.figure import Figure

    titles = table_titles(board)
    columns = min(4, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure = Figure(figsize=(3.3 * columns, 0.45 * len(board) * rows + 1.3 * rows), layout="constrained")
    labels = [f"{row['model']}{_count(row, 'n_scored')}" for _, row in board.iterrows()]
    for i, metric in enumerate(metrics):
        axes = figure.add_subplot(rows, columns, i + 1)
        values = board[metric].astype(float).tolist()  # NaN (unavailable): no bar
        bounds = [_bounds(row, metric) for _, row in board.iterrows()]
        errors = [
            [max(0.0, v - b[0]) if b else 0.0 for v, b in zip(values, bounds)],
            [max(0.0, b[1] - v) if b else 0.0 for v, b in zip(values, bounds)],
        ]
        axes.barh(
            range(len(values)),
            values,
            color="#3e7cb1",
            xerr=errors,
            error_kw={"ecolor": "#1d2230", "capsize": 3, "elinewidth": 1},
        )
        axes.set_yticks(range(len(values)), labels if i % columns == 0 else [""] * len(values), fontsize=8)
        axes.invert_yaxis()
        better = higher_is_better(metric)
        direction = "no better direction" if better is None else "higher is better" if better else "lower is better"
        axes.set_title(f"{metric} ({short_header(metric, titles)}), {direction}", fontsize=8.5)
        axes.tick_params(axis="x", labelsize=7)
    return _data_uri(figure)
