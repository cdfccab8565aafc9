"""Frames and images as Kiwi's Qwen2.5-VL condition encoder sees them.

Kiwi was trained (and is run upstream) with qwen-vl-utils' preprocessing; a context that differs
by one resize step changes the generated video, so these sizes and filters follow that code's
behaviour exactly, including its quirks: video frames are first resized per frame with a
56-pixel grid (the helper passes its 28-pixel factor where a patch size is expected), then the
stack is resized again on the 28-pixel grid with antialiased bicubic, and kept as floats.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

MAX_VIDEO_FRAMES = 16  # frames the encoder sees, evenly spaced
VIDEO_MIN_PIXELS = 128 * 28 * 28
VIDEO_MAX_PIXELS = 768 * 28 * 28
IMAGE_MIN_TOKENS = 4
IMAGE_MAX_TOKENS = 16384
MAX_ASPECT = 200


def smart_resize(height: int, width: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """(H, W) divisible by ``factor``, area within [min_pixels, max_pixels], aspect kept."""
    if max(height, width) / min(height, width) > MAX_ASPECT:
        raise ValueError(f"aspect ratio of a {width}x{height} frame exceeds {MAX_ASPECT}")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = math.floor(height / beta / factor) * factor
        w_bar = math.floor(width / beta / factor) * factor
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def resized_image(image: np.ndarray, factor: int = 28, max_pixels: int | None = None) -> Image.Image:
    """One image on a ``factor`` grid (PIL bicubic), as the encoder's image inputs are made."""
    pil = Image.fromarray(np.ascontiguousarray(image)).convert("RGB")
    width, height = pil.size
    max_pixels = max_pixels if max_pixels is not None else IMAGE_MAX_TOKENS * factor**2
    new_h, new_w = smart_resize(height, width, factor, IMAGE_MIN_TOKENS * factor**2, max_pixels)
    return pil.resize((new_w, new_h))


def video_frames(frames: np.ndarray, max_pixels: int) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (t, 3, h, w) float32 in [0, 255]-ish: at most 16 evenly spaced frames."""
    if len(frames) > MAX_VIDEO_FRAMES:
        picked = torch.linspace(0, len(frames) - 1, MAX_VIDEO_FRAMES).round().long().tolist()
        frames = frames[picked]
    first = [np.asarray(resized_image(f, factor=56, max_pixels=max_pixels)) for f in frames]
    video = torch.from_numpy(np.stack(first)).permute(0, 3, 1, 2)
    height, width = video.shape[2:]
    max_pixels = min(max_pixels, max(VIDEO_MAX_PIXELS, int(VIDEO_MIN_PIXELS * 1.05)))
    size = smart_resize(height, width, 28, VIDEO_MIN_PIXELS, max_pixels)
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import resize

    return resize(video, list(size), interpolation=InterpolationMode.BICUBIC, antialias=True).float()
