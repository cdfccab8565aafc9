"""Reference points that need no GPU: the no-edit floor, the frozen background, the good edit."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from ..bench import Bench, Sample
from ..images import read_rgb
from ..masks import MaskError, find_mask, load_mask
from ..video import probe, read_frames
from .base import AdapterError, EditedVideo, ModelAdapter


class Identity(ModelAdapter):
    """Returns the source unchanged: what a model that ignores the instruction scores."""

    name = "identity"

    def edit(self, sample: Sample) -> EditedVideo:
        return EditedVideo(read_frames(sample.source), probe(sample.source).fps)


def prompt_still(prompt: str, size: tuple[int, int]) -> np.ndarray:
    """A deterministic painted still for a prompt, used when the bench has no ref image."""
    width, height = size
    rng = np.random.default_rng(int(hashlib.sha1(prompt.encode()).hexdigest()[:8], 16))
    top, bottom = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    ramp = np.linspace(0, 1, height)[:, None, None]
    texture = cv2.resize(rng.random((max(2, height // 12), max(2, width // 12))), (width, height))[:, :, None]
    return np.clip(top * (1 - ramp) + bottom * ramp + (texture - 0.5) * 60, 0, 255).astype(np.uint8)


class StillComposite(ModelAdapter):
    """Source foreground pasted by mask over one still background: the frozen-background failure.

    The still is the bench's clean target background (``ref_images``) when present, so the
    background matches the prompt and only its motion is missing.
    """

    name = "still-composite"

    def setup(self, bench: Bench) -> None:
        self.masks_dir = bench.masks_dir

    def edit(self, sample: Sample) -> EditedVideo:
        mask_path = find_mask(self.masks_dir, sample.theme, sample.id)
        if mask_path is None:
            raise AdapterError("still-composite needs a foreground mask; run `sparkle-bench masks` or pass --masks")
        frames, info = read_frames(sample.source), probe(sample.source)
        mask = load_mask(mask_path)
        if mask.shape != frames.shape[:3]:
            raise MaskError(f"mask shape {mask.shape} does not match source video {frames.shape[:3]}")
        size = (info.width, info.height)
        if sample.ref_image is not None:
            still = read_rgb(sample.ref_image)
            still = cv2.resize(still, size, interpolation=cv2.INTER_AREA)
        else:
            still = prompt_still(sample.prompt, size)
        return EditedVideo(np.where(mask[..., None], frames, still[None]), info.fps)


class Reference(ModelAdapter):
    """The demo bench's shipped good edits (living backgrounds); demo bench only."""

    name = "reference"
    generates = False

    def setup(self, bench: Bench) -> None:
        if bench.reference_dir is None:
            raise AdapterError(
                f"model 'reference' needs a bench with reference edits (the demo bench); {bench.name} has none"
            )
        self.root: Path = bench.reference_dir

    def locate(self, sample: Sample, outputs: Path) -> Path | None:
        path = self.root / sample.output_relpath
        return path if path.is_file() else None

    def edit(self, sample: Sample) -> EditedVideo:
        raise AdapterError(f"{sample.id}: no reference edit in {self.root}")
