"""Masks for every source video of a bench, written beside it with a checksum manifest.

``{out}/{theme}/{id}.npz`` in Sparkle's packed-bit format; ``{out}/MANIFEST.json`` records the
generator settings and, per mask, its sha1 and the source's, so a re-run skips what is done and
still valid, and a mask edited or truncated since is regenerated. A video that fails (unreadable,
no subject found) prints one line, is listed in the manifest's ``failed`` and retried next time.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..bench import Bench
from ..log import console, problem
from ..masks import save_mask
from ..records import file_digest
from ..video import VideoError, probe, read_frames
from .vote import anchor_frames, majority_vote

MANIFEST = "MANIFEST.json"


class Detector(Protocol):
    name: str

    def boxes(self, frame: np.ndarray) -> np.ndarray: ...


class Propagator(Protocol):
    def passes(self, video: Path, anchors: dict[int, np.ndarray]) -> list[np.ndarray]: ...


@dataclass
class MaskCounts:
    made: int = 0
    cached: int = 0
    failed: int = 0


def video_mask(
    source: Path, detector: Detector, propagator: Propagator, anchor_fps: float = 2.0
) -> tuple[np.ndarray, int]:
    """The voted (T, H, W) mask of one video and how many passes voted."""
    info = probe(source)
    anchors = anchor_frames(info.num_frames, info.fps, anchor_fps)
    frames = read_frames(source, indices=anchors)
    boxes = {index: found for index, frame in zip(anchors, frames) if len(found := detector.boxes(frame))}
    if not boxes:
        raise ValueError(f"no foreground subject found on any of {len(anchors)} anchor frames")
    return mask_from_anchors(source, boxes, propagator)


def mask_from_anchors(source: Path, anchors: dict[int, np.ndarray], propagator: Propagator) -> tuple[np.ndarray, int]:
    """The voted mask from boxes found elsewhere (a detector, or a VLM's grounding records):
    ``anchors`` maps frame index -> (N, 4) xyxy pixel boxes; frames without boxes are left out."""
    anchors = {index: boxes for index, boxes in anchors.items() if len(boxes)}
    if not anchors:
        raise ValueError("no anchor frame has a box")
    passes = propagator.passes(source, anchors)
    return majority_vote(passes), len(passes)


def _write_manifest(path: Path, manifest: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)


def generate_masks(
    bench: Bench, out: Path, detector: Detector, propagator: Propagator, settings: dict, anchor_fps: float = 2.0
) -> MaskCounts:
    out.mkdir(parents=True, exist_ok=True)
    path = out / MANIFEST
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    if manifest.get("settings") != settings:  # other detector, checkpoint or anchors: nothing is reused
        manifest = {"settings": settings, "masks": {}}
    manifest["failed"] = {}
    counts = MaskCounts()
    for sample in bench.samples:
        rel = f"{sample.theme}/{sample.id}.npz"
        target = out / rel
        entry = manifest["masks"].get(rel)
        source_digest = file_digest(sample.source) if sample.source.is_file() else None
        if (
            entry
            and target.is_file()
            and entry["sha1"] == file_digest(target)
            and entry["source_sha1"] == source_digest
        ):
            counts.cached += 1
            continue
        try:
            mask, votes = video_mask(sample.source, detector, propagator, anchor_fps)
        except (VideoError, ValueError, RuntimeError) as exc:
            problem(
                "mask failed",
                f"{sample.theme}/{sample.id}",
                str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
            manifest["failed"][rel] = str(exc)[:300]
            manifest["masks"].pop(rel, None)
            counts.failed += 1
        else:
            save_mask(target, mask)
            manifest["masks"][rel] = {
                "sha1": file_digest(target),
                "source_sha1": source_digest,
                "shape": list(mask.shape),
                "passes": votes,
                "coverage": round(float(mask.mean()), 4),
            }
            counts.made += 1
        _write_manifest(path, manifest)
    _write_manifest(path, manifest)
    console.print(f"masks: {counts.made} made, {counts.cached} already there, {counts.failed} failed -> {out}")
    return counts
