"""The metric interface: one aligned pair in, one number out, with its direction and range."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..masks import morph
from ..pair import VideoPair

FG_ERODE = 0.008  # of the working height: keep boundary pixels (matting halo) out of foreground scores
BG_DILATE = 0.06  # of the working height: keep the subject and the flow it drags along out of background scores


class MetricUnavailable(Exception):
    """The metric cannot be computed for this sample; the message says why (recorded, never 0)."""


class Metric(ABC):
    """One aligned pair in, one number out. Everything tables, reports and the gate need to know
    about a metric is declared here, on its class, so a new metric is one file."""

    name: ClassVar[str]  # the score column in samples.jsonl and summary.csv
    higher_is_better: ClassVar[bool | None]  # None: informational (shown with no arrow, never gated)
    range: ClassVar[tuple[float, float]]
    needs_mask: ClassVar[bool] = True
    description: ClassVar[str] = ""
    header: ClassVar[str] = ""  # short header in terminal tables and reports (default: the name)
    order: ClassVar[float] = 1000.0  # position among score columns in every view (built-ins: 10, 20, ... 100)
    # The gate (``regress``), in the metric's unit. ``tolerance``: the smallest worsening of a mean
    # worth failing a build for; None: the gate reports the metric as untested (``--tolerance NAME=X``
    # sets one). Built-ins: 3x the largest per-sample worsening that re-encoding a real edit at crf
    # 18/23/28 or +/-1 grey level of noise caused (8 real Sparkle edits, 41 frames, height 288;
    # benchmarks/gate_noise.py), rounded up to one significant digit; bg_static never moved (0.05: one
    # sample in 20); the learned metrics were not measured (no weights there) and keep judgment values.
    # ``noise_sd``: the largest spread (sd) of the per-sample change that noise caused, the least
    # spread assumed when saying how small a change the gate can detect.
    tolerance: ClassVar[float | None] = None
    noise_sd: ClassVar[float] = 0.0

    def __call__(self, pair: VideoPair) -> float:
        if self.needs_mask and pair.mask is None:
            raise MetricUnavailable("no foreground mask (run `sparkle-bench masks` or pass --masks DIR)")
        value = float(self.compute(pair))
        if not math.isfinite(value):
            raise MetricUnavailable(f"computed a non-finite value ({value})")
        return value

    @abstractmethod
    def compute(self, pair: VideoPair) -> float:
        """The metric's value for one aligned pair."""


def _radius(pair: VideoPair, fraction: float) -> int:
    return max(1, int(round(fraction * pair.source.shape[1])))


def foreground_region(pair: VideoPair) -> np.ndarray:
    """The slightly eroded source mask; refuses an empty one."""
    key = "fg_region"
    if key not in pair._cache:
        pair._cache[key] = morph(pair.mask, -_radius(pair, FG_ERODE))
    region = pair._cache[key]
    if not region.any():
        raise MetricUnavailable("foreground mask is empty: no subject to measure")
    return region


def background_region(pair: VideoPair) -> np.ndarray:
    """Everything outside the dilated mask; refuses a mask that covers the frame."""
    key = "bg_region"
    if key not in pair._cache:
        pair._cache[key] = ~morph(pair.mask, _radius(pair, BG_DILATE))
    region = pair._cache[key]
    if not region.any():
        raise MetricUnavailable("mask covers the whole frame: no background to measure")
    return region


def motion_region(pair: VideoPair) -> np.ndarray:
    """Per flow pair (N, H, W): the background far from the subject in *every* frame the pair spans.

    The union of the masks from frame t to t+step, dilated: a fast subject's own motion, and the
    flow it drags along at its edge, never reaches the pixels that say whether the scene moves.
    """
    key = "motion_region"
    if key not in pair._cache:
        step, starts = pair.flow_step, pair.flow_starts()
        union = np.stack([pair.mask[t : t + step + 1].any(axis=0) for t in starts])
        pair._cache[key] = ~morph(union, _radius(pair, BG_DILATE))
    region = pair._cache[key]
    if not region.any():
        raise MetricUnavailable("the subject covers the whole frame: no background to measure motion on")
    return region


def need_motion(pair: VideoPair) -> None:
    if len(pair.flow_starts()) == 0:
        raise MetricUnavailable(f"only {len(pair.source)} frame(s): too short to measure motion")
