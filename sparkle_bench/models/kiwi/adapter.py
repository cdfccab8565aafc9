"""``--model kiwi-edit`` and ``--model kiwi-sparkle``: our own Kiwi code on the released weights,
run by the official Sparkle-Bench protocol unless told otherwise (``--model-option KEY=VALUE``)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ...bench import Bench, Sample
from ...video import read_frames
from ..base import AdapterError, EditedVideo, ModelAdapter
from ..options import parse_options
from .frames import MAX_FRAMES, PIXEL_BUDGET, SIDE_MULTIPLE, prepare_video
from .sampler import SHIFT
from .sources import refuse_pickle


@dataclass(frozen=True)
class KiwiSettings:
    steps: int = 50
    seed: int = 0  # per sample: the same video whether the run is sharded or not
    max_frames: int = MAX_FRAMES
    pixel_budget: int = PIXEL_BUDGET
    multiple: int = SIDE_MULTIPLE
    fps: float = 15.0
    shift: float = SHIFT
    sigma_min: float | None = None  # None: as the weights' own release samples
    dtype: str | None = None  # default: bfloat16 on GPU, float32 on CPU
    device: str | None = None
    offload: bool = False
    tiling: bool = True  # VAE tiling (memory)
    reference: bool = False  # condition on the bench's ref_images/
    base: str | None = None  # DiffSynth checkpoints: the Wan2.2-TI2V-5B diffusers base (default: kiwi.json, else the release)
    mllm: str | None = None  # ... and Qwen2.5-VL-3B-Instruct
    lora_alpha: float = 1.0


class KiwiEdit(ModelAdapter):
    """Kiwi-Edit (Wan2.2-TI2V-5B DiT + VAE, Qwen2.5-VL-3B condition encoder)."""

    name = "kiwi-edit"
    default_source = "linyq/kiwi-edit-5b-instruct-only-diffusers"

    def __init__(self, arg: str | None = None) -> None:
        self.source = arg or self.default_source
        refuse_pickle(self.source)
        self.settings = KiwiSettings()
        self.model = None

    @property
    def spec(self) -> str:
        return self.name if self.source == self.default_source else f"{self.name}:{self.source}"

    @property
    def run_suffix(self) -> str:
        return "-ref" if self.settings.reference else ""

    def configure(self, options: dict[str, str]) -> None:
        self.settings = parse_options(self.settings, options, self.name)

    def setup(self, bench: Bench) -> None:
        if self.settings.reference and not any(s.ref_image for s in bench.samples):
            raise AdapterError(f"--reference needs the bench's ref_images/{{theme}}/{{id}}.png; {bench.name} has none")

    def load(self) -> None:
        from ...placement import placement
        from .sources import open_kiwi

        s = self.settings
        device, dtype = placement(s.device, s.dtype)
        model = open_kiwi(self.source, dtype, s.base, s.mllm, s.lora_alpha)
        if s.tiling:
            model.vae.enable_tiling()
        self.model = model.place(device, offload=s.offload)

    def edit(self, sample: Sample) -> EditedVideo:
        from .pipeline import Sampling

        s = self.settings
        reference = None
        if s.reference:
            if sample.ref_image is None:
                raise AdapterError(f"no reference image ref_images/{sample.theme}/{sample.id}.png")
            reference = cv2.cvtColor(cv2.imread(str(sample.ref_image)), cv2.COLOR_BGR2RGB)
        frames = prepare_video(read_frames(sample.source), s.pixel_budget, s.multiple, s.max_frames)
        if self.model is None:
            self.load()
        video = self.model.generate(sample.prompt, frames, reference, Sampling(s.steps, s.seed, s.shift, s.sigma_min))
        return EditedVideo(np.asarray(video), s.fps)


class KiwiSparkle(KiwiEdit):
    """Kiwi-Sparkle: Kiwi-Edit stage 2 fine-tuned on Sparkle (a DiffSynth ``model.safetensors``)."""

    name = "kiwi-sparkle"
    default_source = "stdKonjac/Kiwi-Sparkle-720P-81F"
