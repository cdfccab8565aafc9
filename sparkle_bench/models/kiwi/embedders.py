"""Kiwi's conditional embedders: VAE latents of the source video (or a reference image) patchified
to the DiT width by one Conv3d, zero-initialised so a fresh model starts as the plain DiT."""

from __future__ import annotations

import torch
from torch import nn


class ConditionalEmbedder(nn.Module):
    def __init__(self, in_dim: int, dim: int, patch_size: tuple[int, int, int] = (1, 2, 2), zero_init: bool = True):
        super().__init__()
        self.patch_embedding = nn.Conv3d(in_dim, dim, kernel_size=tuple(patch_size), stride=tuple(patch_size))
        if zero_init:
            nn.init.zeros_(self.patch_embedding.weight)
            nn.init.zeros_(self.patch_embedding.bias)

    def config(self) -> dict:
        conv = self.patch_embedding
        return {"in_dim": conv.in_channels, "dim": conv.out_channels, "patch_size": list(conv.kernel_size)}

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.patch_embedding(latents.to(self.patch_embedding.weight.dtype))
