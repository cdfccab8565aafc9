"""Is there a new background, and is it alive? Change, motion, freeze flag and flicker outside the mask."""

from __future__ import annotations

import cv2
import numpy as np

from ..pair import VideoPair
from .base import Metric, background_region, need_motion

FROZEN_BELOW = 0.05  # bg_dynamics (% of diagonal per 1/8 s) under which a background counts as frozen
MOTION_PERCENTILE = 95


class BackgroundChange(Metric):
    """Mean absolute RGB difference between source and edited background, in [0, 1]."""

    name, higher_is_better, range = "bg_change", True, (0.0, 1.0)
    header, order, tolerance, noise_sd = "bChange", 50, 0.001, 0.0002

    def compute(self, pair: VideoPair) -> float:
        region = background_region(pair)
        total = count = 0.0
        for src, edt, keep in zip(pair.source, pair.edited, region):
            n = int(np.count_nonzero(keep))
            if n:
                total += sum(cv2.mean(cv2.absdiff(src, edt), mask=keep.view(np.uint8))[:3]) * n
                count += 3 * n
        return total / count / 255.0


def background_motion(pair: VideoPair) -> float:
    """Mean over flow frames of the 95th percentile of background flow magnitude, % of diagonal."""
    if "bg_motion" not in pair._cache:
        need_motion(pair)
        region = background_region(pair)[pair.flow_starts()]
        per_frame = [
            np.percentile(np.hypot(f[r][:, 0], f[r][:, 1]), MOTION_PERCENTILE)
            for f, r in zip(pair.flows("edited"), region) if r.any()
        ]
        pair._cache["bg_motion"] = float(np.mean(per_frame) / pair.diagonal * 100)
    return pair._cache["bg_motion"]


class BackgroundDynamics(Metric):
    """How much the edited background moves: robust high percentile of its optical flow."""

    name, higher_is_better, range = "bg_dynamics", True, (0.0, 100.0)
    header, order, tolerance, noise_sd = "bDyn", 60, 0.03, 0.01

    def compute(self, pair: VideoPair) -> float:
        return background_motion(pair)


class BackgroundStatic(Metric):
    """1 when the edited background is frozen (bg_dynamics below the threshold), else 0.

    Its theme mean is the fraction of frozen samples.
    """

    name, higher_is_better, range = "bg_static", False, (0.0, 1.0)
    header, order, tolerance, noise_sd = "frozen", 70, 0.05, 0.0

    def compute(self, pair: VideoPair) -> float:
        return float(background_motion(pair) < FROZEN_BELOW)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (backward warping)."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class BackgroundFlicker(Metric):
    """Occlusion-aware warping error of the edited background, in [0, 1] of the intensity range.

    Frame t+step is warped onto frame t with forward flow. Pixels that fail the forward-backward
    consistency check (occluded or untrackable) contribute their plain frame difference instead,
    so flicker cannot hide behind changes that no flow explains.
    """

    name, higher_is_better, range = "bg_flicker", False, (0.0, 1.0)
    header, order, tolerance, noise_sd = "bFlicker", 80, 0.0007, 0.0002

    def compute(self, pair: VideoPair) -> float:
        need_motion(pair)
        region = background_region(pair)
        gray, step = pair.gray("edited").astype(np.float32), pair.flow_step
        forward, backward = pair.flows("edited"), pair.flows("edited", backward=True)
        errors, weights = 0.0, 0
        for k, t in enumerate(pair.flow_starts()):
            fwd, bwd_at_target = forward[k], warp(backward[k], forward[k])
            mismatch = np.sum((fwd + bwd_at_target) ** 2, axis=-1)
            bound = 0.01 * (np.sum(fwd**2, axis=-1) + np.sum(bwd_at_target**2, axis=-1)) + 0.5
            consistent = mismatch <= bound
            residual = np.where(consistent, np.abs(gray[t] - warp(gray[t + step], fwd)), np.abs(gray[t] - gray[t + step]))
            errors, weights = errors + residual[region[t]].sum(), weights + int(region[t].sum())
        return errors / weights / 255.0
