"""The diffusers models of the pipeline, each loaded once from a hub id (local cache) or a folder.

``Editor``: FLUX.2-klein (``Flux2KleinPipeline``), an instruction edit of one image.
``Animator``: Wan2.2 image-to-video (``WanImageToVideoPipeline``), a still plate brought to life.
``Renderer``: Wan VACE (``WanVACEPipeline``), the edited video from the fused edge video as control,
with the edited first frame kept as frame 0 and given as reference image.

Every call takes a seed, so a sample renders the same on any machine; outputs come back at the
input's size as uint8 RGB.
"""

from __future__ import annotations

import zlib

import cv2
import numpy as np


def sample_seed(seed: int, sample_id: str, purpose: str) -> int:
    """A sample's own seed for one generation: the same on every machine and every re-run."""
    return zlib.crc32(f"{seed}:{sample_id}:{purpose}".encode())


def _load(cls_name: str, spec: dict, device: str):
    import diffusers

    from ..placement import placement

    _, dtype = placement(device)
    try:
        pipe = getattr(diffusers, cls_name).from_pretrained(spec["model"], dtype=dtype)
    except OSError as exc:
        raise OSError(f"cannot load {cls_name} from {spec['model']!r} (a folder or a hub id in the local cache): "
                      f"{str(exc).splitlines()[0]}") from exc
    if spec.get("offload") and device.startswith("cuda"):
        pipe.enable_model_cpu_offload()
    else:
        pipe.to(device)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _generator(device: str, seed: int):
    import torch

    return torch.Generator(device="cpu" if not device.startswith("cuda") else device).manual_seed(seed)


def _to_uint8(frames) -> np.ndarray:
    return (np.clip(np.asarray(frames, dtype=np.float32), 0.0, 1.0) * 255).round().astype(np.uint8)


def _resized(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    if frames.shape[-3:-1] == (height, width):
        return frames
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


class Editor:
    def __init__(self, spec: dict, device: str):
        self.pipe, self.spec, self.device = _load("Flux2KleinPipeline", spec, device), spec, device
        self.multiple = self.pipe.vae_scale_factor * 2

    def edit(self, image: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        from PIL import Image

        height, width = image.shape[:2]
        work_h, work_w = height // self.multiple * self.multiple, width // self.multiple * self.multiple
        result = self.pipe(image=Image.fromarray(image), prompt=prompt, height=work_h, width=work_w,
                           num_inference_steps=int(self.spec["steps"]), guidance_scale=float(self.spec["guidance"]),
                           generator=_generator(self.device, seed)).images[0]
        return _resized(np.asarray(result.convert("RGB"))[None], width, height)[0]


class Animator:
    def __init__(self, spec: dict, device: str):
        self.pipe, self.spec, self.device = _load("WanImageToVideoPipeline", spec, device), spec, device

    def animate(self, image: np.ndarray, prompt: str, num_frames: int, seed: int) -> np.ndarray:
        from PIL import Image

        height, width = image.shape[:2]
        frames = self.pipe(image=Image.fromarray(image), prompt=prompt, height=height, width=width, num_frames=num_frames,
                           num_inference_steps=int(self.spec["steps"]), guidance_scale=float(self.spec["guidance"]),
                           generator=_generator(self.device, seed), output_type="np").frames[0]
        return _resized(_to_uint8(frames), width, height)


class Renderer:
    def __init__(self, spec: dict, device: str):
        self.pipe, self.spec, self.device = _load("WanVACEPipeline", spec, device), spec, device

    def render(self, control: np.ndarray, first_frame: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        """``control``: (T, H, W, 3) edge frames; frame 0 is replaced by ``first_frame`` and kept."""
        from PIL import Image

        count, height, width = control.shape[:3]
        video = [Image.fromarray(first_frame)] + [Image.fromarray(f) for f in control[1:]]
        keep, generate = Image.new("L", (width, height), 0), Image.new("L", (width, height), 255)
        frames = self.pipe(video=video, mask=[keep] + [generate] * (count - 1), reference_images=[Image.fromarray(first_frame)],
                           prompt=prompt, height=height, width=width, num_frames=count,
                           num_inference_steps=int(self.spec["steps"]), guidance_scale=float(self.spec["guidance"]),
                           generator=_generator(self.device, seed), output_type="np").frames[0]
        return _resized(_to_uint8(frames), width, height)
