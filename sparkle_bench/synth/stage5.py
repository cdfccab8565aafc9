"""Stage 5, decoupled guidance and the final video: source edges inside the dilated mask fused with
the background video's edges outside it (``edited_video_canny``), rendered by a control-conditioned
video model with the edited first frame (Wan2.2-Fun-A14B-Control by default, or Wan VACE); EditScore
on four non-first frames and a mean ``O_score`` under the threshold rejects (video_score). Accepted
samples become training pairs, rejected ones bench candidates (see ``publish``)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np

from ..masks import load_mask
from ..video import read_frames, write_video
from .config import SynthConfig
from .edges import as_video, fuse_edges
from .generators import sample_seed
from .layout import Layout, read_image
from .ledger import ACCEPTED, Outcome
from .models import load_roles

STAGE = 5


def settings(cfg: SynthConfig) -> dict:
    return {
        "renderer": cfg.identity(5, "renderer"),
        "scorer": cfg.identity(5, "scorer"),
        "thresholds": cfg.thresholds["stage5"],
        "seed": cfg.settings["seed"],
    }


def load(cfg: SynthConfig) -> SimpleNamespace:
    return load_roles(cfg, STAGE, "renderer", "scorer")


def score_indices(num_frames: int, count: int) -> list[int]:
    """``count`` non-first frames evenly spread over all but the last four (1, 26, 51, 76 of 81)."""
    return [int(i) for i in np.linspace(1, max(1, num_frames - 5), count).round()]


def guidance(record: dict, cfg: SynthConfig, layout: Layout) -> np.ndarray:
    """The fused edge video (T, H, W, 3) of a sample, from its files."""
    limits, theme, sample_id = cfg.thresholds["stage5"], record["theme"], record["id"]
    source = read_frames(layout.video(theme, "source_video", sample_id))
    background = read_frames(layout.artifact(theme, "edited_background_video", sample_id))
    mask = load_mask(layout.artifact(theme, "source_video_mask", sample_id))
    dilation = round(float(limits["mask_dilation"]) * math.hypot(source.shape[1], source.shape[2]))
    return as_video(fuse_edges(source, background, mask, dilation, int(limits["canny_low"]), int(limits["canny_high"])))


def run(record: dict, models: SimpleNamespace, cfg: SynthConfig, layout: Layout) -> Outcome:
    theme, sample_id, fps = record["theme"], record["id"], float(record["clip"]["fps"])
    control = guidance(record, cfg, layout)
    write_video(layout.artifact(theme, "edited_video_canny", sample_id), control, fps)
    first = read_image(layout.artifact(theme, "edited_frame0", sample_id))
    rendered = models.renderer.render(
        control, first, record["prompt"], sample_seed(cfg.settings["seed"], sample_id, "render")
    )
    write_video(layout.video(theme, "edited_video", sample_id), rendered, fps)
    source = read_frames(layout.video(theme, "source_video", sample_id))
    indices = score_indices(len(rendered), int(cfg.thresholds["stage5"]["score_frames"]))
    scores = models.scorer.frames([(source[i], rendered[i]) for i in indices], record["prompt"])
    mean = float(np.mean([s["O_score"] for s in scores]))
    data = {"frame_indices": indices, "video_editscore": scores, "o_score_mean": round(mean, 6)}
    least = cfg.thresholds["stage5"]["min_o_score"]
    if mean < least:
        return Outcome.reject("video_score", f"mean EditScore O_score {mean:.2f} < {least}", **data)
    return Outcome(ACCEPTED, data=data)
