"""The source corpus and the sample ids: a folder of clips or a CSV / JSONL list of them (OpenVE-3M's
metadata, for one), each clip given a theme and an id once, recorded in ``synth/sources.jsonl``.

Themes go round-robin over the configured ones in corpus order; ids count up per theme
(``Sparkle_location_000000``). Both are fixed the first time a clip is seen, so a re-run, a larger
corpus or another machine never renames a sample.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..records import append_jsonl, read_jsonl
from .config import ConfigError
from .layout import Layout

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")


def list_corpus(path: str, column: str) -> list[Path]:
    """Every clip of the corpus, sorted: a folder searched recursively, or a list file's column."""
    if not path:
        raise ConfigError("[corpus] path is not set: a folder of clips, or a .csv / .jsonl listing them")
    root = Path(path)
    if root.is_dir():
        return sorted(p.resolve() for p in root.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
    if root.suffix in (".csv", ".jsonl"):
        table = pd.read_csv(root, dtype=str) if root.suffix == ".csv" else pd.DataFrame([json.loads(l) for l in root.read_text().splitlines() if l.strip()])
        if column not in table:
            raise ConfigError(f"{root.name} has no column {column!r} ([corpus] column); columns: {', '.join(map(str, table.columns))}")
        return sorted({(root.parent / str(v)).resolve() for v in table[column].dropna()})
    raise ConfigError(f"[corpus] path {path} is neither a folder nor a .csv / .jsonl list")


def plan_sources(layout: Layout, clips: list[Path], themes: list[str], prefix: str) -> list[dict]:
    """``{id, theme, source}`` for every clip ever planned; new clips get the next ids."""
    planned = list(read_jsonl(layout.sources))
    known = {entry["source"] for entry in planned}
    per_theme = {theme: sum(1 for e in planned if e["theme"] == theme) for theme in themes}
    for clip in clips:
        if str(clip) in known:
            continue
        theme = themes[len(planned) % len(themes)]
        entry = {"id": f"{prefix}_{theme}_{per_theme[theme]:06d}", "theme": theme, "source": str(clip)}
        per_theme[theme] += 1
        append_jsonl(layout.sources, entry)
        planned.append(entry)
    return planned
