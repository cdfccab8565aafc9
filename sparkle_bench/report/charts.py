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


def _data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def radar(board: pd.DataFrame, dimensions: list[str]) -> str:
    """Judge dimensions per model on a 1-5 radar; published rows dashed."""
    from matplotlib.figure import Figure

    titles = table_titles(board)
    angles = [2 * math.pi * i / len(dimensions) for i in range(len(dimensions))]
    figure = Figure(figsize=(6.4, 5.2))
    axes = figure.add_subplot(projection="polar")
    for _, row in board.iterrows():
        values = [float(row[d]) for d in dimensions]
        paper = row["source"] == "paper"
        axes.plot(angles + angles[:1], values + values[:1], linestyle="--" if paper else "-", linewidth=1.6,
                  label=f"{row['model']} (paper)" if paper else str(row["model"]))
    axes.set_xticks(angles, ["\n".join(textwrap.wrap(titles.get(d, d), 14)) for d in dimensions], fontsize=8)
    axes.set_ylim(1, 5)
    axes.set_yticks([1, 2, 3, 4, 5], ["1", "2", "3", "4", "5"], fontsize=7)
    axes.legend(loc="upper left", bbox_to_anchor=(1.08, 1.05), fontsize=8, frameon=False)
    return _data_uri(figure)


def bars(board: pd.DataFrame, metrics: list[str]) -> str:
    """One small panel per objective metric, a bar per measured model."""
    from matplotlib.figure import Figure

    titles = table_titles(board)
    columns = min(4, len(metrics))
    rows = math.ceil(len(metrics) / columns)
    figure = Figure(figsize=(3.3 * columns, 0.45 * len(board) * rows + 1.3 * rows), layout="constrained")
    labels = [str(m) for m in board["model"]]
    for i, metric in enumerate(metrics):
        axes = figure.add_subplot(rows, columns, i + 1)
        values = board[metric].astype(float).tolist()  # NaN (unavailable): no bar
        axes.barh(range(len(values)), values, color="#3e7cb1")
        axes.set_yticks(range(len(values)), labels if i % columns == 0 else [""] * len(values), fontsize=8)
        axes.invert_yaxis()
        direction = "higher is better" if higher_is_better(metric) else "lower is better"
        axes.set_title(f"{metric} ({short_header(metric, titles)}), {direction}", fontsize=8.5)
        axes.tick_params(axis="x", labelsize=7)
    return _data_uri(figure)
