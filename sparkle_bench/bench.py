"""Benchmarks as data: Sparkle-Bench (per-theme CSV + metadata JSONL) and OpenVE-Bench (one CSV).

Loading validates the whole manifest and reports every problem, one line each, before any
work starts; a bench that loads is safe to run.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath

import pandas as pd

SPARKLE_THEMES = ("location", "season", "time", "style")
CSV_COLUMNS = ("edited_type", "prompt", "original_video")


class BenchError(ValueError):
    """A bench that fails validation; ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Sample:
    """One bench row: a source video and the instruction for its new background."""

    id: str
    theme: str
    prompt: str
    source: Path
    subtheme: str | None = None
    scene: str | None = None
    original_scene: str | None = None
    ref_image: Path | None = None

    @property
    def output_relpath(self) -> str:
        """Where a model's edit goes: Sparkle's ``{theme}/{subtheme}---{scene_key}/{id}_edited.mp4``."""
        if self.subtheme is not None and self.scene is not None:
            return f"{self.theme}/{self.subtheme}---{self.scene.replace(' ', '_')}/{self.id}_edited.mp4"
        return f"{self.theme}/{self.id}_edited.mp4"


@dataclass(frozen=True)
class Bench:
    name: str
    root: Path
    samples: tuple[Sample, ...]
    checksum: str
    masks_dir: Path | None = None
    reference_dir: Path | None = None
    selection: dict = field(default_factory=dict)

    @property
    def themes(self) -> list[str]:
        return sorted({s.theme for s in self.samples})

    def with_samples(self, samples: list[Sample], **selection) -> "Bench":
        return replace(self, samples=tuple(samples), selection={**self.selection, **selection})


def _checked_relpath(root: Path, text: str, where: str, problems: list[str]) -> Path | None:
    rel = PurePosixPath(str(text).replace("\\", "/"))
    if rel.is_absolute() or str(text).startswith(("/", "\\")) or (len(str(text)) > 1 and str(text)[1] == ":"):
        problems.append(f"{where}: video path {text!r} is absolute; paths must be relative to the bench root")
        return None
    resolved = Path(os.path.normpath(root / rel))  # lexical: symlinked videos inside the root are fine
    if not resolved.is_relative_to(root):
        problems.append(f"{where}: video path {text!r} escapes the bench root")
        return None
    return resolved


def _read_csv(path: Path, problems: list[str]) -> pd.DataFrame | None:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        problems.append(f"{path.name}: unreadable CSV ({exc})")
        return None
    missing = [c for c in CSV_COLUMNS if c not in frame.columns]
    if missing:
        problems.append(f"{path.name}: missing column(s) {', '.join(missing)} (need {', '.join(CSV_COLUMNS)})")
        return None
    return frame


def _read_jsonl(path: Path, problems: list[str]) -> dict[str, dict]:
    records: dict[str, dict] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            sample_id = str(record["id"])
        except (json.JSONDecodeError, KeyError, TypeError):
            problems.append(f"{path.name}:{lineno}: not a JSON object with an 'id'")
            continue
        if sample_id in records:
            problems.append(f"{path.name}:{lineno}: duplicate id {sample_id}")
        records[sample_id] = record
    return records


