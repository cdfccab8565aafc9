"""Outputs a model already wrote: Sparkle's canonical layout or a flat ``{id}_edited.mp4`` folder."""

from __future__ import annotations

from pathlib import Path

from ..bench import Bench, Sample
from ..log import warn
from .base import AdapterError, EditedVideo, ModelAdapter

SUFFIX = "_edited.mp4"


class Precomputed(ModelAdapter):
    name = "precomputed"
    generates = False

    def __init__(self, arg: str | None = None) -> None:
        if not arg:
            raise AdapterError("precomputed needs a folder: --model precomputed:DIR")
        self.root = Path(arg).expanduser().resolve()
        if not self.root.is_dir():
            raise AdapterError(f"precomputed: folder {self.root} does not exist")
        self._by_id: dict[str, list[Path]] = {}

    @property
    def spec(self) -> str:
        return f"precomputed:{self.root}"

    def setup(self, bench: Bench) -> None:
        wanted = {s.id for s in bench.samples}
        stray: list[Path] = []
        for path in sorted(self.root.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            sample_id = path.name[: -len(SUFFIX)] if path.name.endswith(SUFFIX) else None
            if sample_id in wanted:
                self._by_id.setdefault(sample_id, []).append(path)
            else:
                stray.append(path)
        if stray:
            names = ", ".join(str(p.relative_to(self.root)) for p in stray[:3])
            warn(f"precomputed: ignoring {len(stray)} file(s) that are no bench output, e.g. {names}")

    def locate(self, sample: Sample, outputs: Path) -> Path | None:
        canonical = self.root / sample.output_relpath
        if canonical.is_file():
            return canonical
        found = self._by_id.get(sample.id, [])
        if len(found) > 1:
            warn(f"{sample.theme}/{sample.id}: {len(found)} candidate outputs; using {found[0].relative_to(self.root)}")
        return found[0] if found else None

    def edit(self, sample: Sample) -> EditedVideo:
        raise AdapterError(f"{sample.id}: no output in {self.root} (precomputed outputs cannot be generated)")
