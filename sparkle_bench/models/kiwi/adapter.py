"""``--model kiwi-edit`` and ``--model kiwi-sparkle``: our own Kiwi code on the released weights,
run by the official Sparkle-Bench protocol unless told otherwise (``--model-option KEY=VALUE``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...bench import Bench, Sample
from ...images import read_rgb
from ...video import OFFICIAL_CRF, read_frames, write_video
from ..base import AdapterError, EditedVideo, ModelAdapter
from ..hub import HubRepo
from ..options import parse_options
from .frames import MAX_FRAMES, PIXEL_BUDGET, SIDE_MULTIPLE, prepare_video
from .releases import KIWI_EDIT_STAGE2, KIWI_SPARKLE, kiwi_hub_repos
from .sampler import SHIFT
from .sources import refuse_pickle

TILINGS = ("diffsynth", "diffusers", "off")
ROUNDINGS = ("diffsynth", "float32")


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
    tiling: str = "diffsynth"  # VAE tiles of 30x52 latents at stride 15x26 as the official script; "diffusers", "off"
    # bf16 arithmetic where DiffSynth has it (pixel scaling, tile blending, LoRA merge); "float32"
    rounding: str = "diffsynth"
    crf: int = OFFICIAL_CRF  # the official mp4 quality (imageio quality=5); lower keeps more
    reference: bool = False  # condition on the bench's ref_images/
    # DiffSynth checkpoints: the Wan2.2-TI2V-5B diffusers base (default: kiwi.json, else the release)
    base: str | None = None
    mllm: str | None = None  # ... and Qwen2.5-VL-3B-Instruct
    lora_alpha: float = 1.0


class KiwiEdit(ModelAdapter):
    """Kiwi-Edit (Wan2.2-TI2V-5B DiT + VAE, Qwen2.5-VL-3B condition encoder)."""

    name = "kiwi-edit"
    default_source = KIWI_EDIT_STAGE2  # the checkpoint Sparkle fine-tuned from: its published Kiwi-Edit row

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
        settings = parse_options(self.settings, options, self.name)
        for key, allowed in (("tiling", TILINGS), ("rounding", ROUNDINGS)):
            if getattr(settings, key) not in allowed:
                raise AdapterError(
                    f"model {self.name!r}: option {key}={getattr(settings, key)!r}: "
                    f"expected one of {', '.join(allowed)}"
                )
        self.settings = settings

    def hub_repos(self) -> list[HubRepo]:
        from pathlib import Path

        from .sidecar import read_sidecar

        path = Path(self.source).expanduser()
        recorded = read_sidecar(path) if path.exists() else None
        return kiwi_hub_repos(self.source, self.settings.base, self.settings.mllm, recorded)

    def memory_plan(self) -> list[str]:
        """The GPU memory the protocol's largest sample needs with these settings (``--dry-run``)."""
        from .full_size import memory_plan

        s = self.settings
        tiles = {"diffsynth": (480, 832), "diffusers": (256, 256), "off": None}[s.tiling]
        per_value = 4 if s.dtype == "float32" else 2
        plan = memory_plan(s.max_frames, 1280, 720, s.pixel_budget, s.multiple, tiles, per_value)
        return plan.lines()

    def setup(self, bench: Bench) -> None:
        if self.settings.reference and not any(s.ref_image for s in bench.samples):
            raise AdapterError(f"--reference needs the bench's ref_images/{{theme}}/{{id}}.png; {bench.name} has none")

    def load(self) -> None:
        from ...placement import placement
        from .sources import open_kiwi

        s = self.settings
        device, dtype = placement(s.device, s.dtype)
        model = open_kiwi(self.source, dtype, s.base, s.mllm, s.lora_alpha, s.rounding)
        self.model = model.place(device, offload=s.offload)

    def edit(self, sample: Sample) -> EditedVideo:
        from .pipeline import Sampling

        s = self.settings
        reference = None
        if s.reference:
            if sample.ref_image is None:
                raise AdapterError(f"no reference image ref_images/{sample.theme}/{sample.id}.png")
            reference = read_rgb(sample.ref_image)
        frames = prepare_video(read_frames(sample.source), s.pixel_budget, s.multiple, s.max_frames)
        if self.model is None:
            self.load()
        sampling = Sampling(s.steps, s.seed, s.shift, s.sigma_min, s.tiling, s.rounding)
        video = self.model.generate(sample.prompt, frames, reference, sampling)
        return EditedVideo(np.asarray(video), s.fps)

    def write(self, sample: Sample, target) -> None:
        video = self.edit(sample)
        write_video(target, video.frames, video.fps, crf=self.settings.crf)


class KiwiSparkle(KiwiEdit):
    """Kiwi-Sparkle: Kiwi-Edit stage 2 fine-tuned on Sparkle (a DiffSynth ``model.safetensors``)."""

    name = "kiwi-sparkle"
    default_source = KIWI_SPARKLE
