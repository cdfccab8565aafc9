"""Decoupled structure guidance: Canny edges of the source inside the (dilated) foreground mask, Canny
edges of the new background video outside it. The subject keeps its exact outline and motion; the
background's structure comes from the living plate, never from the old scene."""

from __future__ import annotations

import cv2
import numpy as np

from ..masks import morph, resize_mask


def canny(frames: np.ndarray, low: int, high: int) -> np.ndarray:
    """(T, H, W) bool edges of (T, H, W, 3) RGB frames."""
    return np.stack([cv2.Canny(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), low, high) > 0 for f in frames])


def fuse_edges(
    source: np.ndarray, background: np.ndarray, mask: np.ndarray, dilation: int, low: int = 100, high: int = 200
) -> np.ndarray:
    """(T, H, W) bool: source edges where the mask (grown by ``dilation`` px) is set, background edges elsewhere.

    The background video is resized to the source and cut to its frame count; the mask is resized
    to the frames.
    """
    count, height, width = source.shape[:3]
    if len(background) < count:
        raise ValueError(f"background video has {len(background)} frames, the source {count}")
    background = background[:count]
    if background.shape[1:3] != (height, width):
        background = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in background])
    if len(mask) != count:
        raise ValueError(f"mask has {len(mask)} frames, the source {count}")
    inside = morph(resize_mask(mask, (width, height)), dilation)
    return np.where(inside, canny(source, low, high), canny(background, low, high))


def as_video(edges: np.ndarray) -> np.ndarray:
    """White edges on black, (T, H, W, 3) uint8: the control video and its published mp4."""
    return np.repeat((edges.astype(np.uint8) * 255)[..., None], 3, axis=3)
