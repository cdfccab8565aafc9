"""CLIP and LPIPS metrics through their real loading code, with tiny random weights on local disk;
without weights they are unavailable (with the reason), never 0."""

from __future__ import annotations

import numpy as np
import pytest

from sparkle_bench.metrics import MetricUnavailable, learned, load_metrics
from sparkle_bench.pair import VideoPair
from sparkle_bench.testing.tiny_models import random_alexnet_in_torch_cache, tiny_open_clip


def _pair(edited_offset: int = 0) -> VideoPair:
    rng = np.random.default_rng(0)
    source = rng.integers(0, 255, (6, 48, 64, 3), dtype=np.uint8)
    edited = np.roll(source, edited_offset, axis=2)
    mask = np.zeros((6, 48, 64), bool)
    mask[:, 12:36, 16:48] = True
    return VideoPair(source, edited, mask, 16.0, "a snowy street")


def test_clip_metrics_run_on_a_local_dir_model(tmp_path, monkeypatch):
    pytest.importorskip("open_clip")
    monkeypatch.setenv("SPARKLE_CLIP_MODEL", tiny_open_clip(tmp_path / "clip"))
    monkeypatch.delenv("SPARKLE_CLIP_PRETRAINED", raising=False)
    text, consistency = load_metrics(["clip_text", "clip_consistency"])
    value = text(_pair())
    assert -1.0 <= value <= 1.0 and value != 0.0
    still = VideoPair(_pair().source, np.repeat(_pair().edited[:1], 6, axis=0), _pair().mask, 16.0, "x")
    assert consistency(still) == pytest.approx(1.0, abs=1e-5)  # identical frames: cosine 1
    assert consistency(_pair()) < 1.0 - 1e-4


def test_clip_without_weights_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("SPARKLE_CLIP_MODEL", f"local-dir:{tmp_path / 'nothing-here'}")
    (metric,) = load_metrics(["clip_text"])
    with pytest.raises(MetricUnavailable, match="not available locally"):
        metric(_pair())


def test_fg_lpips_with_a_cached_backbone(tmp_path, monkeypatch):
    pytest.importorskip("lpips")
    random_alexnet_in_torch_cache(tmp_path / "torch")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    learned._lpips.cache_clear()
    try:
        (metric,) = load_metrics(["fg_lpips"])
        assert metric(_pair()) == pytest.approx(0.0, abs=1e-6)
        assert metric(_pair(edited_offset=7)) > 0.01
    finally:
        learned._lpips.cache_clear()
