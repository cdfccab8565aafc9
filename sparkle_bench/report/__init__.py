"""``sparkle-bench report``: one static page that opens from the file system (no server, no network).

``index.html`` holds the leaderboard, the charts (SVG data URIs), the frozen-background rates and
a gallery of every sample. Videos are linked by relative paths, so the page works wherever the
runs and the bench are; ``copy_media`` puts them next to the page so the folder can move.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from .. import __version__
from ..display import group_of, shown_columns
from ..log import warn
from ..ranks import add_ranks, pairs_table
from ..runs import bench_of_run
from ..tables import coverage_warning, latest_judge, leaderboard_inputs, merge_leaderboard, run_records
from .page import RunView, comparisons, esc, frozen_rates, gallery, leaderboard, page
from .posters import poster

INDEX = "index.html"


def _media_url(path: Path, out: Path, copy_as: str | None) -> str:
    """A relative URL to ``path`` from the page; with ``copy_as``, to a copy under ``media/``."""
    if copy_as is None:
        return quote(Path(os.path.relpath(path.resolve(), out.resolve())).as_posix())
    target = out / "media" / copy_as
    if not (target.is_file() and target.stat().st_size == path.stat().st_size):
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        try:
            os.link(path, target)
        except OSError:  # another file system
            shutil.copy2(path, target)
    return quote(f"media/{copy_as}")


def _poster_url(video: Path, out: Path) -> str | None:
    made = poster(video, out / "posters") if video.is_file() else None
    return quote(made.relative_to(out).as_posix()) if made else None


def _charts(board) -> str:
    """Radar of the judge dimensions, bars of the objective metrics; left out without matplotlib."""
    try:
        import matplotlib  # noqa: F401  (the report extra; charts.py imports it where it draws)
    except ImportError:
        warn("charts left out: matplotlib is not installed (pip install 'sparkle-bench[report]')")
        return "<p class=\"note\">Charts need matplotlib (pip install 'sparkle-bench[report]').</p>"
    from .charts import bars, radar

    shown = shown_columns(board)
    parts = []
    dims = [c for c in shown if group_of(c) == "judge" and c != "judge_overall"]
    judged = board.dropna(subset=dims) if dims else board.iloc[0:0]
    if len(judged):
        parts.append(
            f'<figure><img src="{radar(judged, dims)}" alt="judge dimensions per model (radar)">'
            '<figcaption class="note">Judge dimensions, 1-5 (MACRO), n = samples judged; shaded: 95% bootstrap '
            "interval over samples; dashed: published numbers.</figcaption></figure>"
        )
    measured = board[board["source"] != "paper"]
    metrics = [c for c in shown if group_of(c) == "metrics" and measured[c].notna().any()]
    if metrics:
        parts.append(
            f'<figure><img src="{bars(measured, metrics)}" alt="objective metrics per model (bars)">'
            '<figcaption class="note">Objective metrics (MACRO), measured runs only, n = samples scored; '
            "error bars: 95% bootstrap interval over samples (resampled within themes).</figcaption></figure>"
        )
    return f'<div class="charts">{"".join(parts)}</div>' if parts else '<p class="note">Nothing to chart.</p>'


def build_report(
    runs: list[Path],
    out: Path,
    published: Sequence[str] = (),
    title: str = "sparkle-bench report",
    copy_media: bool = False,
) -> Path:
    """Write ``out/index.html`` for run folders (each with summary.csv); returns its path."""
    out = Path(out)
    for run in runs:
        if not Path(run).is_dir():
            raise FileNotFoundError(f"{run} is not a run folder (the report needs runs, not summary CSVs)")
    inputs = leaderboard_inputs(runs, list(published))
    views, samples, benches = [], {}, set()
    for run, summary in zip(runs, inputs):
        bench, provenance = bench_of_run(run)
        benches.add(bench.name)
        samples.update({s.id: s for s in bench.samples})
        judged = run_records(run, "judge*.jsonl")
        views.append(
            RunView(
                str(summary["model"].iloc[0]),
                Path(run),
                provenance,
                summary,
                run_records(run),
                latest_judge(judged)[0] if judged else {},
            )
        )
    if len(benches) > 1:
        raise ValueError(f"one report shows one bench; these runs are on {', '.join(sorted(benches))}")
    ordered = sorted(samples.values(), key=lambda s: (s.theme, s.id))
    out.mkdir(parents=True, exist_ok=True)
    sources = {
        s.id: (
            _media_url(s.source, out, f"source/{s.theme}/{s.id}.mp4" if copy_media else None),
            _poster_url(s.source, out),
        )
        for s in ordered
    }
    for index, view in enumerate(views):
        for sample_id, record in {**view.judge, **view.metrics}.items():
            edited = Path(record["edited"]) if record.get("edited") else None
            if edited is not None and edited.is_file() and sample_id in samples:
                copy_as = f"{index}/{samples[sample_id].theme}/{sample_id}_edited.mp4" if copy_media else None
                view.videos[sample_id] = _media_url(edited, out, copy_as)
                still = _poster_url(edited, out)
                if still:
                    view.posters[sample_id] = still
    ranked = add_ranks(merge_leaderboard(inputs), list(runs), [v.label for v in views])
    for line in ranked.ranking.notes:
        warn(line)
    board = ranked.board
    themes = merge_leaderboard(inputs[: len(runs)], "all")
    runs_html = "".join(
        f"<li><b>{esc(v.label)}</b>: <code>{esc(v.provenance['model'])}</code>, "
        f"{len(v.provenance['sample_ids'])} samples, "
        f"folder <code>{esc(v.folder)}</code>, harness {esc(v.provenance.get('harness_version', '?'))} "
        f"({esc(v.provenance.get('git_hash', '?'))})</li>"
        for v in views
    )
    meta = (
        f"Bench {esc(', '.join(sorted(benches)))}, {len(ordered)} samples, {len(views)} run(s); made "
        f"{esc(time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()))} by sparkle-bench {esc(__version__)}."
    )
    coverage = coverage_warning(runs)
    if coverage:
        warn(coverage)
        note = coverage.replace("--common compares", "`sparkle-bench leaderboard --common` compares")
        meta += f"<br><b>Note</b>: {esc(note)}."
    html = page(
        title,
        meta,
        [
            (
                "leaderboard",
                "Leaderboard (MACRO: mean of the theme means)",
                leaderboard(board, "board")
                + "".join(f'<p class="note">{esc(line)}.</p>' for line in ranked.ranking.notes),
            ),
            (
                "pairs",
                f"Which runs are separable ({ranked.rank_by or 'no ranks'})",
                comparisons(pairs_table(ranked.ranking, [ranked.rank_by] if ranked.rank_by else []), ranked.rank_by),
            ),
            ("charts", "Charts", _charts(board)),
            ("frozen", "Frozen backgrounds per model and theme", frozen_rates(views)),
            ("themes", "Per theme", leaderboard(themes, "board-themes")),
            ("gallery", "Samples", gallery(ordered, sources, views)),
            ("runs", "Runs", f"<ul>{runs_html}</ul>"),
        ],
    )
    path = out / INDEX
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path
