"""Editors that are a diffusers pipeline class (Lucy-Edit, Wan-VACE). The template loads the
pipeline once, on the first sample that needs generating (a run whose outputs all exist, or that is
only scored or judged, loads no weights); each model implements only :meth:`DiffusersAdapter.call`.

Weights come from a Hugging Face id (from the local hub cache when offline) or a local folder.
Settings (``--model-option``): steps, seed, max_frames, pixel_budget, multiple, fps, dtype, device,
offload, and the model's own (Lucy-Edit: guidance).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..bench import Bench, Sample
from ..masks import find_mask, load_mask, morph, resize_mask
from ..video import read_frames
from .base import AdapterError, EditedVideo, ModelAdapter, WeightsError
from .hub import HubRepo
from .kiwi.frames import centre_crop, prepare_video
from .options import parse_options


@dataclass(frozen=True)
class DiffusersSettings:
    steps: int = 50
    seed: int = 42
    max_frames: int = 81
    pixel_budget: int = 832 * 480  # Wan2.1's 480p
    multiple: int = 16
    fps: float = 16.0
    guidance: float = 5.0
    dtype: str | None = None  # default: bfloat16 on GPU, float32 on CPU
    device: str | None = None
    offload: bool = False


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
    pipeline_class: ClassVar[str]

    def __init__(self, arg: str | None = None) -> None:
        self.repo = arg or self.default_repo
        self.settings = DiffusersSettings()
        self.pipe: Any = None

    @property
    def spec(self) -> str:
        return self.name if self.repo == self.default_repo else f"{self.name}:{self.repo}"

    def configure(self, options: dict[str, str]) -> None:
        self.settings = parse_options(self.settings, options, self.name)

    def hub_repos(self) -> list[HubRepo]:
        """The pipeline's index and its components' configs, tokenizer and safetensors weights
        (what ``from_pretrained`` reads; not the repo's other checkpoints, docs or media)."""
        if self.repo.startswith(("/", ".", "~")) or Path(self.repo).expanduser().exists() or self.repo.count("/") != 1:
            return []
        patterns = ["model_index.json"]
        for part in (
            "tokenizer",
            "text_encoder",
            "transformer",
            "transformer_2",
            "vae",
            "scheduler",
        ):  # Wan-family pipelines
            patterns += (
                [f"{part}/*"] if part in ("tokenizer", "scheduler") else [f"{part}/*.json", f"{part}/*.safetensors"]
            )
        return [HubRepo(self.repo, tuple(patterns), why=f"{self.pipeline_class} (diffusers)")]

    def load(self) -> None:
        import diffusers

        from ..placement import placement

        s = self.settings
        self.device, dtype = placement(s.device, s.dtype)
        if self.repo.startswith(("/", ".", "~")) and not Path(self.repo).expanduser().is_dir():
            raise WeightsError(f"{self.name}: cannot load weights from {self.repo}: no such folder")
        try:
            self.pipe = getattr(diffusers, self.pipeline_class).from_pretrained(self.repo, torch_dtype=dtype)
        except (OSError, ValueError) as exc:
            local = Path(self.repo).exists()
            hint = (
                "check the folder" if local else f"download it first (`hf download {self.repo}`) or pass a local folder"
            )
            raise WeightsError(
                f"{self.name}: cannot load weights from {self.repo}: {str(exc).splitlines()[0]}; {hint}"
            ) from exc
        if s.offload:
            self.pipe.enable_model_cpu_offload(device=self.device)
        else:
            self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    def edit(self, sample: Sample) -> EditedVideo:
        import torch

        s = self.settings
        frames = prepare_video(read_frames(sample.source), s.pixel_budget, s.multiple, s.max_frames)
        if self.pipe is None:
            self.load()
        generator = torch.Generator("cpu").manual_seed(s.seed)
        return EditedVideo(to_uint8_frames(self.call(frames, sample, generator)), s.fps)

    def _common(self, frames: np.ndarray, sample: Sample, generator: Any) -> dict[str, Any]:
        return dict(
            prompt=sample.prompt,
            height=frames.shape[1],
            width=frames.shape[2],
            num_frames=len(frames),
            num_inference_steps=self.settings.steps,
            generator=generator,
            output_type="np",
        )

    @abstractmethod
    def call(self, frames: np.ndarray, sample: Sample, generator: Any) -> Any:
        """Run the pipeline on (T, H, W, 3) uint8 source frames; return its output."""


def _pil(frames: np.ndarray) -> list:
    from PIL import Image

    return [Image.fromarray(f) for f in frames]


class LucyEdit(DiffusersAdapter):
    name = "lucy-edit"
    default_repo = "decart-ai/Lucy-Edit-Dev"
    pipeline_class = "LucyEditPipeline"

    def call(self, frames: np.ndarray, sample: Sample, generator: Any) -> Any:
        return self.pipe(
            video=_pil(frames), guidance_scale=self.settings.guidance, **self._common(frames, sample, generator)
        )


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
        mask = load_mask(mask_path)[: len(frames)]
        rows, cols = centre_crop(mask.shape[2], mask.shape[1], (frames.shape[2], frames.shape[1]))
        fg = morph(resize_mask(mask[:, rows, cols], (frames.shape[2], frames.shape[1])), 4)
        background = np.repeat((~fg)[..., None].astype(np.uint8) * 255, 3, axis=-1)
        return self.pipe(video=_pil(frames), mask=_pil(background), **self._common(frames, sample, generator))
