"""The source corpus and the sample ids: a folder of clips or a CSV / JSONL list of them (OpenVE-3M's
metadata, for one), each clip named by its content, recorded in ``synth/sources*.jsonl``.

A clip's id is ``{prefix}_{theme}_{fingerprint}``: the fingerprint hashes the file's size and three
64 KiB pieces of its bytes (start, middle, end), so a byte-identical copy or the same folder under
another path is the same sample (reported once, as a duplicate), and a re-run, a larger corpus, a
shard or another machine never renames one. The theme is drawn from the fingerprint too. The plan
file caches each path's fingerprint by size and mtime, so planning a known corpus reads no clip,
and new entries are written in one append (one fsync per run, not per clip).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..records import read_jsonl
from .config import ConfigError
from .layout import Layout

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".m4v")
PIECE = 1 << 16


def list_corpus(path: str, column: str) -> list[Path]:
    """Every clip of the corpus, sorted: a folder searched recursively, or a list file's column."""
    if not path:
        raise ConfigError("[corpus] path is not set: a folder of clips, or a .csv / .jsonl listing them")
    root = Path(path)
    if root.is_dir():
        return sorted(
            Path(dirpath, name)
            for dirpath, _, names in os.walk(root, followlinks=True)
            for name in names
            if name.lower().endswith(VIDEO_SUFFIXES)
        )
    if root.suffix in (".csv", ".jsonl"):
        import pandas as pd

        table = pd.read_csv(root, dtype=str) if root.suffix == ".csv" else pd.read_json(root, lines=True, dtype=False)
        if column not in table:
            raise ConfigError(
                f"{root.name} has no column {column!r} ([corpus] column); columns: {', '.join(map(str, table.columns))}"
            )
        return sorted({Path(os.path.normpath(root.parent / str(v))) for v in table[column].dropna()})
    raise ConfigError(f"[corpus] path {path} is neither a folder nor a .csv / .jsonl list")


def fingerprint(path: Path, size: int) -> str:
    """sha1 of the size and the first, middle and last 64 KiB (the whole file when it is small)."""
    digest = hashlib.sha1(str(size).encode())
    with open(path, "rb") as handle:
        if size <= 3 * PIECE:
            digest.update(handle.read())
        else:
            for offset in (0, (size - PIECE) // 2, size - PIECE):
                handle.seek(offset)
                digest.update(handle.read(PIECE))
    return digest.hexdigest()


@dataclass
class SourcePlan:
    """``samples``: one ``{id, theme, source}`` per distinct clip (the first path seen); ``new_duplicates``:
    paths found in this planning that repeat an earlier clip's bytes; ``unreadable``: path -> cause."""

    samples: list[dict] = field(default_factory=list)
    new_duplicates: list[tuple[str, str]] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    duplicates: int = 0


def in_shard(sample_id: str, shard: tuple[int, int]) -> bool:
    """Shard ``i`` of ``N`` holds the ids whose fingerprint is ``i`` modulo ``N`` (copies stay together)."""
    index, count = shard
    return count == 1 or int(sample_id.rsplit("_", 1)[-1][:12], 16) % count == index


def read_plan(layout: Layout) -> dict[str, dict]:
    """Path -> its latest plan entry, over every shard's plan file."""
    return {entry["source"]: entry for path in layout.source_files() for entry in read_jsonl(path) if "source" in entry}


def plan_sources(
    layout: Layout, clips: list[Path], themes: list[str], prefix: str, shard: tuple[int, int] = (0, 1)
) -> SourcePlan:
    """The samples of ``clips`` in ``shard`` (every clip is fingerprinted once; the shard is chosen by it).
    Of byte-identical clips, the one planned first is the sample, the others are duplicates."""
    known, plan, entries, fresh = read_plan(layout), SourcePlan(), [], []
    for clip in clips:
        source = str(clip)
        try:
            stat = os.stat(clip)
            entry = known.get(source)
            if entry is None or (entry.get("size"), entry.get("mtime")) != (stat.st_size, stat.st_mtime_ns):
                value = fingerprint(clip, stat.st_size)
                theme = themes[int(value[:12], 16) % len(themes)]
                entry = {
                    "source": source,
                    "size": stat.st_size,
                    "mtime": stat.st_mtime_ns,
                    "theme": theme,
                    "id": f"{prefix}_{theme}_{value[:12]}",
                    "order": len(known) + len(fresh),
                }
                fresh.append(entry)
            entries.append(entry)
        except OSError as exc:
            plan.unreadable[source] = f"{type(exc).__name__}: {exc.strerror or exc}"
    first: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: e.get("order", 0)):
        original = first.setdefault(entry["id"], entry["source"])
        if original != entry["source"]:
            plan.duplicates += 1
            if entry in fresh:
                plan.new_duplicates.append((entry["source"], original))
        elif in_shard(entry["id"], shard):
            plan.samples.append({"id": entry["id"], "theme": entry["theme"], "source": entry["source"]})
    if fresh:
        append_lines(layout.source_file(shard), fresh)
    return plan


def append_lines(path: Path, records: list[dict]) -> None:
    """Many JSONL records in one write and one fsync (after a newline if a killed run tore the last line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        torn = False
        if handle.seek(0, os.SEEK_END) > 0:
            handle.seek(-1, os.SEEK_END)
            torn = handle.read(1) != b"\n"
        handle.write(
            ("\n" if torn else "").encode() + "".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode()
        )
        handle.flush()
        os.fsync(handle.fileno())
