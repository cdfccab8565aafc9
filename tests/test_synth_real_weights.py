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


def test_default_fun_control_renders_the_edge_video_it_is_given(real_dir):
    """Wan2.2-Fun-A14B-Control (Sparkle's stage-5 renderer) on a real pair's first 17 frames: the output
    keeps the edited first frame and follows the source's edges inside the subject mask."""
    needs_gpu()
    import cv2

    from sparkle_bench.synth.config import DATA_DIR, read_toml
    from sparkle_bench.synth.edges import as_video, canny, fuse_edges
    from sparkle_bench.synth.generators import Renderer
    from sparkle_bench.video import read_frames

    spec = dict(read_toml(DATA_DIR / "defaults.toml")["models"]["renderer"], steps=20)
    spec.update(model=cached(spec["model"]), parts=cached(spec["parts"]))
    name = "Sparkle_time_000028"
    source = read_frames(real_dir / "pairs" / f"{name}_source.mp4", size=(832, 480))[:17]
    edited = read_frames(real_dir / "pairs" / f"{name}_edited.mp4", size=(832, 480))[:17]
    mask = load_mask(real_dir / "masks" / f"{name}_source.npz")[:17]
    control = as_video(fuse_edges(source, edited, mask, dilation=12))
    video = Renderer(spec, "cuda").render(
        control, edited[0], "Change the background to a city street at night.", seed=42
    )
    assert video.shape == control.shape
    assert np.abs(video[0].astype(int) - edited[0]).mean() < 20  # the start image is kept
    inside = cv2.resize(mask[8].astype(np.uint8), (832, 480)) > 0
    rendered_edges = canny(video[8:9], 100, 200)[0]
    source_edges = canny(source[8:9], 100, 200)[0]
    near = cv2.dilate(source_edges.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    assert (rendered_edges & inside & near).sum() > 0.3 * (
        rendered_edges & inside
    ).sum()  # the subject's outline is followed
