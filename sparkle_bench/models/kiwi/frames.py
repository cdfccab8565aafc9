"""The official Kiwi inference geometry: which frames and what size a source becomes.

Sparkle-Bench's protocol keeps the source's aspect inside a 1280x720 pixel budget with both sides
rounded down to multiples of 32 (1280x720 -> 1280x704), centre-crops the remainder, and uses at
most 81 frames trimmed to 4k+1 (the Wan VAE's temporal grid). The trainer uses the same geometry.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageOps

PIXEL_BUDGET = 1280 * 720
SIDE_MULTIPLE = 32
MAX_FRAMES = 81


def protocol_size(
    width: int, height: int, budget: int = PIXEL_BUDGET, multiple: int = SIDE_MULTIPLE
) -> tuple[int, int]:
    """(W, H): the source's aspect within ``budget`` pixels, sides rounded down to ``multiple``."""
    if width * height > budget:
        scale = math.sqrt(width * height / budget)
        width, height = int(width / scale), int(height / scale)
    width, height = width // multiple * multiple, height // multiple * multiple
    if width < multiple or height < multiple:
        raise ValueError(f"a {width}x{height} frame is too small for sides that are multiples of {multiple}")
    return width, height


def frame_count(available: int, max_frames: int = MAX_FRAMES) -> int:
    """At most ``max_frames``, trimmed down to 4k+1 (1, 5, 9, ..., 81)."""
    count = min(available, max_frames)
    if count < 1:
        raise ValueError("no frames to edit")
    return (count - 1) // 4 * 4 + 1


def centre_crop(frame_w: int, frame_h: int, size: tuple[int, int]) -> tuple[slice, slice]:
    """(rows, columns) of the centred region of a frame that has the aspect of ``size`` = (W, H)."""
    width, height = size
    if frame_h / frame_w < height / width:
        crop_w = int(frame_h / height * width)
        left = (frame_w - crop_w) // 2
        return slice(0, frame_h), slice(left, left + crop_w)
    crop_h = int(frame_w / width * height)
    top = (frame_h - crop_h) // 2
    return slice(top, top + crop_h), slice(0, frame_w)


def crop_resize(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Centre-crop ``frame`` (H, W, 3) to the aspect of ``size`` = (W, H), then resize (bicubic)."""
    width, height = size
    rows, cols = centre_crop(frame.shape[1], frame.shape[0], size)
    image = Image.fromarray(np.ascontiguousarray(frame[rows, cols]))
    if image.size != (width, height):
        image = image.resize((width, height), Image.BICUBIC)
    return np.asarray(image)


def prepare_video(
    frames: np.ndarray, budget: int = PIXEL_BUDGET, multiple: int = SIDE_MULTIPLE, max_frames: int = MAX_FRAMES
) -> np.ndarray:
    """Source frames (T, H, W, 3) uint8 -> the frames the model edits, at the protocol size."""
    size = protocol_size(frames.shape[2], frames.shape[1], budget, multiple)
    return np.stack([crop_resize(f, size) for f in frames[: frame_count(len(frames), max_frames)]])


def pad_reference(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A reference image fitted inside ``size`` = (W, H) and padded with white, centred."""
    padded = ImageOps.pad(Image.fromarray(image), size, color="white", centering=(0.5, 0.5))
    return np.asarray(padded.convert("RGB"))
