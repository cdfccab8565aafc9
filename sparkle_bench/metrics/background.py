"""Is there a new background, and is it alive? Change, motion, freeze flag and flicker outside the mask."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..pair import VideoPair
from .base import Metric, MetricUnavailable, background_region, motion_region, need_motion

# bg_dynamics (% of diagonal per 1/8 s) under which a background counts as frozen: the geometric middle
# of the largest shortcut edit (0.0133, zoom 0.5%/frame) and the smallest real Sparkle edit (0.0184) over
# the 12 real clips (`sparkle-bench shortcut-table`, 41 frames, height 288): 1.17x from each.
FROZEN_BELOW = 0.0155
MOTION_PERCENTILE = 95
FIT_POINTS = 36  # rows of the sparse grid the camera homography is fitted on
FIT_THRESHOLD, REFIT_THRESHOLD = 1.0, 0.3  # RANSAC inlier distance (working px): first fit, refit on the residual
EDGE = 2  # working px: pixels the camera move takes within this of the frame's edge have no partner
COHERENT_COSINE = 0.5  # residual motion continued within 60 degrees by the next step counts as motion
TEXTURE_MIN = 1.5  # least structure-tensor eigenvalue (grey levels^2, frame blurred by 1 px) where flow is evidence


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


@dataclass(frozen=True)
class Motion:
    """The edited background's motion over its flow pairs, % of the diagonal per 1/8 s."""

    scene: float  # what no single camera move explains and that persists: water, leaves, traffic
    camera: float  # the dominant global (homography) motion: a pan, a zoom, a shake