def _checksum(files: list[Path], videos: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for path in sorted(videos):
        size = path.stat().st_size if path.exists() else -1
        digest.update(f"{path.name}:{size}\n".encode())
    return digest.hexdigest()[:16]


def load_sparkle(root: Path, themes: list[str] | None = None, name: str = "sparkle") -> Bench:
    """Load a Sparkle-Bench copy in its published layout, validating every row."""
    root = Path(root).resolve()
    if not root.is_dir():
        raise BenchError(str(root), [f"bench root {root} does not exist"])
    found = sorted(p.name[: -len("_bench.csv")] for p in root.glob("*_bench.csv"))
    themes = list(themes) if themes else found
    problems: list[str] = []
    if not found:
        problems.append(f"no {{theme}}_bench.csv files in {root}")
    samples: list[Sample] = []
    seen: dict[str, str] = {}
    manifests: list[Path] = []
    for theme in themes:
        csv_path, meta_path = root / f"{theme}_bench.csv", root / f"{theme}_metadata.jsonl"
        if not csv_path.is_file():
            problems.append(f"theme {theme!r}: {csv_path.name} not found (themes here: {', '.join(found) or 'none'})")
            continue
        if not meta_path.is_file():
            problems.append(f"theme {theme!r}: {meta_path.name} not found")
            continue
        manifests += [csv_path, meta_path]
        frame, metadata = _read_csv(csv_path, problems), _read_jsonl(meta_path, problems)
        if frame is None:
            continue
        csv_ids: set[str] = set()
        for row_no, row in enumerate(frame.itertuples(index=False), 2):
            where = f"{csv_path.name}:{row_no}"
            source = _checked_relpath(root, row.original_video, where, problems)
            sample_id = PurePosixPath(str(row.original_video).replace("\\", "/")).stem
            if sample_id in seen:
                problems.append(f"{where}: duplicate id {sample_id} (also in {seen[sample_id]})")
                continue
            seen[sample_id] = where
            csv_ids.add(sample_id)
            meta = metadata.get(sample_id)
            if meta is None:
                problems.append(f"{where}: id {sample_id} has no record in {meta_path.name}")
                continue
            info = meta.get("metadata") or {}
            keyword = str(info.get("chosen_keyword", ""))
            subtheme, sep, scene = keyword.partition(": ")
            if not sep or not subtheme.strip() or not scene.strip() or "---" in keyword or "/" in keyword:
                problems.append(f"{where}: chosen_keyword {keyword!r} of {sample_id} is not 'subtheme: scene'")
                continue
            if row.edited_type != theme:
                problems.append(f"{where}: edited_type {row.edited_type!r} does not match file theme {theme!r}")
            if source is None:
                continue
            if not source.is_file():
                problems.append(f"{where}: source video {row.original_video} not found")
                continue
            ref = root / "ref_images" / theme / f"{sample_id}.png"
            samples.append(
                Sample(
                    id=sample_id,
                    theme=theme,
                    prompt=str(row.prompt),
                    source=source,
                    subtheme=subtheme.strip(),
                    scene=scene.strip(),
                    original_scene=info.get("original_scene"),
                    ref_image=ref if ref.is_file() else None,
                )
            )
        for orphan in sorted(set(metadata) - csv_ids):
            problems.append(f"{meta_path.name}: id {orphan} has no row in {csv_path.name}")
    if problems:
        raise BenchError(f"Sparkle-Bench at {root}", problems)
    masks = root / "masks"
    reference = root / "reference"
    return Bench(
        name=name,
        root=root,
        samples=tuple(sorted(samples, key=lambda s: (s.theme, s.id))),
        checksum=_checksum(manifests, [s.source for s in samples]),
        masks_dir=masks if masks.is_dir() else None,
        reference_dir=reference if reference.is_dir() else None,
    )


def load_openve(csv_path: Path) -> Bench:
    """Load OpenVE-Bench from its CSV; videos resolve against the CSV's folder."""
    csv_path = Path(csv_path).resolve()
    root, problems = csv_path.parent, []
    frame = _read_csv(csv_path, problems)
    samples: list[Sample] = []
    seen: set[str] = set()
    for row_no, row in enumerate(frame.itertuples(index=False) if frame is not None else [], 2):
        where = f"{csv_path.name}:{row_no}"
        source = _checked_relpath(root, row.original_video, where, problems)
        sample_id = PurePosixPath(str(row.original_video).replace("\\", "/")).stem
        if sample_id in seen:
            problems.append(f"{where}: duplicate id {sample_id}")
            continue
        seen.add(sample_id)
        if source is not None and not source.is_file():
            problems.append(f"{where}: source video {row.original_video} not found")
        elif source is not None:
            samples.append(Sample(id=sample_id, theme=str(row.edited_type), prompt=str(row.prompt), source=source))
    if problems:
        raise BenchError(f"OpenVE-Bench {csv_path.name}", problems)
    masks = root / "masks"
    return Bench(
        name="openve",
        root=root,
        samples=tuple(sorted(samples, key=lambda s: (s.theme, s.id))),
        checksum=_checksum([csv_path], [s.source for s in samples]),
        masks_dir=masks if masks.is_dir() else None,
    )


def open_bench(spec: str, themes: list[str] | None = None) -> Bench:
    """``demo`` (built on first use), a Sparkle-Bench folder, or an OpenVE-Bench CSV."""
    if spec == "demo":
        from .demo import ensure_demo_bench

        return load_sparkle(ensure_demo_bench(), themes, name="demo")
    path = Path(spec).expanduser()
    if path.suffix == ".csv":
        bench = load_openve(path)
        return select(bench, themes=themes) if themes else bench
    return load_sparkle(path, themes)


def _stable_order(sample: Sample) -> str:
    return hashlib.sha1(sample.id.encode()).hexdigest()


def select(
    bench: Bench,
    themes: list[str] | None = None,
    ids: list[str] | None = None,
    limit: int | None = None,
    per_theme: int | None = None,
) -> Bench:
    """Subset by theme, id list, a total ``limit`` or ``per_theme``; deterministic and stratified."""
    samples = list(bench.samples)
    selection: dict = {}
    if themes:
        unknown = sorted(set(themes) - set(bench.themes))
        if unknown:
            raise BenchError(
                bench.name, [f"unknown theme(s) {', '.join(unknown)}; this bench has {', '.join(bench.themes)}"]
            )
        samples = [s for s in samples if s.theme in themes]
        selection["themes"] = sorted(themes)
    if ids:
        known = {s.id for s in samples}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise BenchError(bench.name, [f"id {i} is not in the selected bench" for i in unknown])
        samples = [s for s in samples if s.id in set(ids)]
        selection["ids"] = sorted(ids)
    if limit is not None or per_theme is not None:
        by_theme: dict[str, list[Sample]] = {}
        for s in sorted(samples, key=_stable_order):
            by_theme.setdefault(s.theme, []).append(s)
        order = sorted(by_theme)
        picked: list[Sample] = []
        for rank in range(max((len(v) for v in by_theme.values()), default=0)):
            if per_theme is not None and rank >= per_theme:
                break
            picked += [by_theme[t][rank] for t in order if rank < len(by_theme[t])]
        samples = picked[:limit] if limit is not None else picked
        selection.update({k: v for k, v in (("limit", limit), ("per_theme", per_theme)) if v is not None})
    samples.sort(key=lambda s: (s.theme, s.id))
    return bench.with_samples(samples, **selection)
