"""The report's HTML: leaderboard, charts, frozen-background rates and the per-sample gallery.

Every string that comes from data (prompts, labels, ids, judge answers, paths) goes through
:func:`esc`; the page embeds no data in scripts, so nothing from data is ever code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import pandas as pd

from ..bench import Sample
from ..display import (
    GROUP_TITLES,
    MARKS,
    cell,
    column_order,
    group_of,
    judge_titles,
    number,
    short_header,
    shown_columns,
    table_titles,
)
from ..tables import CI_SUFFIXES, MACRO, RANK_COLUMN, RANK_NOTE, RANK_SUFFIXES, UNAVAILABLE_COLUMN, parse_unavailable
from .assets import CSS, JS

FROZEN = 0.5  # a sample's bg_static at or above this is a frozen background


def esc(value) -> str:
    return escape(str(value), quote=True)


@dataclass
class RunView:
    """What the page shows of one run."""

    label: str
    folder: Path
    provenance: dict
    summary: pd.DataFrame
    metrics: dict[str, dict]  # id -> samples.jsonl record
    judge: dict[str, dict]  # id -> judge.jsonl record (one judge)
    videos: dict[str, str] = field(default_factory=dict)  # id -> URL of the edited video
    posters: dict[str, str] = field(default_factory=dict)  # id -> URL of its poster frame


def _value_cell(row: pd.Series, column: str) -> str:
    unavailable = parse_unavailable(row.get(UNAVAILABLE_COLUMN))
    text = cell(row[column], column, unavailable)
    kind = ' class="na"' if text == "n/a" else ' class="none"' if text == "-" else ""
    note = f' title="unavailable for {unavailable[column]} sample(s)"' if column in unavailable else ""
    sort_value = "" if pd.isna(row[column]) else f"{float(row[column]):.6g}"
    low, high = (row.get(column + suffix) for suffix in CI_SUFFIXES)
    spread = ""
    if low is not None and high is not None and not pd.isna(low) and not pd.isna(high) and text not in ("n/a", "-"):
        spread = (
            f'<small class="ci" title="95% bootstrap interval {number(float(low))} to {number(float(high))}">'
            f" ±{number((float(high) - float(low)) / 2)}</small>"
        )
    letters = row.get(column + RANK_SUFFIXES[1])
    if isinstance(letters, str) and text not in ("n/a", "-"):
        tip = f"rank {row.get(column + RANK_SUFFIXES[0])}; runs sharing a letter are not separable"
        spread += f'<small class="group" title="{esc(tip)}"> {esc(letters)}</small>'
    return f'<td data-v="{sort_value}"{kind}{note}>{esc(text)}{spread}</td>'


def _rank_cell(row: pd.Series) -> str:
    """The rank range, sorted by its best then worst rank; empty for unranked rows."""
    text = row.get(RANK_COLUMN)
    if not isinstance(text, str):
        return '<td data-v="" class="none"></td>'
    best, _, worst = text.partition("-")
    return f'<td data-v="{int(best) + int(worst or best) / 1000:.3f}">{esc(text)}</td>'


def leaderboard(board: pd.DataFrame, table_id: str) -> str:
    """Sortable; published rows in their own body, marked, sorted apart from the measured ones."""
    titles = table_titles(board)
    columns = shown_columns(board)
    show_theme = board["theme"].nunique() > 1
    ranked = RANK_COLUMN in board and board[RANK_COLUMN].notna().any()
    keys = ["model"] + ([RANK_COLUMN] if ranked else []) + (["theme"] if show_theme else [])
    groups = [(g, [c for c in columns if group_of(c) == g]) for g in ("counts", "metrics", "judge", "other")]
    groups = [(g, cs) for g, cs in groups if cs]
    top = f'<th colspan="{len(keys)}"></th>' + "".join(
        f'<th class="group" colspan="{len(cs)}">{esc(GROUP_TITLES[g])}</th>' for g, cs in groups
    )
    heads = [f"<th>{k}</th>" for k in keys] + [
        f'<th title="{esc(titles.get(c, c))}">{esc(short_header(c, titles))}</th>' for _, cs in groups for c in cs
    ]
    bodies = []
    for kind, part in (("measured", board[board["source"] != "paper"]), ("paper", board[board["source"] == "paper"])):
        rows = []
        for _, row in part.iterrows():
            badge = '<span class="badge">paper</span>' if kind == "paper" else ""
            rows.append(
                "<tr>"
                + f"<td>{esc(row['model'])}{badge}</td>"
                + (_rank_cell(row) if ranked else "")
                + (f"<td>{esc(row['theme'])}</td>" if show_theme else "")
                + "".join(_value_cell(row, c) for _, cs in groups for c in cs)
                + "</tr>"
            )
        if rows:
            bodies.append(f'<tbody class="{kind}">' + "".join(rows) + "</tbody>")
    legend = "; ".join(
        f'<span class="entry">{esc(short_header(c, titles))} = {esc(titles.get(c, c))}</span>'
        for _, cs in groups
        for c in cs
    )
    return (
        f'<div class="scroll"><table class="board sortable" id="{table_id}">'
        f"<thead><tr>{top}</tr><tr>{''.join(heads)}</tr></thead>"
        f"{''.join(bodies)}</table></div>"
        f'<p class="legend">{legend}. ↑ higher is better, ↓ lower. {esc(MARKS)}. '
        f"±: half the width of the 95% bootstrap "
        f"interval over samples (hover for its bounds). {esc(RANK_NOTE) + '. ' if ranked else ''}"
        f"Click a header to sort. "
        f'Published rows (<span class="badge">paper</span>) are the paper\'s numbers as reported: '
        f"they are sorted on their own "
        f"and never averaged with measured rows.</p>"
    )


def comparisons(pairs: pd.DataFrame, rank_by: str | None) -> str:
    """Every pair of runs on the ranked metric: difference, what it could detect, Holm's p, verdict."""
    if pairs.empty:
        return '<p class="note">No ranks: they need at least two run folders with per-sample values.</p>'
    body = "".join(
        f"<tr><td>{esc(r.runs)}</td><td>{esc(r.verdict)}</td><td>{r.n}</td><td>{number(r.difference)}</td>"
        f"<td>{number(r.detectable) if math.isfinite(r.detectable) else 'none'}</td>"
        f"<td>{r.p_holm:.3g}</td></tr>"
        for r in pairs.itertuples()
    )
    heads = "".join(f"<th>{esc(h)}</th>" for h in (rank_by, "verdict", "n", "difference", "detectable", "p (Holm)"))
    return (
        f'<table class="board" id="pairs"><thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table>'
        '<p class="legend">Each pair on the samples every ranked run scored: difference = MACRO of the '
        "per-sample "
        "differences (first minus second); detectable = the smallest difference this many samples with this spread "
        "separate (none: too few samples); p: two-sided sign-flip test, Holm-adjusted over the metric's pairs. "
        "Tied pairs are not separable: read their order as unknown.</p>"
    )


