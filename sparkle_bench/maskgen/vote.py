"""Anchor frames and the pixel-wise majority vote over propagation passes."""

from __future__ import annotations

import numpy as np


def anchor_frames(num_frames: int, fps: float, anchor_fps: float = 2.0) -> list[int]:
    """Frame indices about ``1 / anchor_fps`` seconds apart, starting at frame 0."""
    step = max(1, round(fps / anchor_fps))
    return list(range(0, num_frames, step))


def majority_vote(passes: list[np.ndarray]) -> np.ndarray:
    """Foreground where more than half of the passes say so (a tie is background).

    Each pass is a bool (T, H, W) mask of the whole video propagated from one anchor frame; a
    pass that drifts onto the background or loses the subject is outvoted by the others.
    """
    if not passes:
        raise ValueError("majority vote over no passes")
    shape = passes[0].shape
    if any(p.shape != shape for p in passes):
        raise ValueError(f"passes disagree in shape: {sorted({p.shape for p in passes})}")
    votes = np.zeros(shape, dtype=np.uint16)
    for mask in passes:
        votes += mask.astype(bool)
    return votes * 2 > len(passes)
