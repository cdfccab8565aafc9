"""The synthesis pipeline's default models where their weights are already in the local Hugging Face
cache (never downloaded by the tests) and a GPU is there; each test skips with the reason otherwise."""

from __future__ import annotations

import numpy as np
import pytest

from sparkle_bench.bench import open_bench
from sparkle_bench.masks import load_mask

from .test_real_weights import cached, needs_gpu

pytestmark = pytest.mark.real_weights


def test_sam3_tracker_follows_the_demo_subject_from_its_box(demo_root):
    needs_gpu()
    from sparkle_bench.maskgen.generate import mask_from_anchors
    from sparkle_bench.maskgen.propagate import Sam3TrackerPropagator

    sample = open_bench("demo").samples[0]
    truth = load_mask(demo_root / "masks" / sample.theme / f"{sample.id}.npz")
    ys, xs = np.nonzero(truth[0])
    anchors = {0: np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], np.float32)}
    mask, passes = mask_from_anchors(sample.source, anchors, Sam3TrackerPropagator(cached("facebook/sam3"), "cuda"))
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert passes == 1 and iou > 0.6


def test_default_editscore_prefers_the_edit_to_no_edit(demo_root):
    needs_gpu()
    from sparkle_bench.synth.config import DATA_DIR, read_toml
    from sparkle_bench.synth.scorer import EditScorer
    from sparkle_bench.video import read_frames

    spec = dict(read_toml(DATA_DIR / "defaults.toml")["models"]["scorer"], num_pass=1)
    spec.update(model=cached(spec["model"]), lora=cached(spec["lora"]))
    sample = open_bench("demo").samples[0]
    source = read_frames(sample.source, indices=[0])[0]
    edited = read_frames(next((demo_root / "reference").rglob(f"{sample.id}_edited.mp4")), indices=[0])[0]
    scorer = EditScorer(spec, "cuda")
    good, none = scorer.image(source, edited, sample.prompt), scorer.image(source, source, sample.prompt)
    assert 0 <= none["prompt_following"] < good["prompt_following"] <= 10