def _frozen_counts(run: RunView) -> dict[str, tuple[int, int]]:
    """Per theme and MACRO: (frozen samples, samples with a bg_static value)."""
    counts: dict[str, list[int]] = {}
    for record in run.metrics.values():
        value = (record.get("metrics") or {}).get("bg_static") if record.get("status") == "ok" else None
        if value is not None:
            for key in (record.get("theme", "?"), MACRO):
                counts.setdefault(key, [0, 0])
                counts[key][0] += int(value >= FROZEN)
                counts[key][1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def frozen_rates(runs: list[RunView]) -> str:
    """bg_static per model and theme: the share of samples whose new background does not move,
    with the counts it rests on and the samples selected but not scored."""
    rows = [(r, r.summary.set_index("theme")) for r in runs if "bg_static" in r.summary]
    if not rows:
        return '<p class="note">No run has bg_static (the frozen-background flag).</p>'
    themes = sorted({t for _, s in rows for t in s.index if t != MACRO}) + [MACRO]
    body = []
    for run, summary in rows:
        counts, cells = _frozen_counts(run), []
        for theme in themes:
            rate = summary["bg_static"].get(theme) if theme in summary.index else None
            if rate is None or pd.isna(rate):
                cells.append('<td class="none">-</td>')
                continue
            frozen, scored = counts.get(theme, (0, 0))
            total = summary["n_total"].get(theme) if "n_total" in summary else None
            unscored = (
                f"; {int(total) - scored} not scored"
                if total is not None and not pd.isna(total) and int(total) > scored
                else ""
            )
            cells.append(
                f'<td style="background: rgba(196, 50, 10, {0.08 + 0.6 * float(rate):.2f})">{float(rate) * 100:.0f}%'
                f' <small class="count">({frozen}/{scored}{unscored})</small></td>'
            )
        body.append(f"<tr><td>{esc(run.label)}</td>{''.join(cells)}</tr>")
    head = "".join(f"<th>{esc(t)}</th>" for t in themes)
    return (
        f'<table class="frozen" id="frozen"><thead><tr><th>model</th>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        '<p class="legend">Share of scored samples with a frozen background (bg_static = 1), per theme, '
        "with (frozen/scored "
        "samples); MACRO = mean of the theme rates, its counts over every theme.</p>"
    )


def _state(run: RunView, sample_id: str) -> tuple[list[str], str, bool]:
    """Filter tokens of one model's result (ok / frozen / failed / missing, and the protocol flags
    short / orientation of a scored sample), why it is not ok, and whether its edited video is
    worth showing (it decoded)."""
    record, judged = run.metrics.get(sample_id, {}), run.judge.get(sample_id, {})
    status, reason = record.get("status"), record.get("reason", "")
    if status is None and judged:
        status, reason = judged.get("status"), judged.get("reason", "")
    tokens, why = [], ""
    if status in (None, "missing"):
        tokens.append("failed" if reason.startswith("inference failed") else "missing")
        why = reason or "not scored yet"
    elif status == "failed":
        tokens.append("failed")
        why = reason
    if judged.get("status") == "failed":
        tokens.append("failed")
        why = why or f"judge: {judged.get('reason', '')}"
    if (record.get("metrics") or {}).get("bg_static") is not None and record["metrics"]["bg_static"] >= FROZEN:
        tokens.append("frozen")
    if status == "ok":
        for flag, reason in (record.get("flags") or {}).items():
            tokens.append(flag)
            why = why or f"{flag}: {reason}"
    return tokens or ["ok"], why, status == "ok"


def _scores(run: RunView, sample_id: str, titles: dict[str, str]) -> str:
    record, judged = run.metrics.get(sample_id, {}), run.judge.get(sample_id, {})
    rows = []
    measured = sorted((record.get("metrics") or {}).items(), key=lambda item: column_order(item[0]))
    for column, value in measured + list((judged.get("judge") or {}).items()):
        reason = (record.get("unavailable") or {}).get(column)
        shown = "n/a" if value is None else number(float(value))
        note = f' title="{esc(reason)}"' if reason else ""
        rows.append(
            f'<tr><td title="{esc(titles.get(column, column))}">{esc(short_header(column, titles))}</td>'
            f"<td{note}>{esc(shown)}</td></tr>"
        )
    return f'<table class="kv">{"".join(rows)}</table>' if rows else ""


def _reasoning(run: RunView, sample_id: str) -> str:
    judged = run.judge.get(sample_id)
    if not judged or not judged.get("answers"):
        return ""
    return f"<details><summary>judge's answer</summary><pre>{esc(judged['answers'][-1])}</pre></details>"


def _video(url: str, poster: str | None) -> str:
    still = f' poster="{esc(poster)}"' if poster else ""
    return f'<video src="{esc(url)}"{still} preload="none" muted loop playsinline controls></video>'


def _options(pairs) -> str:
    return "".join(f'<option value="{esc(v)}">{esc(t)}</option>' for v, t in pairs)


def gallery(samples: list[Sample], sources: dict[str, tuple[str, str | None]], runs: list[RunView]) -> str:
    """One card per sample: prompt, source and every model's edit side by side in one row, scores,
    filters; ``sources``: id -> (video URL, poster URL)."""
    titles = judge_titles(sorted({r.provenance["bench"] for r in runs}))
    themes = sorted({s.theme for s in samples})
    filters = (
        '<div class="filters">'
        '<label>theme <select id="f-theme"><option value="">all</option>'
        f"{_options((t, t) for t in themes)}</select></label>"
        '<label>model <select id="f-model"><option value="">all</option>'
        f"{_options((f'm{i}', r.label) for i, r in enumerate(runs))}</select></label>"
        '<label>failure <select id="f-failure"><option value="">any result</option>'
        '<option value="frozen">frozen background</option><option value="failed">failed</option>'
        '<option value="missing">missing</option><option value="short">short (protocol)</option>'
        '<option value="orientation">other orientation</option></select></label>'
        '<span id="f-count" class="note"></span></div>'
    )
    cards = []
    for sample in samples:
        figures = [f'<figure class="source">{_video(*sources[sample.id])}<figcaption>source</figcaption></figure>']
        for i, run in enumerate(runs):
            tokens, why, playable = _state(run, sample.id)
            url = run.videos.get(sample.id)
            note = f"{tokens[0]}: {why}" if why else "edited video not found"
            media = (
                _video(url, run.posters.get(sample.id))
                if url and playable
                else f'<div class="placeholder">{esc(note)}</div>'
            )
            flags = run.metrics.get(sample.id, {}).get("flags") or {}
            titled = {t: f' title="{esc(flags[t])}"' for t in tokens if t in flags}
            tags = "".join(f' <span class="tag"{titled.get(t, "")}>{esc(t)}</span>' for t in tokens if t != "ok")
            figures.append(
                f'<figure class="edit" data-model="m{i}" data-state="{esc(" ".join(tokens))}">{media}'
                f"<figcaption>{esc(run.label)}{tags}</figcaption>"
                f"{_scores(run, sample.id, titles)}{_reasoning(run, sample.id)}</figure>"
            )
        scene = f" · {esc(sample.subtheme)}: {esc(sample.scene)}" if sample.subtheme and sample.scene else ""
        cards.append(
            f'<article class="sample" data-theme="{esc(sample.theme)}" id="s-{esc(sample.id)}">'
            f'<header><b>{esc(sample.theme)}</b><code>{esc(sample.id)}</code><span class="note">{scene}</span>'
            f'<button class="play" type="button">play together</button></header>'
            f'<p class="prompt">{esc(sample.prompt)}</p>'
            f'<div class="videos" style="--videos: {len(figures)}">{"".join(figures)}</div></article>'
        )
    return filters + "".join(cards)


def page(title: str, meta: str, sections: list[tuple[str, str, str]]) -> str:
    """The whole document: ``sections`` are (anchor, heading, HTML body)."""
    nav = " · ".join(f'<a href="#{a}">{esc(h)}</a>' for a, h, _ in sections)
    body = "".join(f'<section id="{a}"><h2>{esc(h)}</h2>{html}</section>' for a, h, html in sections)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{esc(title)}</title><style>{CSS}</style></head><body><h1>{esc(title)}</h1><p class="meta">{meta}</p>'
        f'<nav class="meta">{nav}</nav>{body}<script>{JS}</script></body></html>\n'
    )
