"""Fun-Control's DiT step on diffusers' ``WanTransformer3DModel``: the plain Wan forward with two inputs
VideoX-Fun adds.

- the condition latents ``y`` (control video, start-image mask, start-image video) are concatenated
  to the noisy latents along channels before the patch embedding (hence ``in_channels`` 52 = 16 + 36);
- with ``ref_conv``, the reference image's latents become one frame of tokens put before the video's,
  the 3D RoPE counting it as frame 0, and dropped again before unpatchify.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...models.kiwi.dit import rope_grid, timestep_embedding


@torch.no_grad()
def velocity(
    transformer,
    ref_conv: nn.Conv2d | None,
    latents: torch.Tensor,
    timestep: torch.Tensor,
    context: torch.Tensor,
    condition: torch.Tensor,
    ref_latents: torch.Tensor | None,
) -> torch.Tensor:
    """The flow-matching prediction for ``latents`` (B, 16, F, H, W) at ``timestep`` (B,); ``context``
    (B, text_len, text_dim) is zero-padded text, ``condition`` (B, 36, F, H, W), ``ref_latents`` (B, 16, H, W)."""
    embedder = transformer.condition_embedder
    dtype = transformer.patch_embedding.weight.dtype
    temb = embedder.time_embedder(timestep_embedding(transformer.config.freq_dim, timestep.float()).to(dtype))
    modulation = embedder.time_proj(F.silu(temb)).unflatten(1, (6, -1))
    context = embedder.text_embedder(context.to(dtype))

    x = transformer.patch_embedding(torch.cat([latents, condition], dim=1).to(dtype))
    frames, height, width = x.shape[2:]
    x = x.flatten(2).transpose(1, 2)
    ref_tokens = 0
    if ref_conv is not None:
        ref = ref_conv(ref_latents.to(dtype)).flatten(2).transpose(1, 2)
        ref_tokens = ref.shape[1]
        x = torch.cat([ref, x], dim=1)
    rotary = rope_grid(transformer.rope, frames + (1 if ref_tokens else 0), height, width, x.device)
    for block in transformer.blocks:
        x = block(x, context, modulation, rotary)

    shift, scale = (transformer.scale_shift_table.to(x.device) + temb.unsqueeze(1)).chunk(2, dim=1)
    x = (transformer.norm_out(x.float()) * (1 + scale) + shift).type_as(x)
    x = transformer.proj_out(x)[:, ref_tokens:]
    p_t, p_h, p_w = transformer.config.patch_size
    x = x.reshape(x.shape[0], frames, height, width, p_t, p_h, p_w, -1).permute(0, 7, 1, 4, 2, 5, 3, 6)
    return x.flatten(6, 7).flatten(4, 5).flatten(2, 3)
