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


class KiwiModel(nn.Module):
    def __init__(self, encoder: ConditionEncoder, denoiser: Denoiser, vae, *, sigma_min: float = 0.0,
                 has_reference: bool = True):
        super().__init__()
        self.encoder, self.denoiser, self.vae = encoder, denoiser, vae
        self.sigma_min, self.has_reference = sigma_min, has_reference
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

    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """(T, H, W, 3) uint8 -> normalised latents (1, C, t, h, w) in the model's dtype."""
        video = torch.from_numpy(np.array(frames)).permute(3, 0, 1, 2)[None]
        video = (video.float() / 127.5 - 1.0).to(self.execution_device)
        mu = self.vae.encode(video.to(self.vae.dtype)).latent_dist.mode()
        scale, mean = self.latent_scale.to(mu.device, mu.dtype), self.latent_mean.to(mu.device, mu.dtype)
        return ((mu - mean) * scale).to(self.dtype)

    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Normalised latents -> (T, H, W, 3) uint8 frames (truncated like the released code)."""
        z = latents.to(self.vae.dtype)
        z = z / self.latent_scale.to(z.device, z.dtype) + self.latent_mean.to(z.device, z.dtype)
        video = self.vae.decode(z).sample[0].permute(1, 2, 3, 0)
        return ((video.float() + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).cpu().numpy()

    @torch.inference_mode()
    def generate(self, prompt: str, frames: np.ndarray, reference: np.ndarray | None = None,
                 sampling: Sampling = Sampling()) -> np.ndarray:
        """Edit (T, H, W, 3) uint8 frames (already at the working size) by an instruction."""
        if reference is not None and not self.has_reference:
            raise ValueError("these weights hold no reference-image conditioning (no reference queries)")
        context = self.encoder(prompt, frames, reference).to(self.execution_device, self.dtype)
        source = self.encode(frames)
        ref = None
        if reference is not None:
            ref = self.encode(pad_reference(reference, (frames.shape[2], frames.shape[1]))[None])
        generator = torch.Generator("cpu").manual_seed(sampling.seed)
        latents = torch.randn(source.shape, generator=generator, dtype=torch.float32)
        latents = latents.to(self.execution_device, self.dtype)
        sigma_min = self.sigma_min if sampling.sigma_min is None else sampling.sigma_min
        schedule = FlowSchedule.make(sampling.steps, sampling.shift, sigma_min)
        for index, value in enumerate(schedule.timesteps):
            timestep = value[None].to(self.execution_device, self.dtype)
            prediction = self.denoiser(latents, timestep, schedule.sigma(timestep), context, source, ref)
            latents = schedule.step(prediction, index, latents)
        return self.decode(latents)
