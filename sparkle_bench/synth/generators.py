"""The diffusers models of the pipeline, each loaded once from a hub id (local cache) or a folder.

``Editor``: FLUX.2-klein (``Flux2KleinPipeline``), an instruction edit of one image.
``Animator``: Wan2.2 image-to-video (``WanImageToVideoPipeline``), a still plate brought to life.
``Renderer``: the edited video from the fused edge video as control and the edited first frame, by
``[models.renderer] kind``: ``fun_control``, Wan2.2-Fun-A14B-Control (what Sparkle used; our sampler in
``fun_control/``, the edited first frame as its start image), or ``vace``, Wan VACE
(``WanVACEPipeline``, the edited first frame kept as frame 0 and given as reference image).

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
        raise OSError(
            f"cannot load {cls_name} from {spec['model']!r} (a folder or a hub id in the local cache): "
            f"{str(exc).splitlines()[0]}"
        ) from exc
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
        result = self.pipe(
            image=Image.fromarray(image),
            prompt=prompt,
            height=work_h,
            width=work_w,
            num_inference_steps=int(self.spec["steps"]),
            guidance_scale=float(self.spec["guidance"]),
            generator=_generator(self.device, seed),
        ).images[0]
        return _resized(np.asarray(result.convert("RGB"))[None], width, height)[0]


class Animator:
    def __init__(self, spec: dict, device: str):
        self.pipe, self.spec, self.device = _load("WanImageToVideoPipeline", spec, device), spec, device

    def animate(self, image: np.ndarray, prompt: str, num_frames: int, seed: int) -> np.ndarray:
        from PIL import Image

        height, width = image.shape[:2]
        frames = self.pipe(
            image=Image.fromarray(image),
            prompt=prompt,
            height=height,
            width=width,
            num_frames=num_frames,
            num_inference_steps=int(self.spec["steps"]),
            guidance_scale=float(self.spec["guidance"]),
            generator=_generator(self.device, seed),
            output_type="np",
        ).frames[0]
        return _resized(_to_uint8(frames), width, height)


class Renderer:
    """The stage-5 renderer of ``spec["kind"]``."""

    def __init__(self, spec: dict, device: str):
        kinds = {"fun_control": FunControlRenderer, "vace": VaceRenderer}
        if spec.get("kind") not in kinds:
            raise ValueError(f"[models.renderer] kind {spec.get('kind')!r}: use 'fun_control' or 'vace'")
        self.backend = kinds[spec["kind"]](spec, device)

    def render(self, control: np.ndarray, first_frame: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        """``control``: (T, H, W, 3) edge frames; ``first_frame``: the edited first frame (H, W, 3)."""
        return self.backend.render(control, first_frame, prompt, seed)


def load_fun_control(spec: dict, device: str):
    """The two experts of ``spec["model"]`` (a Fun-Control folder or hub id) and the VAE, UMT5 text
    encoder and tokenizer of ``spec["parts"]`` (a diffusers-format Wan2.2 folder or hub id: the same
    Wan2.1 VAE and umt5-xxl, in formats diffusers reads, where the Fun release ships pickles)."""
    import torch
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel

    from ..models.kiwi.sources import resolve
    from ..placement import placement
    from .fun_control.checkpoint import EXPERTS, load_expert
    from .fun_control.sampler import Expert, FunControlParts

    _, dtype = placement(device)
    root, parts = resolve(spec["model"]), resolve(spec["parts"])
    offload = bool(spec.get("offload")) and device.startswith("cuda")
    experts, text_len = [], 512
    for name in EXPERTS:
        transformer, ref_conv, config = load_expert(root / name, dtype)
        experts.append(
            Expert(
                transformer if offload else transformer.to(device),
                ref_conv.to(device) if ref_conv is not None else None,
            )
        )
        text_len = int(config["text_len"])
    try:
        vae = AutoencoderKLWan.from_pretrained(parts, subfolder="vae", dtype=torch.float32).to(device)
        text_encoder = UMT5EncoderModel.from_pretrained(parts, subfolder="text_encoder", dtype=dtype).eval()
        text_encoder = text_encoder if offload else text_encoder.to(device)
        tokenizer = AutoTokenizer.from_pretrained(parts, subfolder="tokenizer")
    except OSError as exc:
        raise OSError(
            f"cannot load the Wan VAE / text encoder / tokenizer from {spec['parts']!r}: {str(exc).splitlines()[0]}"
        ) from exc
    return FunControlParts(experts[0], experts[1], vae.eval(), text_encoder, tokenizer, text_len, offload)


class FunControlRenderer:
    def __init__(self, spec: dict, device: str):
        self.parts, self.spec, self.device = load_fun_control(spec, device), spec, device

    def render(self, control: np.ndarray, first_frame: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        from .fun_control.sampler import Sampling, render

        spec = self.spec
        sampling = Sampling(
            steps=int(spec["steps"]),
            guidance=float(spec["guidance"]),
            shift=float(spec["shift"]),
            boundary=float(spec["boundary"]),
            seed=seed,
            negative_prompt=str(spec["negative_prompt"]),
            reference=bool(spec["reference"]),
        )
        height, width = control.shape[1:3]
        return _resized(render(self.parts, control, first_frame, prompt, sampling, self.device), width, height)


class VaceRenderer:
    def __init__(self, spec: dict, device: str):
        self.pipe, self.spec, self.device = _load("WanVACEPipeline", spec, device), spec, device

    def render(self, control: np.ndarray, first_frame: np.ndarray, prompt: str, seed: int) -> np.ndarray:
        """``control``: (T, H, W, 3) edge frames; frame 0 is replaced by ``first_frame`` and kept."""
        from PIL import Image

        count, height, width = control.shape[:3]
        video = [Image.fromarray(first_frame)] + [Image.fromarray(f) for f in control[1:]]
        keep, generate = Image.new("L", (width, height), 0), Image.new("L", (width, height), 255)
        frames = self.pipe(
            video=video,
            mask=[keep] + [generate] * (count - 1),
            reference_images=[Image.fromarray(first_frame)],
            prompt=prompt,
            height=height,
            width=width,
            num_frames=count,
            num_inference_steps=int(self.spec["steps"]),
            guidance_scale=float(self.spec["guidance"]),
            generator=_generator(self.device, seed),
            output_type="np",
        ).frames[0]
        return _resized(_to_uint8(frames), width, height)
