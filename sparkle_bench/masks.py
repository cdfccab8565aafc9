"""Foreground masks in Sparkle's packed-bit npz format and the morphology the metrics need.

Format: ``mask`` = ``np.packbits`` of a bool (T, H, W) array, ``shape`` = (T, H, W).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np


class MaskError(ValueError):
    """A mask file that cannot be used for its video."""


def save_mask(path: Path, mask: np.ndarray) -> None:
    """Write a bool (T, H, W) mask atomically."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise MaskError(f"mask must be (T, H, W), got shape {mask.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, mask=np.packbits(mask.ravel()), shape=np.array(mask.shape, dtype=np.int64))
    os.replace(tmp, path)


def load_mask(path: Path) -> np.ndarray:
    """Read a packed-bit mask as bool (T, H, W)."""
    try:
        with np.load(path) as data:
            packed, shape = data["mask"], tuple(int(s) for s in data["shape"])
    except (OSError, KeyError, ValueError) as exc:
        raise MaskError(f"unreadable mask {Path(path).name}: {exc}") from exc
    total = int(np.prod(shape))
    if len(shape) != 3 or packed.size * 8 < total:
        raise MaskError(f"mask {Path(path).name}: shape {shape} does not fit {packed.size} packed bytes")
    return np.unpackbits(packed)[:total].reshape(shape).astype(bool)


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a (T, H, W) mask to ``size=(W, H)``."""
    width, height = size
    if mask.shape[1:] == (height, width):
        return mask
    stack = np.ascontiguousarray(mask.transpose(1, 2, 0).astype(np.uint8))
    out = np.stack(
        [
            cv2.resize(stack[:, :, i : i + 1], (width, height), interpolation=cv2.INTER_NEAREST)
            for i in range(stack.shape[2])
        ]
    )
    return out.astype(bool)


def morph(mask: np.ndarray, radius: int) -> np.ndarray:
    """Dilate (radius > 0) or erode (radius < 0) every frame of a (T, H, W) mask by a disc."""
    if radius == 0:
        return mask
    size = 2 * abs(radius) + 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    op = cv2.dilate if radius > 0 else cv2.erode
    # erosion treats the image border as foreground so a subject touching the edge keeps its rim
    return np.stack([op(m.astype(np.uint8), kernel, borderType=cv2.BORDER_REPLICATE) for m in mask]).astype(bool)


def find_mask(masks_dir: Path | None, theme: str, sample_id: str) -> Path | None:
    """A sample's mask in ``masks_dir``: ``{theme}/{id}.npz``, ``{id}.npz`` or ``{id}_source.npz``."""
    if masks_dir is None:
        return None
    names = (f"{sample_id}.npz", f"{sample_id}_source.npz")
    for rel in [f"{theme}/{n}" for n in names if theme] + list(names):
        path = Path(masks_dir) / rel
        if path.is_file():
            return path
    return None
