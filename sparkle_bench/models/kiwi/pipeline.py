"""The Kiwi model as one module: condition encoder, denoiser (DiT + conditional embedders) and VAE,
with the encode/decode conventions of the released code and the sampling loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .dit import Denoiser
from .encoder import ConditionEncoder
from .frames import pad_reference
from .sampler import SHIFT, FlowSchedule


@dataclass(frozen=True)
class Sampling:
    steps: int = 50
    seed: int = 0
    shift: float = SHIFT
    sigma_min: float | None = None  # None: the model's own (set by how it was loaded)
    tiling: str = "diffsynth"  # VAE tiles: the official script's, diffusers' own, or none
    rounding: str = "diffsynth"  # pixel scaling and tile blending in the model dtype (as DiffSynth), or float32


class KiwiModel(nn.Module):
    def __init__(
        self, encoder: ConditionEncoder, denoiser: Denoiser, vae, *, sigma_min: float = 0.0, has_reference: bool = True
    ):
        super().__init__()
        self.encoder, self.denoiser, self.vae = encoder, denoiser, vae
        self.sigma_min, self.has_reference = sigma_min, has_reference
        # pixels to [-1, 1] as x * 2/255 - 1 (DiffSynth), else x / 127.5 - 1 (the folders' pipeline)
        self.diffsynth_pixels = False
        mean, std = torch.tensor(vae.config.latents_mean), torch.tensor(vae.config.latents_std)
        self.register_buffer("latent_mean", mean.view(1, -1, 1, 1, 1), persistent=False)
        self.register_buffer("latent_scale", (1.0 / std).view(1, -1, 1, 1, 1), persistent=False)
        self.execution_device = torch.device("cpu")

    @property
    def transformer(self):
        return self.denoiser.transformer

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.patch_embedding.weight.dtype

    def place(self, device: str | torch.device, offload: bool = False) -> "KiwiModel":
        """Move to ``device``, or keep weights on the CPU and move each part to ``device`` only
        while it runs (encoder, then denoiser, then VAE)."""
        self.execution_device = torch.device(device)
        if not offload:
            return self.to(self.execution_device)
        from accelerate import cpu_offload_with_hook

        hook = None
        for part in (self.encoder, self.denoiser, self.vae):
            _, hook = cpu_offload_with_hook(part, self.execution_device, prev_module_hook=hook)
        return self

    def _normalise(self, mu: torch.Tensor) -> torch.Tensor:
        return (mu - self.latent_mean.to(mu.device, mu.dtype)) * self.latent_scale.to(mu.device, mu.dtype)

    def encode(self, frames: np.ndarray, tiling: str = "off", rounding: str = "float32") -> torch.Tensor:
        """(T, H, W, 3) uint8 -> normalised latents (1, C, t, h, w) in the model's dtype.

        ``rounding="diffsynth"`` scales the pixels in the VAE's dtype, as upstream does (DiffSynth's
        ``preprocess_video``: ``x * 2/255 - 1``; the released folders' pipeline: ``x / 127.5 - 1``);
        ``tiling`` as in :class:`Sampling` (diffusers tiling is the VAE's own switch)."""
        video = torch.from_numpy(np.array(frames)).permute(3, 0, 1, 2)[None]
        if rounding == "diffsynth":
            video = video.to(self.execution_device, self.vae.dtype)
            video = video * (2 / 255) - 1 if self.diffsynth_pixels else video / 127.5 - 1.0
        else:
            video = (video.float() / 127.5 - 1.0).to(self.execution_device).to(self.vae.dtype)
        self.vae.use_tiling = tiling == "diffusers"

        def run(pixels: torch.Tensor) -> torch.Tensor:
            return self._normalise(self.vae.encode(pixels.to(self.execution_device)).latent_dist.mode())

        if tiling == "diffsynth":
            from .tiling import STRIDE, TILE, tiled

            factor = self.vae.config.scale_factor_spatial
            blend = video.dtype if rounding == "diffsynth" else torch.float32
            latents = tiled(
                run,
                video.cpu(),
                1 / factor,
                self.vae.config.z_dim,
                (video.shape[2] + 3) // 4,
                (TILE[0] * factor, TILE[1] * factor),
                (STRIDE[0] * factor, STRIDE[1] * factor),
                blend,
            )
            return latents.to(self.execution_device, self.dtype)
        return run(video).to(self.dtype)

    def decode(self, latents: torch.Tensor, tiling: str = "off", rounding: str = "float32") -> np.ndarray:
        """Normalised latents -> (T, H, W, 3) uint8 frames (truncated like the released code); with
        ``rounding="diffsynth"`` the conversion to pixels runs in the VAE's dtype, as DiffSynth's does."""
        z = latents.to(self.vae.dtype)
        z = z / self.latent_scale.to(z.device, z.dtype) + self.latent_mean.to(z.device, z.dtype)
        self.vae.use_tiling = tiling == "diffusers"
        if tiling == "diffsynth":
            from .tiling import STRIDE, TILE, decode_unclamped, tiled

            blend = z.dtype if rounding == "diffsynth" else torch.float32
            video = tiled(
                lambda part: decode_unclamped(self.vae, part.to(self.execution_device)),
                z.cpu(),
                self.vae.config.scale_factor_spatial,
                3,
                z.shape[2] * 4 - 3,
                TILE,
                STRIDE,
                blend,
            )
            video = video.clamp(-1, 1)[0].permute(1, 2, 3, 0)
        else:
            video = self.vae.decode(z).sample[0].permute(1, 2, 3, 0)
        if rounding != "diffsynth":
            video = video.float()
        return ((video + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()

    @torch.inference_mode()
    def generate(
        self, prompt: str, frames: np.ndarray, reference: np.ndarray | None = None, sampling: Sampling = Sampling()
    ) -> np.ndarray:
        """Edit (T, H, W, 3) uint8 frames (already at the working size) by an instruction."""
        if reference is not None and not self.has_reference:
            raise ValueError("these weights hold no reference-image conditioning (no reference queries)")
        context = self.encoder(prompt, frames, reference).to(self.execution_device, self.dtype)
        source = self.encode(frames, sampling.tiling, sampling.rounding)
        ref = None
        if reference is not None:
            ref = self.encode(
                pad_reference(reference, (frames.shape[2], frames.shape[1]))[None], sampling.tiling, sampling.rounding
            )
        generator = torch.Generator("cpu").manual_seed(sampling.seed)
        latents = torch.randn(source.shape, generator=generator, dtype=torch.float32)
        latents = latents.to(self.execution_device, self.dtype)
        sigma_min = self.sigma_min if sampling.sigma_min is None else sampling.sigma_min
        schedule = FlowSchedule.make(sampling.steps, sampling.shift, sigma_min)
        for index, value in enumerate(schedule.timesteps):
            timestep = value[None].to(self.execution_device, self.dtype)
            prediction = self.denoiser(latents, timestep, schedule.sigma(timestep), context, source, ref)
            latents = schedule.step(prediction, index, latents)
        return self.decode(latents, sampling.tiling, sampling.rounding)
