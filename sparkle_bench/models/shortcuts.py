"""Shortcut edits: a still plate behind the real subject, moved or noised so a naive motion measure
reads it as a living scene. No GPU; any bench with masks.

Each is the cheapest way to fool ``bg_dynamics`` without generating any scene motion: a pan, a zoom
or a hand-held shake of the still (camera motion, reported by ``bg_camera``), or fresh sensor noise
on every frame (no motion at all). ``still`` is the frozen plate itself: the ``still-composite``
adapter, whose subject still moves as in the source. A good living-background measure reads every
one of them as frozen; ``sparkle-bench shortcut-table`` shows what each metric reads
(docs/shortcuts.md).

The frame-making core (:func:`shortcut_background`, :func:`composite`) is pure, so the shortcut
table scores the same frames in memory that these adapters write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np

from ..bench import Bench, Sample
from ..images import read_rgb
from ..masks import MaskError, find_mask, load_mask
from ..video import probe, read_frames
from .base import AdapterError, EditedVideo, ModelAdapter
from .baselines import prompt_still
from .options import parse_options

REFERENCE_WIDTH = 1280  # pixel magnitudes are given for a frame this wide and scale with the width


@dataclass(frozen=True)
class Kind:
    """One shortcut: its magnitude's unit, the documented range and the default."""

    unit: str
    low: float
    high: float
    default: float


KINDS: dict[str, Kind] = {
    "still": Kind("none (the frozen plate)", 0.0, 0.0, 0.0),
    "pan": Kind("px per frame at 1280 wide, sideways", 1.0, 8.0, 3.0),
    "zoom": Kind("% scale per frame, zooming in", 0.1, 0.5, 0.2),
    "shake": Kind("± px at 1280 wide, a fresh random offset each frame", 2.0, 8.0, 4.0),
    "noise": Kind("sd of fresh Gaussian noise each frame, grey levels", 2.0, 8.0, 4.0),
}


def _moves(kind: str, magnitude: float, count: int, size: tuple[int, int], seed: int) -> list[np.ndarray]:
    """Per frame, the 2x3 affine matrix from plate to frame; the plate is scaled up just enough that
    no frame shows past its edge."""
    width, height = size
    centre = np.array([width / 2, height / 2])
    px = magnitude * width / REFERENCE_WIDTH
    if kind == "pan":
        scale = 1 + px * max(count - 1, 0) / width
        offsets = [np.array([(scale - 1) * width / 2 - px * t, 0.0]) for t in range(count)]
        return [np.hstack([np.eye(2) * scale, (centre * (1 - scale) + o)[:, None]]) for o in offsets]
    if kind == "zoom":
        scales = [(1 + magnitude / 100) ** t for t in range(count)]
        return [np.hstack([np.eye(2) * s, (centre * (1 - s))[:, None]]) for s in scales]
    if kind == "shake":
        scale = 1 + 2 * px / min(width, height)
        jitter = np.random.default_rng(seed).uniform(-px, px, (count, 2))
        return [np.hstack([np.eye(2) * scale, (centre * (1 - scale) + j)[:, None]]) for j in jitter]
    raise ValueError(f"no camera move for shortcut {kind!r}")


def shortcut_background(plate: np.ndarray, kind: str, magnitude: float, count: int, seed: int = 0) -> np.ndarray:
    """(count, H, W, 3) uint8 frames of the still ``plate`` (H, W, 3) under shortcut ``kind``."""
    if kind not in KINDS:
        raise ValueError(f"unknown shortcut {kind!r}; one of {', '.join(KINDS)}")
    if kind == "still":
        return np.broadcast_to(plate, (count,) + plate.shape).copy()
    if kind == "noise":
        noise = np.random.default_rng(seed).normal(0.0, magnitude, (count,) + plate.shape)
        return np.clip(plate[None].astype(np.float32) + noise, 0, 255).astype(np.uint8)
    size = (plate.shape[1], plate.shape[0])
    return np.stack(
        [
            cv2.warpAffine(plate, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            for m in _moves(kind, magnitude, count, size, seed)
        ]
    )


def composite(subject: np.ndarray, mask: np.ndarray, background: np.ndarray) -> np.ndarray:
    """The subject's frames pasted by ``mask`` (T, H, W) over ``background`` frames."""
    return np.where(mask[..., None], subject, background)


@dataclass(frozen=True)
class Options:
    magnitude: float | None = None  # in the kind's unit (KINDS); None: its default
    seed: int = 0


class Shortcut(ModelAdapter):
    """The source's subject pasted by its mask over the bench's target still (``ref_images``, else a
    painted still for the prompt), the still moved or noised as ``kind`` says."""

    kind: ClassVar[str]

    def configure(self, options: dict[str, str]) -> None:
        self.options = parse_options(Options(), options, self.name)
        spec = KINDS[self.kind]
        self.magnitude = spec.default if self.options.magnitude is None else self.options.magnitude
        if self.kind != "still" and not spec.low / 2 <= self.magnitude <= spec.high * 2:
            raise AdapterError(
                f"model {self.name!r}: magnitude {self.magnitude:g} is far outside its documented range "
                f"{spec.low:g}-{spec.high:g} ({spec.unit})"
            )

    @property
    def run_suffix(self) -> str:
        return "" if self.options.magnitude is None else f"-{self.magnitude:g}"

    def setup(self, bench: Bench) -> None:
        self.masks_dir = bench.masks_dir

    def edit(self, sample: Sample) -> EditedVideo:
        mask_path = find_mask(self.masks_dir, sample.theme, sample.id)
        if mask_path is None:
            raise AdapterError(f"{self.name} needs a foreground mask; run `sparkle-bench masks` or pass --masks")
        frames, info = read_frames(sample.source), probe(sample.source)
        mask = load_mask(mask_path)
        if mask.shape != frames.shape[:3]:
            raise MaskError(f"mask shape {mask.shape} does not match source video {frames.shape[:3]}")
        size = (info.width, info.height)
        if sample.ref_image is not None:
            plate = cv2.resize(read_rgb(sample.ref_image), size, interpolation=cv2.INTER_AREA)
        else:
            plate = prompt_still(sample.prompt, size)
        background = shortcut_background(plate, self.kind, self.magnitude, len(frames), self.options.seed)
        return EditedVideo(composite(frames, mask, background), info.fps)


class Pan(Shortcut):
    """The still slid sideways at a constant speed (``magnitude`` px per frame at 1280 wide)."""

    name, kind = "shortcut-pan", "pan"


class Zoom(Shortcut):
    """The still zooming in at a constant rate (``magnitude`` % per frame)."""

    name, kind = "shortcut-zoom", "zoom"


class Shake(Shortcut):
    """The still under a hand-held shake (a fresh offset within ± ``magnitude`` px each frame)."""

    name, kind = "shortcut-shake", "shake"


class Noise(Shortcut):
    """The still with fresh Gaussian noise of sd ``magnitude`` grey levels on every frame."""

    name, kind = "shortcut-noise", "noise"