def _grid(height: int, width: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([xs, ys], axis=-1)


def _fit(grid: np.ndarray, flow: np.ndarray, region: np.ndarray, threshold: float) -> np.ndarray:
    """Homography that best explains ``flow`` on a sparse grid of ``region`` (RANSAC); identity when
    too few points or no fit."""
    stride = max(2, grid.shape[0] // FIT_POINTS)
    keep = region[::stride, ::stride]
    points = grid[::stride, ::stride][keep]
    if len(points) >= 8:
        homography, _ = cv2.findHomography(points, points + flow[::stride, ::stride][keep], cv2.RANSAC, threshold)
        if homography is not None:
            return homography
    return np.eye(3)


def _induced(grid: np.ndarray, homography: np.ndarray) -> np.ndarray:
    """(H, W, 2) displacement a homography gives every pixel."""
    return cv2.perspectiveTransform(grid.reshape(-1, 1, 2), homography).reshape(grid.shape) - grid


def _coherent(now: np.ndarray, later: np.ndarray) -> np.ndarray:
    """Per pixel, the residual speed that the next step continues (same direction within 60 degrees,
    the smaller of the two speeds), else 0: fresh noise or flicker each frame moves nowhere twice."""
    a, b = np.hypot(now[..., 0], now[..., 1]), np.hypot(later[..., 0], later[..., 1])
    cosine = np.sum(now * later, axis=-1) / (a * b + 1e-6)
    return np.where(cosine > COHERENT_COSINE, np.minimum(a, b), 0.0)


def background_motion(pair: VideoPair) -> Motion:
    """Scene and camera motion of the edited background, computed once per pair.

    Per flow pair (t, t+step): a homography is fitted robustly to the background flow (the camera);
    frame t+step is warped back by it, the subject's region (and what the warp brings in from
    outside the frame) is filled with frame t so neither can move, and DIS flow between frame t and
    the stabilised frame, less a second fit that mops up what the first left, is the scene's own
    motion. A pixel counts as moving only as far as the next step continues its motion
    (:func:`_coherent`). Per pair, the 95th percentile over the background; mean over pairs.
    """
    if "bg_motion" not in pair._cache:
        need_motion(pair)
        region, gray, step = motion_region(pair), pair.gray("edited"), pair.flow_step
        flows, (height, width) = pair.flows("edited"), gray.shape[1:]
        grid = _grid(height, width)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
        residuals, camera, kept, textured = [], [], [], []
        for k, t in enumerate(pair.flow_starts()):
            first = _fit(grid, flows[k], region[k], FIT_THRESHOLD)
            target = _induced(grid, first) + grid
            keep = region[k] & (target[..., 0] >= EDGE) & (target[..., 0] <= width - 1 - EDGE)
            keep &= (target[..., 1] >= EDGE) & (target[..., 1] <= height - 1 - EDGE)
            stable = cv2.warpPerspective(
                gray[t + step],
                first,
                (width, height),
                flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                borderMode=cv2.BORDER_REPLICATE,
            )
            residual = dis.calc(gray[t], np.where(keep, stable, gray[t]), None)
            second = _fit(grid, residual, keep, REFIT_THRESHOLD)
            residuals.append(residual - _induced(grid, second))
            smooth = cv2.GaussianBlur(gray[t].astype(np.float32), (0, 0), 1.0)
            textured.append(cv2.cornerMinEigenVal(smooth, 5, 3) > TEXTURE_MIN)
            camera.append(
                np.percentile(np.hypot(*_induced(grid, first @ second)[keep].T), MOTION_PERCENTILE)
                if keep.any()
                else 0.0
            )
            kept.append(keep)
        scene = []
        for k, keep in enumerate(kept):
            if len(residuals) == 1:
                later = residuals[0]
            elif k + 1 < len(residuals):  # the next step's residual where this step's flow takes each pixel
                later = warp(residuals[k + 1], flows[k])
            else:
                later = residuals[k - 1]
            if keep.any():
                moving = np.where(textured[k], _coherent(residuals[k], later), 0.0)
                scene.append(np.percentile(moving[keep], MOTION_PERCENTILE))
        if not scene:
            raise MetricUnavailable("no background pixel stays in view over any flow pair")
        unit = pair.diagonal / 100
        pair._cache["bg_motion"] = Motion(float(np.mean(scene) / unit), float(np.mean(camera) / unit))
    return pair._cache["bg_motion"]


class BackgroundDynamics(Metric):
    """How much the edited scene itself moves, camera motion and per-frame noise excluded
    (:func:`background_motion`)."""

    name, higher_is_better, range = "bg_dynamics", True, (0.0, 100.0)
    header, order, tolerance, noise_sd = "bDyn", 60, 0.05, 0.006

    def compute(self, pair: VideoPair) -> float:
        return background_motion(pair).scene


class BackgroundCamera(Metric):
    """How much the edited background moves as a whole (pan, zoom, shake): the part of its motion
    one homography explains. Reported beside ``bg_dynamics``; neither good nor bad by itself, so
    no direction (tables show no arrow, the gate does not compare it)."""

    name, higher_is_better, range = "bg_camera", None, (0.0, 100.0)
    header, order, tolerance, noise_sd = "bCam", 65, None, 0.03

    def compute(self, pair: VideoPair) -> float:
        return background_motion(pair).camera


class BackgroundStatic(Metric):
    """1 when the edited background is frozen (bg_dynamics below the threshold), else 0.

    Its theme mean is the fraction of frozen samples.
    """

    name, higher_is_better, range = "bg_static", False, (0.0, 1.0)
    header, order, tolerance, noise_sd = "frozen", 70, 0.05, 0.0

    def compute(self, pair: VideoPair) -> float:
        return float(background_motion(pair).scene < FROZEN_BELOW)


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Sample ``image`` at ``x + flow(x)`` (backward warping)."""
    height, width = flow.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        image, grid_x + flow[..., 0], grid_y + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


class BackgroundFlicker(Metric):
    """Occlusion-aware warping error of the edited background, in [0, 1] of the intensity range.

    Frame t+step is warped onto frame t with forward flow. Pixels that fail the forward-backward
    consistency check (occluded or untrackable) contribute their plain frame difference instead,
    so flicker cannot hide behind changes that no flow explains.
    """

    name, higher_is_better, range = "bg_flicker", False, (0.0, 1.0)
    header, order, tolerance, noise_sd = "bFlicker", 80, 0.0008, 0.0002

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
            residual = np.where(
                consistent, np.abs(gray[t] - warp(gray[t + step], fwd)), np.abs(gray[t] - gray[t + step])
            )
            errors, weights = errors + residual[region[t]].sum(), weights + int(region[t].sum())
        return errors / weights / 255.0
