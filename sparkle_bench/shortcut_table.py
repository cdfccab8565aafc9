"""The shortcut table: what every default metric reads for shortcut edits built from real clips, and
what it should (``sparkle-bench shortcut-table``; docs/shortcuts.md).

Per real clip (``pairs/`` and the Sparkle edits of ``openve3m_compare/``, with ``masks/``), the plate
is frame 0 of Sparkle's own edit (the target scene, still) and the source's subject is pasted over it
by its mask, then moved or noised by each shortcut of :mod:`sparkle_bench.models.shortcuts` at each
magnitude. Frames are made at the working size, in memory, as the scorer would see an adapter's
output after resizing: pixel magnitudes scale with the width, and the noise's sd with the height
(area-averaging a source-sized frame down to the working height divides i.i.d. noise's sd by the
ratio). Sparkle's real edits (and OpenVE-3M's, where present) are scored beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .masks import find_mask
from .metrics import DEFAULT_METRICS, load_metrics
from .metrics.base import foreground_region, need_motion
from .models.shortcuts import KINDS, composite, shortcut_background
from .pair import VideoPair, load_pair
from .video import probe

REAL, OPENVE = "Sparkle edit", "OpenVE-3M edit"
# What each metric should read for a shortcut edit (none has a living scene; the subject is the source's).
SHOULD = {
    "fg_psnr": "high (the subject is the source's: not a failure of the foreground)",
    "fg_ssim": "high (as fg_psnr)",
    "fg_motion": "low (as fg_psnr)",
    "bg_change": "any (the plate is the target scene)",
    "bg_dynamics": "below every real Sparkle edit's: no scene motion",
    "bg_camera": "the camera move: high for pan, zoom and shake, ~0 for still and noise",
    "bg_static": "1: frozen",
    "bg_flicker": "high for noise (fresh noise each frame is flicker), ~0 otherwise",
}


@dataclass(frozen=True)
class Clip:
    name: str
    source: Path
    edited: Path
    mask: Path
    openve: Path | None = None  # OpenVE-3M's edit of the same source, where the folder has one


def real_clips(real_dir: Path) -> list[Clip]:
    """Every real Sparkle edit with a mask: the pairs, then the openve3m_compare triples."""
    clips = []
    for folder in ("pairs", "openve3m_compare"):
        for edited in sorted((real_dir / folder).glob("*_edited.mp4")):
            stem = edited.name.removesuffix("_edited.mp4")
            mask = find_mask(real_dir / "masks", "", stem)
            if mask is not None:
                openve = edited.with_name(f"{stem}_edited_openve3m.mp4")
                clips.append(
                    Clip(
                        stem,
                        real_dir / folder / f"{stem}_source.mp4",
                        edited,
                        mask,
                        openve if openve.is_file() else None,
                    )
                )
    return clips


def default_magnitudes() -> dict[str, tuple[float, ...]]:
    """Each kind at the low end, the default and the high end of its documented range."""
    return {kind: (0.0,) if kind == "still" else (spec.low, spec.default, spec.high) for kind, spec in KINDS.items()}


def subject_speed(pair: VideoPair) -> float:
    """Mean source flow magnitude inside the subject, % of the diagonal per 1/8 s: how fast it moves."""
    need_motion(pair)
    region = foreground_region(pair)[pair.flow_starts()]
    flow = pair.flows("source")[region]
    return float(np.hypot(flow[:, 0], flow[:, 1]).mean() / pair.diagonal * 100)


SHARED = (("gray", "source"), ("flow", "source", False), "fg_region", "bg_region", "motion_region")


def _with_edit(real: VideoPair, edited: np.ndarray) -> VideoPair:
    """``real`` with another edit, reusing what depends on the source and mask only (its flows)."""
    shared = {k: real._cache[k] for k in SHARED if k in real._cache}
    return VideoPair(real.source, edited, real.mask, real.fps, _cache=shared)


def _cut(pair: VideoPair, frames: int | None) -> VideoPair:
    keep = slice(0, frames)
    return VideoPair(pair.source[keep], pair.edited[keep], pair.mask[keep], pair.fps, pair.prompt, pair.notes)


def measure_clip(
    clip: Clip,
    magnitudes: dict[str, tuple[float, ...]],
    work_height: int = 288,
    frames: int | None = None,
    metrics: tuple[str, ...] = DEFAULT_METRICS,
) -> list[dict]:
    """One row per edit of ``clip``: the real ones and every shortcut x magnitude."""
    scorers = load_metrics(list(metrics))
    real = _cut(load_pair(clip.source, clip.edited, clip.mask, work_height), frames)
    speed = subject_speed(real)
    edits: list[tuple[str, float, VideoPair]] = [(REAL, np.nan, real)]
    if clip.openve is not None:
        theirs = _cut(load_pair(clip.source, clip.openve, clip.mask, work_height), frames)
        same = theirs.source.shape == real.source.shape  # then the source's flows are shared
        edits.append((OPENVE, np.nan, _with_edit(real, theirs.edited) if same else theirs))
    plate, noise_scale = real.edited[0], real.source.shape[1] / probe(clip.source).height
    for kind, values in magnitudes.items():
        for magnitude in values:
            amount = magnitude * noise_scale if kind == "noise" else magnitude
            background = shortcut_background(plate, kind, amount, len(real.source))
            edits.append((kind, magnitude, _with_edit(real, composite(real.source, real.mask, background))))
    return [
        {
            "clip": clip.name,
            "edit": name,
            "magnitude": magnitude,
            "subject_speed": speed,
            **{m.name: float(m(pair)) for m in scorers},
        }
        for name, magnitude, pair in edits
    ]


FRAMES = 41  # the first 41 frames (2.5 s at 16 fps) of every clip: 20 flow pairs, a third of the cost of 81


def shortcut_table(
    real_dir: Path,
    work_height: int = 288,
    frames: int | None = FRAMES,
    magnitudes: dict[str, tuple[float, ...]] | None = None,
    clips: list[str] | None = None,
    progress=None,
) -> pd.DataFrame:
    """Every clip x edit, one column per default metric (the long table; :func:`summarise` condenses it)."""
    rows: list[dict] = []
    for clip in real_clips(real_dir):
        if clips is None or clip.name in clips:
            rows += measure_clip(clip, magnitudes or default_magnitudes(), work_height, frames)
            if progress is not None:
                progress(clip.name)
    return pd.DataFrame(rows)


def problems(table: pd.DataFrame) -> list[str]:
    """What the table must show, as failures (none: the frozen-background measure holds): every
    shortcut reads frozen and below every real Sparkle edit; every Sparkle edit reads living and above
    OpenVE-3M's of the same source."""
    real = table[table["edit"] == REAL]
    shortcuts = table[~table["edit"].isin([REAL, OPENVE])]
    lowest = real["bg_dynamics"].min()
    out = [
        f"{r.clip}: Sparkle's edit reads frozen (bg_dynamics {r.bg_dynamics:.4f})"
        for r in real.itertuples()
        if r.bg_static != 0
    ]
    out += [
        f"{r.clip}: {r.edit} {r.magnitude:g} reads living (bg_static {r.bg_static:g}, bg_dynamics "
        f"{r.bg_dynamics:.4f}, lowest real Sparkle edit {lowest:.4f})"
        for r in shortcuts.itertuples()
        if r.bg_static != 1 or r.bg_dynamics >= lowest
    ]
    theirs = table[table["edit"] == OPENVE].set_index("clip")["bg_dynamics"]
    ours = real.set_index("clip")["bg_dynamics"]
    out += [
        f"{clip}: OpenVE-3M's edit reads as lively as Sparkle's ({value:.4f} >= {ours[clip]:.4f})"
        for clip, value in theirs.items()
        if value >= ours[clip]
    ]
    return out


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """One row per edit x magnitude: the mean of every metric over clips, with bg_dynamics's largest
    (its lowest for the real edits) and the fraction of clips that read frozen."""
    metrics = [c for c in DEFAULT_METRICS if c in table.columns]
    keyed = table.assign(magnitude=table["magnitude"].fillna(-1.0))
    grouped = keyed.groupby(["edit", "magnitude"], sort=False)
    out = grouped[metrics].mean()
    worst = (
        grouped["bg_dynamics"]
        .max()
        .where(~out.index.get_level_values("edit").isin([REAL, OPENVE]), grouped["bg_dynamics"].min())
    )
    out.insert(out.columns.get_loc("bg_dynamics") + 1, "bg_dynamics worst", worst)
    out.insert(0, "clips", grouped.size())
    return out.reset_index().replace({"magnitude": {-1.0: np.nan}})


def to_markdown(summary: pd.DataFrame) -> str:
    """The summary as a Markdown table, units of the shortcut magnitudes in a note below."""
    head = ["edit", "clips"] + [c for c in summary.columns if c not in ("edit", "magnitude", "clips")]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in summary.to_dict("records"):
        plain = np.isnan(row["magnitude"]) or row["edit"] == "still"
        label = row["edit"] if plain else f"{row['edit']} {row['magnitude']:g}"
        lines.append("| " + " | ".join([label, str(row["clips"])] + [f"{row[c]:.4g}" for c in head[2:]]) + " |")
    units = "; ".join(f"{kind}: {spec.unit}" for kind, spec in KINDS.items() if kind != "still")
    return (
        "\n".join(lines) + f"\n\nMagnitudes: {units}. bg_dynamics worst: the largest over clips for a shortcut, "
        "the smallest for a real edit. bg_static: the fraction of clips read as frozen."
    )
