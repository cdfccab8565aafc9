"""Diffusers-based editors. The template loads the pipeline once, on the first sample that needs
generating (a run whose outputs all exist, or that is only scored or judged, loads no weights), and
writes nothing itself; each model implements only :meth:`DiffusersAdapter.call`, the pipeline call.

Weights come from a Hugging Face id (from the local hub cache when offline) or a local folder:
``--model kiwi-sparkle:/models/Kiwi-Sparkle-720P-81F``.
"""

from __future__ import annotations

import inspect
from abc import abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..bench import Bench, Sample
from ..masks import find_mask, load_mask, morph, resize_mask
from ..video import read_frames
from .base import AdapterError, EditedVideo, ModelAdapter, WeightsError


def to_uint8_frames(output: Any) -> np.ndarray:
    """A pipeline's ``.frames`` (array in [0, 1], tensor or list of PIL images) as (T, H, W, 3) uint8."""
    frames = getattr(output, "frames", output)
    if isinstance(frames, (list, tuple)) and len(frames) == 1 and not hasattr(frames[0], "size"):
        frames = frames[0]  # batch of one
    if hasattr(frames, "detach"):
        frames = frames.detach().float().cpu().numpy()
    if isinstance(frames, (list, tuple)):
        frames = np.stack([np.asarray(f) for f in frames])
    frames = np.asarray(frames)
    if frames.ndim == 5:
        frames = frames[0]
    if frames.dtype != np.uint8:
        frames = np.clip(np.round(frames * 255.0), 0, 255).astype(np.uint8)
    return frames


class DiffusersAdapter(ModelAdapter):
    default_repo: ClassVar[str]
    pipeline_class: ClassVar[str] = "DiffusionPipeline"
    trust_remote_code: ClassVar[bool] = False
    width: ClassVar[int] = 832
    height: ClassVar[int] = 480
    max_frames: ClassVar[int] = 81
    out_fps: ClassVar[float] = 16.0
    steps: ClassVar[int] = 50
    seed: ClassVar[int] = 42

    def __init__(self, arg: str | None = None) -> None:
        self.repo = arg or self.default_repo
        self.pipe: Any = None

    @property
    def spec(self) -> str:
        return self.name if self.repo == self.default_repo else f"{self.name}:{self.repo}"

    def load(self) -> None:
        import diffusers
        import torch

        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = torch.bfloat16 if self.device == "cuda" else torch.float32
        pipeline_cls = getattr(diffusers, self.pipeline_class)
        kwargs = {"trust_remote_code": True} if self.trust_remote_code else {}
        if self.repo.startswith(("/", ".", "~")) and not Path(self.repo).expanduser().is_dir():
            raise WeightsError(f"{self.name}: cannot load weights from {self.repo}: no such folder")
        try:
            self.pipe = pipeline_cls.from_pretrained(self.repo, torch_dtype=dtype, **kwargs)
        except (OSError, ValueError) as exc:
            local = Path(self.repo).exists()
            hint = "check the folder" if local else f"download it first (`hf download {self.repo}`) or pass a local folder"
            raise WeightsError(f"{self.name}: cannot load weights from {self.repo}: {str(exc).splitlines()[0]}; {hint}") from exc
        self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    def edit(self, sample: Sample) -> EditedVideo:
        import torch

        if self.pipe is None:
            self.load()
        frames = read_frames(sample.source, size=(self.width, self.height))[: self.max_frames]
        frames = frames[: 4 * ((len(frames) - 1) // 4) + 1]  # Wan's VAE takes 4k+1 frames
        generator = torch.Generator(self.device).manual_seed(self.seed)
        return EditedVideo(to_uint8_frames(self.call(frames, sample, generator)), self.out_fps)

    def _accepted(self, **kwargs: Any) -> dict[str, Any]:
        """Keep only the keyword arguments the pipeline's ``__call__`` takes."""
        params = inspect.signature(self.pipe.__call__).parameters
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return kwargs
        return {k: v for k, v in kwargs.items() if k in params}

    def _common(self, frames: np.ndarray, sample: Sample, generator: Any) -> dict[str, Any]:
        return dict(
            prompt=sample.prompt, height=frames.shape[1], width=frames.shape[2], num_frames=len(frames),
            num_inference_steps=self.steps, generator=generator, output_type="np",
        )

    @abstractmethod
    def call(self, frames: np.ndarray, sample: Sample, generator: Any) -> Any:
        """Run the pipeline on (T, H, W, 3) uint8 source frames; return its output."""


def _pil(frames: np.ndarray) -> list:
    from PIL import Image

    return [Image.fromarray(f) for f in frames]


class KiwiEdit(DiffusersAdapter):
    """Kiwi-Edit (Wan2.2-TI2V-5B + Qwen2.5-VL-3B), diffusers format with remote code."""

    name = "kiwi-edit"
    default_repo = "linyq/kiwi-edit-5b-instruct-only-diffusers"
    trust_remote_code = True
    width, height, out_fps = 1280, 720, 15.0

    def call(self, frames: np.ndarray, sample: Sample, generator: Any) -> Any:
        params = inspect.signature(self.pipe.__call__).parameters
        video_arg = next((n for n in ("source_video", "video", "src_video", "input_video") if n in params), "video")
        return self.pipe(**self._accepted(**{video_arg: _pil(frames)}, **self._common(frames, sample, generator)))


class KiwiSparkle(KiwiEdit):
    """Kiwi-Sparkle: Kiwi-Edit fine-tuned on Sparkle, same architecture and loader."""

    name = "kiwi-sparkle"
    default_repo = "stdKonjac/Kiwi-Sparkle-720P-81F"


class LucyEdit(DiffusersAdapter):
    name = "lucy-edit"
    default_repo = "decart-ai/Lucy-Edit-Dev"
    pipeline_class = "LucyEditPipeline"

    def call(self, frames: np.ndarray, sample: Sample, generator: Any) -> Any:
        return self.pipe(video=_pil(frames), guidance_scale=5.0, **self._common(frames, sample, generator))


class WanVace(DiffusersAdapter):
    """Wan-VACE, mask-guided: regenerates everything outside the (dilated) foreground mask."""

    name = "vace"
    default_repo = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
    pipeline_class = "WanVACEPipeline"

    def setup(self, bench: Bench) -> None:
        self.masks_dir = bench.masks_dir

    def call(self, frames: np.ndarray, sample: Sample, generator: Any) -> Any:
        mask_path = find_mask(self.masks_dir, sample.theme, sample.id)
        if mask_path is None:
            raise AdapterError("vace needs foreground masks; run `sparkle-bench masks` or pass --masks")
        fg = morph(resize_mask(load_mask(mask_path)[: len(frames)], (frames.shape[2], frames.shape[1])), 4)
        background = np.repeat((~fg)[..., None].astype(np.uint8) * 255, 3, axis=-1)
        return self.pipe(video=_pil(frames), mask=_pil(background), **self._common(frames, sample, generator))
