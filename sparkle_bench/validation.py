"""Known perturbations must move each metric the right way (`sparkle-bench validate-metrics`).

On the demo bench the good edit is the shipped reference; each perturbation breaks one thing
(freeze the background, or freeze it and pan it or add fresh noise each frame (shortcuts that must
still read frozen), blur/shift/recolour the subject (flickering per frame), shuffle frames, no edit
at all). On the real clips, Sparkle's edits must read living and livelier than OpenVE-3M's edits
of the same sources, and their subject better than a frozen or shifted one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .bench import load_sparkle
from .masks import find_mask
from .metrics import load_metrics
from .metrics.background import FROZEN_BELOW
from .models.shortcuts import composite, shortcut_background
from .pair import VideoPair, load_pair


@dataclass
class Check:
    case: str
    metric: str
    good: float
    perturbed: float
    expect: str  # "lower", "higher", "below X", "equals X"

    @property
    def passed(self) -> bool:
        kind, _, bound = self.expect.partition(" ")
        if kind == "lower":
            return self.perturbed < self.good
        if kind == "higher":
            return self.perturbed > self.good
        if kind == "below":
            return self.perturbed < float(bound)
        return abs(self.perturbed - float(bound)) < 1e-9


def _inside(mask: np.ndarray, edited: np.ndarray, changed: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None], changed, edited)


def frozen_subject(pair: VideoPair) -> np.ndarray:
    """The edit with every frame's subject replaced by its first frame's."""
    return np.where(pair.mask[..., None], pair.edited[:1], pair.edited)


def shifted_subject(pair: VideoPair) -> np.ndarray:
    """The edit with its subject moved right by 5% of the width (over the frozen-subject frame)."""
    shift = max(4, pair.edited.shape[2] // 20)
    return _inside(np.roll(pair.mask, shift, axis=2), frozen_subject(pair), np.roll(pair.edited, shift, axis=2))


def _perturbations(pair: VideoPair) -> dict[str, np.ndarray]:
    """Blur and recolour vary per frame, as a generator's unstable subject does: a constant blur or
    colour swap changes appearance but not motion, so it leaves `fg_motion` (nearly) alone."""
    edited, mask = pair.edited, pair.mask
    rng = np.random.default_rng(0)
    sigmas = rng.uniform(0.5, 5.0, len(edited))
    gains = rng.uniform(0.7, 1.3, (len(edited), 1, 1, 3))
    return {
        "freeze background": np.where(mask[..., None], edited, edited[:1]),
        "pan frozen background": composite(edited, mask, shortcut_background(edited[0], "pan", 3.0, len(edited))),
        "noise on frozen background": composite(
            edited, mask, shortcut_background(edited[0], "noise", 4.0, len(edited))
        ),
        "blur subject": _inside(
            mask, edited, np.stack([cv2.GaussianBlur(f, (0, 0), s) for f, s in zip(edited, sigmas)])
        ),
        "shift subject": shifted_subject(pair),
        "recolour subject": _inside(mask, edited, np.clip(edited[..., ::-1] * gains, 0, 255).astype(np.uint8)),
        "shuffle frames": edited[rng.permutation(len(edited))],
        "no edit (identity)": pair.source,
    }


EXPECTATIONS: dict[str, list[tuple[str, str]]] = {
    "freeze background": [("bg_dynamics", f"below {FROZEN_BELOW}"), ("bg_static", "equals 1")],
    "pan frozen background": [("bg_static", "equals 1"), ("bg_camera", "higher")],
    "noise on frozen background": [("bg_static", "equals 1")],
    "blur subject": [("fg_psnr", "lower"), ("fg_ssim", "lower"), ("fg_motion", "higher")],
    "shift subject": [("fg_psnr", "lower"), ("fg_ssim", "lower"), ("fg_motion", "higher")],
    "recolour subject": [("fg_psnr", "lower"), ("fg_ssim", "lower"), ("fg_motion", "higher")],
    "shuffle frames": [("bg_flicker", "higher"), ("fg_motion", "higher")],
    "no edit (identity)": [("bg_change", "below 0.02")],
}
TRACKABLE = ("clouds", "mist", "waves")  # shuffled snowfall is still snowfall: flicker needs trackable motion


def validate_demo(demo_root: Path) -> list[Check]:
    """Mean metric values over demo clips, good edit vs each perturbation."""
    bench = load_sparkle(demo_root, name="demo")
    names = sorted({m for checks in EXPECTATIONS.values() for m, _ in checks})
    metrics = {m.name: m for m in load_metrics(names)}
    good: dict[str, list[float]] = {n: [] for n in names}
    bad: dict[tuple[str, str], list[float]] = {}
    for sample in bench.samples:
        reference = bench.reference_dir / sample.output_relpath
        pair = load_pair(
            sample.source, reference, find_mask(bench.masks_dir, sample.theme, sample.id), prompt=sample.prompt
        )
        trackable = any(word in sample.prompt for word in TRACKABLE)
        for name in names:
            good[name].append(metrics[name](pair))
        for case, edited in _perturbations(pair).items():
            if case == "shuffle frames" and not trackable:
                continue
            perturbed = VideoPair(pair.source, edited, pair.mask, pair.fps, pair.prompt)
            for name, _ in EXPECTATIONS[case]:
                bad.setdefault((case, name), []).append(metrics[name](perturbed))
    return [
        Check(case, name, float(np.mean(good[name])), float(np.mean(bad[(case, name)])), expect)
        for case, checks in EXPECTATIONS.items()
        for name, expect in checks
    ]


def validate_real(real_dir: Path) -> list[Check]:
    """Sparkle's edits read living and livelier than OpenVE-3M's; Sparkle's subject vs a frozen or shifted one."""
    checks: list[Check] = []
    dynamics, static, psnr = load_metrics(["bg_dynamics", "bg_static", "fg_psnr"])
    compare = real_dir / "openve3m_compare"
    for source in sorted(compare.glob("*_source.mp4")):
        stem = source.name[: -len("_source.mp4")]
        mask = find_mask(real_dir / "masks", "", f"{stem}")
        ours = load_pair(source, compare / f"{stem}_edited.mp4", mask)
        theirs = load_pair(source, compare / f"{stem}_edited_openve3m.mp4", mask)
        checks.append(
            Check(f"{stem}: OpenVE-3M edit vs Sparkle", "bg_dynamics", dynamics(ours), dynamics(theirs), "lower")
        )
        checks.append(Check(f"{stem}: Sparkle edit reads living", "bg_static", static(ours), static(ours), "equals 0"))
    for source in sorted((real_dir / "pairs").glob("*_source.mp4")):
        stem = source.name[: -len("_source.mp4")]
        pair = load_pair(source, real_dir / "pairs" / f"{stem}_edited.mp4", find_mask(real_dir / "masks", "", stem))
        value = psnr(pair)
        for label, perturb in (("frozen subject", frozen_subject), ("shifted subject", shifted_subject)):
            perturbed = VideoPair(pair.source, perturb(pair), pair.mask, pair.fps)
            checks.append(Check(f"{stem}: {label}", "fg_psnr", value, psnr(perturbed), "lower"))
    return checks


def print_checks(title: str, checks: list[Check], emit: Callable[[object], None]) -> None:
    from rich.table import Table

    table = Table(title=title)
    for column in ("case", "metric", "good edit", "perturbed", "expected", "ok"):
        table.add_column(column)
    for c in checks:
        table.add_row(
            c.case, c.metric, f"{c.good:.4g}", f"{c.perturbed:.4g}", c.expect, "yes" if c.passed else "[red]NO[/]"
        )
    emit(table)
