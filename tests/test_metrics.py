"""Metrics on pairs with known answers: exact copies, known noise, frozen and living backgrounds."""

import numpy as np
import pytest

from sparkle_bench.demo import demo_clips, render_reference, render_source, target_background
from sparkle_bench.metrics import DEFAULT_METRICS, MetricUnavailable, load_metrics
from sparkle_bench.metrics.background import FROZEN_BELOW
from sparkle_bench.metrics.foreground import PSNR_CAP
from sparkle_bench.models.shortcuts import composite, shortcut_background
from sparkle_bench.pair import VideoPair

M = {m.name: m for m in load_metrics(list(DEFAULT_METRICS))}


@pytest.fixture(scope="module")
def clip_frames():
    clip = demo_clips()[3]  # snow
    frames, masks = render_source(clip)
    return clip, frames, masks


def pair(source, edited, mask, fps=16.0):
    return VideoPair(source=source, edited=edited, mask=mask, fps=fps)


def test_psnr_identity_is_capped_and_known_noise_costs_known_decibels(clip_frames):
    _, frames, masks = clip_frames
    assert M["fg_psnr"](pair(frames, frames.copy(), masks)) == PSNR_CAP
    mid = np.full_like(frames, 128) + (frames // 4)  # keep values far from 0/255 so noise is not clipped
    sigma = 8.0
    noisy = np.clip(mid + np.random.default_rng(0).normal(0, sigma, mid.shape), 0, 255).round().astype(np.uint8)
    expected = 20 * np.log10(255 / np.sqrt(sigma**2 + 1 / 12))  # rounding adds 1/12 to the variance
    assert M["fg_psnr"](pair(mid, noisy, masks)) == pytest.approx(expected, abs=0.3)


def test_psnr_forgives_one_global_relight_but_not_a_shift(clip_frames):
    _, frames, masks = clip_frames
    relit = np.clip(frames.astype(float) * [0.8, 0.9, 1.1], 0, 255).round().astype(np.uint8)
    shifted = np.roll(frames, 12, axis=2)
    assert M["fg_psnr"](pair(frames, relit, masks)) > 45
    assert M["fg_psnr"](pair(frames, shifted, masks)) < 25


def test_foreground_only_pixels_count(clip_frames):
    _, frames, masks = clip_frames
    edited = frames.copy()
    edited[~masks] = 0  # destroy the whole background
    assert M["fg_psnr"](pair(frames, edited, masks)) == PSNR_CAP
    assert M["fg_ssim"](pair(frames, edited, masks)) > 0.999
    assert M["bg_change"](pair(frames, edited, masks)) > 0.2


def test_frozen_background_vs_living_background(clip_frames):
    clip, frames, masks = clip_frames
    living = render_reference(clip, masks)
    frozen = np.where(masks[..., None], frames, target_background(clip, 0)[None])
    live_pair, frozen_pair = pair(frames, living, masks), pair(frames, frozen, masks)
    assert M["bg_dynamics"](frozen_pair) < 0.05 and M["bg_static"](frozen_pair) == 1.0
    assert M["bg_dynamics"](live_pair) > 0.2 and M["bg_static"](live_pair) == 0.0
    assert M["bg_change"](frozen_pair) == pytest.approx(M["bg_change"](live_pair), abs=0.05)
    assert M["bg_change"](pair(frames, frames.copy(), masks)) == 0.0


def test_camera_motion_is_camera_not_scene(clip_frames):
    """A panned, zoomed or shaken still reads frozen with its camera move in bg_camera; the living
    scene under the same pan still lives (scene motion survives a camera move)."""
    clip, frames, masks = clip_frames
    still, step = target_background(clip, 0), 2  # 16 fps: flow pairs 2 frames apart
    diagonal = np.hypot(*frames.shape[1:3])
    for kind, magnitude, expected_px in (("pan", 4.0, 4.0), ("zoom", 0.3, None), ("shake", 6.0, None)):
        moved = pair(frames, composite(frames, masks, shortcut_background(still, kind, magnitude, len(frames))), masks)
        assert M["bg_static"](moved) == 1.0 and M["bg_dynamics"](moved) < FROZEN_BELOW / 2, kind
        assert M["bg_camera"](moved) > 0.1, kind
        if expected_px:  # px per frame at 1280 wide, two frames per flow pair
            truth = expected_px * frames.shape[2] / 1280 * step / diagonal * 100
            assert M["bg_camera"](moved) == pytest.approx(truth, rel=0.1)
    living = render_reference(clip, masks)
    panned = np.stack([shortcut_background(f, "pan", 4.0, len(living))[t] for t, f in enumerate(living)])
    live = pair(frames, composite(frames, masks, panned), masks)
    assert M["bg_static"](live) == 0.0 and M["bg_dynamics"](live) > 0.2
    assert M["bg_camera"](live) > 0.1


def test_noise_is_not_life_and_a_fast_subject_does_not_leak(clip_frames):
    clip, frames, masks = clip_frames
    still = target_background(clip, 0)
    noisy = pair(frames, composite(frames, masks, shortcut_background(still, "noise", 4.0, len(frames))), masks)
    assert M["bg_static"](noisy) == 1.0 and M["bg_dynamics"](noisy) < FROZEN_BELOW / 2
    assert M["bg_flicker"](noisy) > 5 * M["bg_flicker"](pair(frames, np.broadcast_to(still, frames.shape), masks))
    # the subject sweeps across the frame at 6 px per frame (a tenth of the width per flow pair)
    shift = [6 * t - 120 for t in range(len(frames))]
    fast, fast_mask = (np.stack([np.roll(v, s, axis=1) for v, s in zip(video, shift)]) for video in (frames, masks))
    behind = pair(fast, composite(fast, fast_mask, np.broadcast_to(still, frames.shape)), fast_mask)
    assert M["bg_static"](behind) == 1.0 and M["bg_dynamics"](behind) < FROZEN_BELOW / 2


def test_shuffled_frames_flicker_and_break_foreground_motion():
    clip = demo_clips()[0]  # drifting clouds: trackable motion (shuffled snowfall is still snowfall)
    frames, masks = render_source(clip)
    living = render_reference(clip, masks)
    shuffled = living[np.random.default_rng(1).permutation(len(living))]
    good, bad = pair(frames, living, masks), pair(frames, shuffled, masks)
    assert M["bg_flicker"](bad) > 3 * M["bg_flicker"](good)
    assert M["fg_motion"](bad) > 5 * M["fg_motion"](good)


def test_degenerate_inputs_are_unavailable_not_zero(clip_frames):
    _, frames, masks = clip_frames
    with pytest.raises(MetricUnavailable, match="empty"):
        M["fg_psnr"](pair(frames, frames, np.zeros_like(masks)))
    with pytest.raises(MetricUnavailable, match="whole frame"):
        M["bg_change"](pair(frames, frames, np.ones_like(masks)))
    with pytest.raises(MetricUnavailable, match="too short"):
        M["bg_dynamics"](pair(frames[:1], frames[:1], masks[:1]))
    with pytest.raises(MetricUnavailable, match="no foreground mask"):
        M["fg_ssim"](pair(frames, frames, None))


def test_learned_metrics_without_local_weights_are_unavailable(clip_frames, monkeypatch, tmp_path):
    from sparkle_bench.metrics import learned

    monkeypatch.setenv("SPARKLE_CLIP_MODEL", f"local-dir:{tmp_path / 'no-clip-here'}")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-torch-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    learned._lpips.cache_clear()
    _, frames, masks = clip_frames
    try:
        for metric in load_metrics(["clip_text", "clip_consistency", "fg_lpips"]):
            with pytest.raises(MetricUnavailable, match="not available locally"):
                metric(pair(frames, frames, masks))
    finally:
        learned._lpips.cache_clear()
