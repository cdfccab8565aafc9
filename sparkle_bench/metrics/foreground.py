"""Is the subject kept? Pixel fidelity and motion agreement inside the source mask."""

from __future__ import annotations

import cv2
import numpy as np

from ..pair import VideoPair
from .base import Metric, MetricUnavailable, foreground_region, need_motion

PSNR_CAP = 100.0


class ForegroundPSNR(Metric):
    """PSNR over foreground pixels only, after a per-channel gain/offset fit of edited to source.

    Replacing a background legitimately relights the subject; the fit forgives one global
    lighting change per video while blur, shift, freeze or noise still cost decibels. MSE is
    pooled over all foreground pixels of all frames; a perfect match is capped at 100 dB.
    """

    name, higher_is_better, range = "fg_psnr", True, (0.0, PSNR_CAP)

    def compute(self, pair: VideoPair) -> float:
        region = foreground_region(pair)
        src = pair.source[region].astype(np.float32)
        edt = pair.edited[region].astype(np.float32)
        fitted = np.empty_like(edt)
        for c in range(3):
            x, y = edt[:, c], src[:, c]
            var = float(x.var())
            gain = float(np.mean((x - x.mean()) * (y - y.mean()))) / var if var > 1e-6 else 0.0
            fitted[:, c] = gain * (x - x.mean()) + y.mean()
        mse = float(np.mean((src - fitted) ** 2, dtype=np.float64))
        return PSNR_CAP if mse <= 255.0**2 * 10 ** (-PSNR_CAP / 10) else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two grayscale frames (Gaussian window, sigma 1.5, as Wang et al.)."""
    a, b = a.astype(np.float32), b.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2, blur(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


class ForegroundSSIM(Metric):
    """SSIM map on luma, averaged over foreground pixels only."""

    name, higher_is_better, range = "fg_ssim", True, (-1.0, 1.0)

    def compute(self, pair: VideoPair) -> float:
        region = foreground_region(pair)
        src, edt = pair.gray("source"), pair.gray("edited")
        total = count = 0.0
        for t in np.flatnonzero(region.reshape(len(region), -1).any(axis=1)):
            values = ssim_map(src[t], edt[t])[region[t]]
            total, count = total + values.sum(), count + values.size
        return total / count


class ForegroundMotion(Metric):
    """Mean endpoint error between source and edited flow inside the mask, in % of the frame diagonal."""

    name, higher_is_better, range = "fg_motion", False, (0.0, 100.0)

    def compute(self, pair: VideoPair) -> float:
        need_motion(pair)
        region = foreground_region(pair)[pair.flow_starts()]
        if not region.any():
            raise MetricUnavailable("foreground mask is empty on every flow frame")
        diff = pair.flows("source")[region] - pair.flows("edited")[region]
        return float(np.hypot(diff[:, 0], diff[:, 1]).mean() / pair.diagonal * 100)

