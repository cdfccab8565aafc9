"""Metrics, looked up lazily by name; each has a card in the repository's ``metrics/`` folder."""

from __future__ import annotations

from ..registry import Registry
from .base import Metric, MetricUnavailable

METRICS = Registry(
    "metric",
    {
        "fg_psnr": "sparkle_bench.metrics.foreground:ForegroundPSNR",
        "fg_ssim": "sparkle_bench.metrics.foreground:ForegroundSSIM",
        "fg_motion": "sparkle_bench.metrics.foreground:ForegroundMotion",
        "fg_lpips": "sparkle_bench.metrics.learned:ForegroundLPIPS",
        "bg_change": "sparkle_bench.metrics.background:BackgroundChange",
        "bg_dynamics": "sparkle_bench.metrics.background:BackgroundDynamics",
        "bg_camera": "sparkle_bench.metrics.background:BackgroundCamera",
        "bg_static": "sparkle_bench.metrics.background:BackgroundStatic",
        "bg_flicker": "sparkle_bench.metrics.background:BackgroundFlicker",
        "clip_text": "sparkle_bench.metrics.learned:ClipText",
        "clip_consistency": "sparkle_bench.metrics.learned:ClipConsistency",
    },
)

# Objective metrics that need no weights: what `eval` computes unless told otherwise.
DEFAULT_METRICS = ("fg_psnr", "fg_ssim", "fg_motion", "bg_change", "bg_dynamics", "bg_camera", "bg_static",
                   "bg_flicker")


def load_metrics(names: list[str] | tuple[str, ...]) -> list[Metric]:
    return [METRICS.load(name)() for name in names]


__all__ = ["METRICS", "DEFAULT_METRICS", "Metric", "MetricUnavailable", "load_metrics"]
