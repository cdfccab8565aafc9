"""Stage 4, foreground masks (BAIT): the VLM re-locates every round-1 label on frames ~2 per second
(``frame_objects``: one list per anchor frame, one item per label, ``bbox_2d`` empty where it is not
found); a video segmenter propagates each anchor's boxes through the clip and a pixel-wise majority
vote gives the mask (``sparkle_bench.maskgen``), saved in Sparkle's packed-bit npz."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np

from ..maskgen.generate import mask_from_anchors
from ..maskgen.vote import anchor_frames
from ..masks import save_mask
from ..video import read_frames
from .answers import relocated, to_pixels
from .config import SynthConfig
from .layout import Layout
from .ledger import ACCEPTED, Outcome
from .models import load_roles

STAGE = 4


def settings(cfg: SynthConfig) -> dict:
    return {
        "prompts": {k: cfg.prompts[k] for k in ("relocate", "relative_coordinates", "absolute_coordinates")},
        "vlm": cfg.identity(4, "vlm"),
        "segmenter": cfg.identity(4, "segmenter"),
        "thresholds": cfg.thresholds["stage4"],
    }


def load(cfg: SynthConfig) -> SimpleNamespace:
    return load_roles(cfg, STAGE, "vlm", "segmenter")


def run(record: dict, models: SimpleNamespace, cfg: SynthConfig, layout: Layout) -> Outcome:
    vlm = models.vlm
    theme, sample_id, clip = record["theme"], record["id"], record["clip"]
    source = layout.video(theme, "source_video", sample_id)
    labels = record["round1_labels"]
    anchors = anchor_frames(int(clip["frames"]), float(clip["fps"]), float(cfg.thresholds["stage4"]["anchor_fps"]))
    frame_objects = []
    for frame in read_frames(source, indices=anchors):
        asked, size = vlm.coordinates(cfg.prompts, frame)
        answer = vlm.ask(cfg.prompts["relocate"].format(labels=json.dumps(labels), coordinates=asked), [frame])
        frame_objects.append(relocated(answer, labels, vlm.boxes, size))
    width, height = int(clip["width"]), int(clip["height"])
    boxes = {
        index: np.array([to_pixels(o["bbox_2d"], width, height) for o in objects if o["bbox_2d"]], np.float32).reshape(
            -1, 4
        )
        for index, objects in zip(anchors, frame_objects)
    }
    data = {"frame_objects": frame_objects, "anchor_frames": anchors}
    if not any(len(b) for b in boxes.values()):
        return Outcome.reject("no_anchor_boxes", f"no label found on any of {len(anchors)} anchor frames", **data)
    mask, passes = mask_from_anchors(source, boxes, models.segmenter)
    if not mask.any():
        return Outcome.reject("empty_mask", f"{passes} propagation passes voted an empty mask", **data)
    save_mask(layout.artifact(theme, "source_video_mask", sample_id), mask)
    return Outcome(ACCEPTED, data={**data, "mask_passes": passes, "mask_coverage": round(float(mask.mean()), 4)})
