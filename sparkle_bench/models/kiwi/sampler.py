"""Kiwi's flow-matching schedule: shifted sigmas, Euler steps, and the training draws and weights.

Sigmas are ``linspace(1, sigma_min, N + 1)[:-1]`` shifted by ``s' = shift*s / (1 + (shift-1)*s)``;
timesteps are ``1000 * sigma``. A timestep is matched back to its sigma by nearest value, after the
timestep has been cast to the model's dtype, exactly as the released code does (in bf16, two
timesteps near 1000 can round to the same value). No classifier-free guidance: the released
sampler's CFG branch is inactive.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

TRAIN_STEPS = 1000
SHIFT = 5.0
SIGMA_MIN_DIFFSYNTH = 0.0  # the official Sparkle-Bench script (DiffSynth pipeline)
SIGMA_MIN_DIFFUSERS = 0.003 / 1.002  # the released diffusers-format pipeline


@dataclass(frozen=True)
class FlowSchedule:
    sigmas: torch.Tensor  # float32, decreasing
    timesteps: torch.Tensor  # 1000 * sigmas

    @classmethod
    def make(cls, steps: int, shift: float = SHIFT, sigma_min: float = SIGMA_MIN_DIFFSYNTH) -> "FlowSchedule":
        sigmas = torch.linspace(1.0, sigma_min, steps + 1)[:-1]
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
        return cls(sigmas, sigmas * TRAIN_STEPS)

    def index(self, timestep: torch.Tensor) -> int:
        return int(torch.argmin((self.timesteps - timestep.detach().float().cpu()).abs()))

    def sigma(self, timestep: torch.Tensor) -> torch.Tensor:
        return self.sigmas[self.index(timestep)]

    def step(self, velocity: torch.Tensor, index: int, latents: torch.Tensor) -> torch.Tensor:
        """One Euler step from sigma[index] to the next sigma (0 after the last)."""
        following = self.sigmas[index + 1] if index + 1 < len(self.sigmas) else torch.tensor(0.0)
        return latents + velocity * (following - self.sigmas[index]).to(latents.device)

    def training_weights(self) -> torch.Tensor:
        """A Gaussian bump over timesteps centred mid-schedule, shifted to 0 at its minimum and
        normalised to mean 1 (the released trainer's loss weighting)."""
        steps = len(self.timesteps)
        bump = torch.exp(-2 * ((self.timesteps - steps / 2) / steps) ** 2)
        bump = bump - bump.min()
        return bump * (steps / bump.sum())
