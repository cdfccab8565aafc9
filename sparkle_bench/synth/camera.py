"""Weight-free tests of a clip's shot: scene cuts and a moving camera.

Cuts: hue-saturation histograms averaged over a few frames on each side of every frame boundary;
a boundary where the two averages differ by more than a Bhattacharyya distance is a cut (averaging
keeps a single flash frame or a glitched first frame from counting).

Camera: dense optical flow (OpenCV DIS) between frames a quarter second apart, sampled on a grid
of textured points. A pair of frames moves the camera when few points near the frame border (where
the background usually is) stay still *and* a RANSAC homography of all points moves the frame
corners: a pan, zoom or shake moves the whole border, a moving subject only part of it. Besides the
share of moving pairs over the clip, the longest run of consecutive moving pairs (in seconds) is
kept: a pan over the last third of a clip moves in only a third of the pairs, but all in a row.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

GRID = 6  # pixels between sampled points at the flow width
MIN_EIGEN = 1e-4  # cornerMinEigenVal of a point textured enough to trust its flow
BORDER = 0.2  # share of the width / height that counts as the border band (left, right, top)


def _histograms(frames: np.ndarray) -> np.ndarray:
    out = []
    for frame in frames:
        hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256])
        out.append(hist / max(hist.sum(), 1.0))
    return np.stack(out).astype(np.float32)


def scene_cuts(frames: np.ndarray, window: int = 4, distance: float = 0.35) -> list[int]:
    """Frame indices that start a new shot (a full window of frames is needed on both sides)."""
    hists = _histograms(frames)
    change = {
        t: cv2.compareHist(hists[t - window : t].mean(0), hists[t : t + window].mean(0), cv2.HISTCMP_BHATTACHARYYA)
        for t in range(window, len(frames) - window + 1)
    }
    cuts: list[int] = []
    for t, value in change.items():
        if value <= distance:
            continue
        if cuts and t - cuts[-1] < window:  # the same cut seen from a neighbouring boundary: keep the sharpest
            if value > change[cuts[-1]]:
                cuts[-1] = t
        else:
            cuts.append(t)
    return cuts


@dataclass(frozen=True)
class CameraMotion:
    moving_pairs: float  # share of frame pairs in which the camera moved
    still: float  # median share of still border points
    motion: float  # median homography motion, % of the frame diagonal per second
    pairs: int
    longest_move: float = 0.0  # seconds of the longest run of consecutive moving pairs

    def as_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def camera_motion(
    frames: np.ndarray,
    fps: float,
    step_seconds: float = 0.25,
    still_px: float = 0.5,
    still_fraction: float = 0.3,
    min_motion: float = 0.5,
) -> CameraMotion:
    """How much the camera moves in (T, H, W, 3) RGB frames (already at the flow width)."""
    step = max(1, round(fps * step_seconds))
    grays = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    height, width = grays[0].shape
    diagonal = float(np.hypot(height, width))
    ys, xs = np.mgrid[GRID // 2 : height - GRID // 2 : GRID, GRID // 2 : width - GRID // 2 : GRID]
    points = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float32)
    border = (points[:, 0] < BORDER * width) | (points[:, 0] > (1 - BORDER) * width) | (points[:, 1] < BORDER * height)
    corners = np.array(
        [[0, 0], [width - 1, 0], [0, height - 1], [width - 1, height - 1], [width / 2, height / 2]], np.float32
    ).reshape(-1, 1, 2)
    flow_engine = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    moving, stills, motions = [], [], []
    for start in range(0, len(grays) - step, step):
        textured = (
            cv2.cornerMinEigenVal(grays[start], 5)[points[:, 1].astype(int), points[:, 0].astype(int)] > MIN_EIGEN
        )
        if textured.sum() < 16:  # a blank frame says nothing about the camera
            continue
        flow = flow_engine.calc(grays[start], grays[start + step], None)
        p = points[textured]
        shift = flow[p[:, 1].astype(int), p[:, 0].astype(int)]
        still_border = np.hypot(shift[:, 0], shift[:, 1])[border[textured]] < still_px
        still = float(still_border.mean()) if still_border.size else 1.0
        homography, _ = cv2.findHomography(p, p + shift, cv2.RANSAC, 1.0)
        motion = 0.0
        if homography is not None:
            moved = cv2.perspectiveTransform(corners, homography) - corners
            motion = float(np.linalg.norm(moved.reshape(-1, 2), axis=1).mean() / diagonal * 100 / (step / fps))
        stills.append(still)
        motions.append(motion)
        moving.append(still < still_fraction and motion > min_motion)
    if not moving:
        return CameraMotion(0.0, 1.0, 0.0, 0)
    return CameraMotion(
        float(np.mean(moving)),
        float(np.median(stills)),
        float(np.median(motions)),
        len(moving),
        longest_run(moving) * step / fps,
    )


def longest_run(flags: list[bool]) -> int:
    """The length of the longest run of consecutive true flags."""
    longest = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        longest = max(longest, current)
    return longest
