"""Is the subject kept? Pixel fidelity and motion agreement inside the source mask."""

from __future__ import annotations

import cv2
import numpy as np

from ..pair import VideoPair
from .base import Metric, MetricUnavailable, foreground_region, need_motion

PSNR_CAP = 100.0


class ForegroundPSNR(Metric):
    """PSNR over foreground pixels only, after a per-channel gain that matches the edited
    foreground's mean colour to the source's.

    Replacing a background legitimately relights the subject; one global gain per channel and
    video forgives that, while blur, shift, freeze or noise still cost decibels (zero-mean noise
    leaves the gain at 1). MSE is pooled over all foreground pixels of all frames; a perfect
    match is capped at 100 dB.
    """

    name, higher_is_better, range = "fg_psnr", True, (0.0, PSNR_CAP)
    header, order, tolerance, noise_sd = "fPSNR", 10, 0.02, 0.02

    def compute(self, pair: VideoPair) -> float:
        region = foreground_region(pair)
        src = pair.source[region].astype(np.float32)
        edt = pair.edited[region].astype(np.float32)
        gain = src.mean(axis=0) / np.maximum(edt.mean(axis=0), 1.0)
        mse = float(np.mean((src - np.clip(edt * gain, 0, 255)) ** 2, dtype=np.float64))
        return PSNR_CAP if mse <= 255.0**2 * 10 ** (-PSNR_CAP / 10) else min(PSNR_CAP, 10 * np.log10(255.0**2 / mse))


def ssim_map(a: np.ndarray, b: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of two grayscale frames (Gaussian window, sigma 1.5, as Wang et al.),
    with window statistics taken over ``weight`` pixels only (normalised convolution), so
    background pixels next to the subject do not leak into a foreground score."""
    a, b, w = a.astype(np.float32), b.astype(np.float32), weight.astype(np.float32)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    blur = lambda x: cv2.GaussianBlur(x, (11, 11), 1.5)  # noqa: E731
    norm = np.maximum(blur(w), 1e-6)
    mean = lambda x: blur(x * w) / norm  # noqa: E731
    mu_a, mu_b = mean(a), mean(b)
    var_a, var_b, cov = mean(a * a) - mu_a**2, mean(b * b) - mu_b**2, mean(a * b) - mu_a * mu_b
    return ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))


class ForegroundSSIM(Metric):
    """SSIM on luma with windows restricted to the foreground, averaged over foreground pixels."""

    name, higher_is_better, range = "fg_ssim", True, (-1.0, 1.0)
    header, order, tolerance, noise_sd = "fSSIM", 20, 0.01, 0.001

    def compute(self, pair: VideoPair) -> float:
        region = foreground_region(pair)
        src, edt = pair.gray("source"), pair.gray("edited")
        total = count = 0.0
        for t in np.flatnonzero(region.reshape(len(region), -1).any(axis=1)):
            values = ssim_map(src[t], edt[t], region[t])[region[t]]
            total, count = total + values.sum(), count + values.size
        return total / count


class ForegroundMotion(Metric):
    """Mean endpoint error between source and edited flow inside the mask, in % of the frame diagonal."""

    name, higher_is_better, range = "fg_motion", False, (0.0, 100.0)
    header, order, tolerance, noise_sd = "fMotion", 30, 0.006, 0.001

    def compute(self, pair: VideoPair) -> float:
        need_motion(pair)
        region = foreground_region(pair)[pair.flow_starts()]
        if not region.any():
            raise MetricUnavailable("foreground mask is empty on every flow frame")
        diff = pair.flows("source")[region] - pair.flows("edited")[region]
        return float(np.hypot(diff[:, 0], diff[:, 1]).mean() / pair.diagonal * 100)
