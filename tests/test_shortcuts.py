"""Shortcut edits (a panned, zoomed, shaken or noised still behind the real subject): the frames are
what they claim, the adapters run on any bench with masks, and on real clips every shortcut reads
frozen while every real Sparkle edit reads living (the shortcut table, CI-sized)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sparkle_bench.bench import load_sparkle
from sparkle_bench.masks import find_mask, load_mask
from sparkle_bench.models import AdapterError, load_model
from sparkle_bench.models.shortcuts import KINDS, shortcut_background
from sparkle_bench.shortcut_table import OPENVE, REAL, problems, shortcut_table, summarise, to_markdown
from sparkle_bench.video import read_frames


@pytest.fixture(scope="module")
def plate() -> np.ndarray:
    rng = np.random.default_rng(0)
    return cv2.GaussianBlur(rng.integers(0, 256, (180, 320, 3), dtype=np.uint8), (0, 0), 2)


def shift_between(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    (dx, dy), _ = cv2.phaseCorrelate(*(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(np.float64) for f in (a, b)))
    return dx, dy


def test_each_shortcut_makes_the_motion_it_names(plate):
    still = shortcut_background(plate, "still", 0, 5)
    assert (still == plate).all()
    pan = shortcut_background(plate, "pan", 8.0, 9)  # 8 px per frame at 1280 wide: 2 px at 320
    dx, dy = shift_between(pan[2], pan[4])
    assert dx == pytest.approx(-4.0, abs=0.2) and abs(dy) < 0.2
    zoom = shortcut_background(plate, "zoom", 0.5, 3)
    grown = cv2.warpAffine(zoom[0], cv2.getRotationMatrix2D((160, 90), 0, 1.005**2), (320, 180))  # 2 frames of 0.5%
    error = {
        name: np.abs(zoom[2].astype(int) - other)[20:-20, 20:-20].mean()
        for name, other in (("zoom", grown), ("none", zoom[0]))
    }
    assert error["zoom"] < 0.25 * error["none"], error
    shake = shortcut_background(plate, "shake", 8.0, 12)  # within +/- 2 px at 320 wide
    offsets = np.array([shift_between(shake[0], f) for f in shake[1:]])
    assert np.abs(offsets).max() <= 4.2 and np.abs(offsets).max() > 1.0
    noise = shortcut_background(np.full((90, 160, 3), 128, np.uint8), "noise", 6.0, 3).astype(float)
    assert noise.std() == pytest.approx(6.0, rel=0.05) and np.abs(noise[0] - noise[1]).mean() > 4


def test_adapters_paste_the_subject_over_the_moving_still(demo_root):
    bench = load_sparkle(demo_root, name="demo")
    sample = bench.samples[0]
    mask = load_mask(find_mask(bench.masks_dir, sample.theme, sample.id))
    source = read_frames(sample.source)
    for name in ("shortcut-pan", "shortcut-zoom", "shortcut-shake", "shortcut-noise"):
        adapter = load_model(name, {"magnitude": str(KINDS[name.split("-")[1]].high)})
        adapter.setup(bench)
        video = adapter.edit(sample)
        assert video.frames.shape == source.shape
        assert (video.frames[mask] == source[mask]).all(), name  # the subject is the source's
        background = ~mask[0] & ~mask[-1]
        assert np.abs(video.frames[0].astype(int) - video.frames[-1])[background].mean() > 2, name  # it moves
    with pytest.raises(AdapterError, match="no option"):
        load_model("shortcut-pan", {"speed": "3"})
    with pytest.raises(AdapterError, match="documented range"):
        load_model("shortcut-noise", {"magnitude": "60"})


@pytest.mark.real_clips
def test_shortcut_table_every_shortcut_frozen_every_sparkle_edit_living(real_dir):
    """CI-sized: the first 17 frames, the top of each range, on the clips that make it hardest: the
    least lively Sparkle edit (Sparkle_openve3m_000152), the plate whose shortcuts read highest
    (Sparkle_location_000598) and the fastest subject (Sparkle_openve3m_000030) with a still plate
    behind it. `sparkle-bench shortcut-table` runs it all (docs/shortcuts.md)."""
    clips = ["Sparkle_location_000598", "Sparkle_openve3m_000030", "Sparkle_openve3m_000152"]
    top = {kind: (spec.high,) for kind, spec in KINDS.items()}
    table = shortcut_table(real_dir, frames=17, magnitudes=top, clips=clips)
    assert set(table["clip"]) == set(clips) and len(table) == 3 * 6 + 2
    assert problems(table) == []
    fastest = table.loc[table["subject_speed"].idxmax(), "clip"]
    assert fastest == "Sparkle_openve3m_000030"
    still = table[(table["clip"] == fastest) & (table["edit"] == "still")].iloc[0]
    assert still["bg_static"] == 1.0
    pan = table[table["edit"] == "pan"]["bg_camera"]  # 8 px per frame at 1280 wide, 2 frames per flow pair
    assert pan.to_numpy() == pytest.approx(2 * 8 / np.hypot(1280, 720) * 100, rel=0.05)
    assert table[table["edit"] == "still"]["bg_camera"].max() < 0.01
    markdown = to_markdown(summarise(table))
    assert "| pan 8 | 3 |" in markdown and "| Sparkle edit | 3 |" in markdown


def test_problems_name_a_shortcut_that_reads_living_and_a_sparkle_edit_that_reads_frozen():
    import pandas as pd

    table = pd.DataFrame(
        [
            {"clip": "a", "edit": REAL, "magnitude": np.nan, "bg_dynamics": 0.05, "bg_static": 0.0},
            {"clip": "a", "edit": OPENVE, "magnitude": np.nan, "bg_dynamics": 0.06, "bg_static": 0.0},
            {"clip": "a", "edit": "pan", "magnitude": 8.0, "bg_dynamics": 0.06, "bg_static": 0.0},
            {"clip": "b", "edit": REAL, "magnitude": np.nan, "bg_dynamics": 0.001, "bg_static": 1.0},
        ]
    )
    found = problems(table)
    assert any("a: pan 8 reads living" in p for p in found)
    assert any("b: Sparkle's edit reads frozen" in p for p in found)
    assert any("a: OpenVE-3M's edit reads as lively" in p for p in found)
