"""Kiwi's DiT step on diffusers' ``WanTransformer3DModel``: the plain Wan forward plus two inputs.

- the source video's latents, embedded and added to the patch embedding scaled by the current
  sigma (a strong hint early, none at the end);
- an optional reference image's latents, embedded as extra tokens appended (or prepended) to the
  sequence with the 3D RoPE extended in time, and dropped again before unpatchify.
The text embedder is skipped: the condition encoder's connector already outputs the DiT width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .embedders import ConditionalEmbedder


def timestep_embedding(dim: int, timestep: torch.Tensor) -> torch.Tensor:
    """Sinusoidal [cos | sin] embedding computed in float64 (as the model was trained), cast back."""
    half = dim // 2
    freqs = torch.pow(10000, -torch.arange(half, dtype=torch.float64, device=timestep.device).div(half))
    angles = torch.outer(timestep.to(torch.float64), freqs)
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1).to(timestep.dtype)


def rope_grid(rope, frames: int, height: int, width: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin) of shape (1, F*H*W, 1, head_dim) for a token grid, from the model's RoPE tables."""
    sizes = [rope.t_dim, rope.h_dim, rope.w_dim]
    tables = []
    for table in (rope.freqs_cos, rope.freqs_sin):
        t, h, w = table.split(sizes, dim=1)
        grid = torch.cat(
            [
                t[:frames].view(frames, 1, 1, -1).expand(frames, height, width, -1),
                h[:height].view(1, height, 1, -1).expand(frames, height, width, -1),
                w[:width].view(1, 1, width, -1).expand(frames, height, width, -1),
            ],
            dim=-1,
        )
        tables.append(grid.reshape(1, frames * height * width, 1, -1).to(device))
    return tables[0], tables[1]


class Denoiser(nn.Module):
    """The DiT and the embedders of its extra inputs; ``forward`` is one velocity prediction."""

    def __init__(
        self,
        transformer,
        source_embedder: ConditionalEmbedder,
        ref_embedder: ConditionalEmbedder,
        ref_first: bool = False,
    ):
        super().__init__()
        self.transformer, self.source_embedder, self.ref_embedder = transformer, source_embedder, ref_embedder
        self.ref_first = ref_first
        self.gradient_checkpointing = False

    def forward(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor,
        sigma: torch.Tensor,
        context: torch.Tensor,
        source_latents: torch.Tensor | None = None,
        ref_latents: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The flow-matching velocity for ``latents`` (B, C, F, H, W) at ``timestep`` (B,)."""
        transformer = self.transformer
        embedder = transformer.condition_embedder
        time_dtype = embedder.time_embedder.linear_1.weight.dtype
        temb = embedder.time_embedder(timestep_embedding(transformer.config.freq_dim, timestep).to(time_dtype))
        modulation = embedder.time_proj(F.silu(temb).to(embedder.time_proj.weight.dtype)).unflatten(1, (6, -1))

        x = transformer.patch_embedding(latents)
        if source_latents is not None:
            x = x + self.source_embedder(source_latents) * sigma.to(x.device)
        frames, height, width = x.shape[2:]
        x = x.flatten(2).transpose(1, 2).contiguous()
        ref_tokens = ref_frames = 0
        if ref_latents is not None:
            ref = self.ref_embedder(ref_latents)
            ref_frames = ref.shape[2]
            ref = ref.flatten(2).transpose(1, 2).to(x.dtype)
            ref_tokens = ref.shape[1]
            x = torch.cat([ref, x] if self.ref_first else [x, ref], dim=1)
        rotary = rope_grid(transformer.rope, frames + ref_frames, height, width, x.device)

        for block in transformer.blocks:
            if self.gradient_checkpointing and torch.is_grad_enabled():
                x = checkpoint(block, x, context, modulation, rotary, use_reentrant=False)
            else:
                x = block(x, context, modulation, rotary)

        shift, scale = (transformer.scale_shift_table.to(x.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        x = (transformer.norm_out(x.float()) * (1 + scale) + shift).type_as(x)
        x = transformer.proj_out(x)
        if ref_tokens:
            x = x[:, ref_tokens:] if self.ref_first else x[:, :-ref_tokens]
        p_t, p_h, p_w = transformer.config.patch_size
        x = x.reshape(x.shape[0], frames, height, width, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
        return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
