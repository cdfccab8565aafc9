"""Stage 1, fixed-camera source filtering: a clip becomes a sample when it is long and large enough,
one shot, and filmed with a fixed camera.

``coarse`` (weight-free, CPU): resample to [video].fps, keep the first 4k+1 frames up to
[video].max_frames, centre-crop to [video]'s aspect and size, then reject too_small, aspect,
too_short, scene_cut and moving_camera (flow + RANSAC homography); a file the decoder finds fewer
frames in than its index declares is corrupt. Survivors are written as the
training source ``{theme}/source_video/{id}.mp4`` and ``source_frame0/{id}.png``.
``check`` (VLM): a chain-of-thought look at a few frames; "moving" rejects (moving_camera_vlm).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import av
import cv2
import numpy as np

from ..video import probe, read_frames, write_video
from .answers import camera_verdict
from .camera import camera_motion, scene_cuts
from .config import SynthConfig
from .layout import Layout, write_image
from .ledger import ACCEPTED, Outcome
from .models import load_roles

STAGE = 1


def settings(cfg: SynthConfig) -> dict:
    check = cfg.stage(1)["vlm_check"]
    return {
        "video": cfg.settings["video"],
        "thresholds": cfg.thresholds["stage1"],
        "vlm_check": check,
        "vlm": cfg.identity(1, "vlm") if check else None,
        "prompt": cfg.prompts["camera"] if check else None,
    }


def sample_indices(num_frames: int, source_fps: float, fps: float, max_frames: int) -> list[int]:
    """Source frame indices for a clip at ``fps``: the first 4k+1 frames, at most ``max_frames``."""
    available = math.floor((num_frames - 1) * fps / source_fps + 1e-6) + 1
    count = min(available, max_frames)
    count = (count - 1) // 4 * 4 + 1
    return [min(num_frames - 1, math.floor(k * source_fps / fps + 1e-6)) for k in range(count)]


def crop_box(width: int, height: int, aspect: float) -> tuple[int, int, int, int]:
    """The centred (x, y, w, h) of the largest region of ``aspect`` (w / h) inside the frame."""
    if width / height > aspect:
        crop_w = round(height * aspect)
        return (width - crop_w) // 2, 0, crop_w, height
    crop_h = round(width / aspect)
    return 0, (height - crop_h) // 2, width, crop_h


def indexed_frames(path: str) -> int:
    """The frame count the container's index declares (0 when it declares none): a file cut short
    after an index written at its front still declares every frame, while the decoder finds fewer."""
    try:
        with av.open(str(path)) as container:
            return int(container.streams.video[0].frames) if container.streams.video else 0
    except av.FFmpegError:
        return 0


def coarse(record: dict, models: None, cfg: SynthConfig, layout: Layout) -> Outcome:
    video, limits = cfg.settings["video"], cfg.thresholds["stage1"]
    width, height, fps = int(video["width"]), int(video["height"]), float(video["fps"])
    info = probe(record["source"])
    clip = {
        "source_size": [info.width, info.height],
        "source_fps": round(info.fps, 3),
        "source_frames": info.num_frames,
    }
    indexed = indexed_frames(record["source"])
    if indexed > info.num_frames:
        return Outcome.reject(
            "corrupt",
            f"the index lists {indexed} frames but only {info.num_frames} are in the file (truncated)",
            clip=clip,
        )
    if info.fps <= 0:
        return Outcome.reject("no_fps", "the video has no frame rate", clip=clip)
    if min(info.width, info.height) < limits["min_short_side"]:
        return Outcome.reject(
            "too_small", f"{info.width}x{info.height}, short side under {limits['min_short_side']}", clip=clip
        )
    x, y, crop_w, crop_h = crop_box(info.width, info.height, width / height)
    removed = 1 - crop_w * crop_h / (info.width * info.height)
    if removed > limits["max_crop"]:
        return Outcome.reject("aspect", f"a {width}:{height} crop would remove {removed:.0%} of the frame", clip=clip)
    indices = sample_indices(info.num_frames, info.fps, fps, int(video["max_frames"]))
    if len(indices) < limits["min_frames"]:
        return Outcome.reject(
            "too_short", f"{len(indices)} frames at {fps:g} fps, need {limits['min_frames']}", clip=clip
        )
    scale = max(width / crop_w, height / crop_h)
    decode = (math.ceil(info.width * scale / 2) * 2, math.ceil(info.height * scale / 2) * 2)
    frames = read_frames(record["source"], size=decode, indices=indices)
    left, top = round(x * scale), round(y * scale)
    frames = np.ascontiguousarray(frames[:, top : top + height, left : left + width])
    if frames.shape[1:3] != (height, width):
        frames = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])
    clip.update(frames=len(frames), fps=fps, width=width, height=height, crop=round(removed, 4))
    flow_width = min(int(limits["flow_width"]), width)
    small = np.stack(
        [cv2.resize(f, (flow_width, round(flow_width * height / width)), interpolation=cv2.INTER_AREA) for f in frames]
    )
    cuts = scene_cuts(small, int(limits["cut_window"]), float(limits["cut_distance"]))
    if cuts:
        return Outcome.reject(
            "scene_cut",
            f"cut at frame {cuts[0]}" + (f" (+{len(cuts) - 1} more)" if len(cuts) > 1 else ""),
            clip=clip,
            cuts=cuts,
        )
    motion = camera_motion(
        small, fps, limits["flow_step_seconds"], limits["still_px"], limits["still_fraction"], limits["min_motion"]
    )
    if motion.moving_pairs > limits["max_moving_pairs"]:
        return Outcome.reject(
            "moving_camera",
            f"the camera moves in {motion.moving_pairs:.0%} of frame pairs "
            f"(median {motion.motion:.2f}% of the diagonal per second)",
            clip=clip,
            camera=motion.as_dict(),
        )
    if motion.longest_move >= limits["max_move_seconds"]:
        return Outcome.reject(
            "moving_camera",
            f"the camera moves for {motion.longest_move:.2f} s without a pause",
            clip=clip,
            camera=motion.as_dict(),
        )
    write_video(layout.video(record["theme"], "source_video", record["id"]), frames, fps)
    write_image(layout.artifact(record["theme"], "source_frame0", record["id"]), frames[0])
    return Outcome(ACCEPTED, data={"clip": clip, "camera": motion.as_dict()})


def load_check(cfg: SynthConfig) -> SimpleNamespace:
    return load_roles(cfg, STAGE, "vlm")


def check(record: dict, models: SimpleNamespace, cfg: SynthConfig, layout: Layout) -> Outcome:
    count = int(cfg.thresholds["stage1"]["check_frames"])
    path = layout.video(record["theme"], "source_video", record["id"])
    total = record["clip"]["frames"]
    frames = read_frames(path, indices=np.linspace(0, total - 1, min(count, total)).round().astype(int))
    answer = models.vlm.ask(cfg.prompts["camera"].format(count=len(frames)), list(frames))
    if not camera_verdict(answer):
        return Outcome.reject("moving_camera_vlm", "the VLM sees a moving camera", camera_check=answer[-2000:])
    return Outcome(ACCEPTED, data={"camera_check": answer[-2000:]})
