"""Synthetic source videos for speed and memory checks (``benchmarks/kiwi_inference.py``,
``benchmarks/gpu_check.py``)."""

from __future__ import annotations

import numpy as np


def smooth_video(count: int, width: int, height: int) -> np.ndarray:
    """Moving colour waves and a disc: content with the smoothness of real video (x264 and tiling
    seams behave on it as on footage; on random pixels they do not)."""
    t, y, x = np.arange(count)[:, None, None], np.arange(height)[None, :, None], np.arange(width)[None, None, :]
    wave = 128 + 70 * np.sin((x + 12 * t) / 57.0) * np.cos((y - 7 * t) / 41.0)
    disc = ((x - width / 2 - 20 * t) ** 2 + (y - height / 2) ** 2) < (height / 5) ** 2
    rgb = np.stack([wave, np.roll(wave, width // 7, 2), 255 - wave], -1)
    rgb[np.broadcast_to(disc, wave.shape)] = (230, 200, 40)
    return np.clip(rgb, 0, 255).astype(np.uint8)
