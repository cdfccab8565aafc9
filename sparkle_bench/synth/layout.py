"""Where the pipeline writes, in Sparkle's published layout.

``{out}/intermediate_data/{theme}/{kind}/{id}.{ext}`` for the per-sample artifacts and the five
per-stage jsonl files beside them; ``{out}/{theme}/{source_video,edited_video}/{id}.mp4`` and
``{out}/prompts/{theme}_train.csv`` (+ metadata) for the training pairs; ``{out}/bench/`` for the
samples rejected at the last stage, in Sparkle-Bench's layout. ``{out}/synth/`` is ours: the
source plan and every stage's decisions.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..images import read_rgb

ARTIFACTS = {  # intermediate kind -> file extension
    "source_frame0": "png",
    "edited_frame0": "png",
    "edited_frame0_foreground_removed": "png",
    "edited_background_video": "mp4",
    "source_video_mask": "npz",
    "edited_video_canny": "mp4",
}
SCORE_FILES = (
    "edited_frame0_score",
    "edited_frame0_foreground_removed_score",
    "foreground_grounding_r1",
    "foreground_grounding_r2",
    "edited_video_score",
)


@dataclass(frozen=True)
class Layout:
    root: Path

    def artifact(self, theme: str, kind: str, sample_id: str) -> Path:
        return self.root / "intermediate_data" / theme / kind / f"{sample_id}.{ARTIFACTS[kind]}"

    def score_file(self, theme: str, name: str) -> Path:
        return self.root / "intermediate_data" / theme / f"{name}.jsonl"

    def video(self, theme: str, which: str, sample_id: str) -> Path:
        """``which``: source_video or edited_video (the training pair)."""
        return self.root / theme / which / f"{sample_id}.mp4"

    def relative(self, path: Path) -> str:
        return Path(path).relative_to(self.root).as_posix()

    @property
    def prompts(self) -> Path:
        return self.root / "prompts"

    @property
    def bench(self) -> Path:
        return self.root / "bench"

    @property
    def work(self) -> Path:
        return self.root / "synth"

    @property
    def sources(self) -> Path:
        return self.source_file((0, 1))

    def source_file(self, shard: tuple[int, int]) -> Path:
        """The plan of one shard's driver (``sources.jsonl`` when the corpus is not sharded)."""
        return self.work / ("sources.jsonl" if shard[1] == 1 else f"sources-{shard[0]}of{shard[1]}.jsonl")

    def source_files(self) -> list[Path]:
        return sorted(self.work.glob("sources*.jsonl"))

    @property
    def run_file(self) -> Path:
        """The id of the run that owns the folder now (workers of an older run stop writing)."""
        return self.shard_run_file((0, 1))

    def shard_run_file(self, shard: tuple[int, int]) -> Path:
        """Per shard: N drivers of one corpus each own their shard of the folder."""
        return self.work / ("run.json" if shard[1] == 1 else f"run-{shard[0]}of{shard[1]}.json")

    def decisions(self, stage: int) -> Path:
        return self.work / "records" / f"stage{stage}"


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file, fsync, rename: a reader sees the whole file or none."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_image(path: Path, rgb: np.ndarray) -> None:
    ok, png = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb, np.uint8), cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"cannot encode {Path(path).name} as PNG")
    write_atomic(path, png.tobytes())


def read_image(path: Path) -> np.ndarray:
    return read_rgb(path)


def remove_temp_files(root: Path) -> int:
    """Temp files a killed run left behind (only when no other run writes here)."""
    count = 0
    for path in Path(root).rglob(".*.tmp*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            count += 1
    return count
