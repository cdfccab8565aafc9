"""The official protocol's VAE tiling (DiffSynth's ``WanVideoVAE``): overlapping spatial tiles, each
encoded or decoded on its own over all frames, blended with linear ramps across the overlaps.

Tiles are 30x52 latents at a stride of 15x26 (480x832 pixels at 240x416 with the Wan2.2 VAE's 16x
compression); a tile that would only repeat the last one's coverage is skipped, and tiles at the
far edges are cut short. Decoded tiles are blended unclamped and the result is clamped once, and
the blend runs in the latents' dtype, as upstream does. Memory is bounded by one tile whatever the
frame size; diffusers' own tiling (``vae.enable_tiling()``) cuts differently, so its pixels differ.
"""

from __future__ import annotations

from typing import Callable

import torch

TILE = (30, 52)  # latents (H, W)
STRIDE = (15, 26)


def tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Tile origins along one axis, as upstream picks them."""
    return [s for s in range(0, length, stride) if not (s - stride >= 0 and s - stride + size >= length)]


def ramp_mask(height: int, width: int, bounds: tuple[bool, bool, bool, bool], border: tuple[int, int]) -> torch.Tensor:
    """(1, 1, 1, H, W) weights: 1 inside, linear ramps (1/b ... 1) on the sides that are not a frame edge."""

    def ramp(length: int, first: bool, last: bool, size: int) -> torch.Tensor:
        x = torch.ones(length)
        steps = (torch.arange(size) + 1) / size
        if not first:
            x[:size] = steps
        if not last:
            x[-size:] = torch.flip(steps, dims=(0,))
        return x

    rows = ramp(height, bounds[0], bounds[1], border[0])[:, None].expand(height, width)
    cols = ramp(width, bounds[2], bounds[3], border[1])[None, :].expand(height, width)
    return torch.minimum(rows, cols)[None, None, None]


def tiled(
    run: Callable[[torch.Tensor], torch.Tensor],
    data: torch.Tensor,
    factor: float,
    channels: int,
    frames: int,
    tile: tuple[int, int] = TILE,
    stride: tuple[int, int] = STRIDE,
    blend_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Run ``run`` on overlapping spatial tiles of ``data`` (B, C, T, H, W) and blend the outputs.

    ``tile``/``stride`` are in ``data``'s own units; ``factor`` is output size / input size (16 for a
    decode, 1/16 for an encode); outputs are ``channels`` x ``frames`` and are blended on the CPU in
    ``blend_dtype`` (default: ``data``'s dtype)."""
    _, _, _, height, width = data.shape
    dtype = blend_dtype or data.dtype
    out_h, out_w = round(height * factor), round(width * factor)
    values = torch.zeros((1, channels, frames, out_h, out_w), dtype=dtype)
    weight = torch.zeros((1, 1, frames, out_h, out_w), dtype=dtype)
    border = (round((tile[0] - stride[0]) * factor), round((tile[1] - stride[1]) * factor))
    for top in tile_starts(height, tile[0], stride[0]):
        for left in tile_starts(width, tile[1], stride[1]):
            bottom, right = top + tile[0], left + tile[1]
            out = run(data[:, :, :, top:bottom, left:right]).to("cpu", dtype)
            mask = ramp_mask(
                out.shape[3], out.shape[4], (top == 0, bottom >= height, left == 0, right >= width), border
            ).to(dtype)
            y, x = round(top * factor), round(left * factor)
            values[:, :, :, y : y + out.shape[3], x : x + out.shape[4]] += out * mask
            weight[:, :, :, y : y + out.shape[3], x : x + out.shape[4]] += mask
    return values / weight


def decode_unclamped(vae, z: torch.Tensor) -> torch.Tensor:
    """diffusers ``AutoencoderKLWan`` decode of un-normalised latents without its final clamp (upstream
    clamps only after blending the tiles)."""
    from diffusers.models.autoencoders.autoencoder_kl_wan import unpatchify

    hook = getattr(vae, "_hf_hook", None)
    if hook is not None:  # what diffusers' @apply_forward_hook does for decode(): bring offloaded weights in
        hook.pre_forward(vae)
    vae.clear_cache()
    x = vae.post_quant_conv(z)
    chunks = []
    for index in range(x.shape[2]):
        vae._conv_idx = [0]
        chunks.append(
            vae.decoder(
                x[:, :, index : index + 1], feat_cache=vae._feat_map, feat_idx=vae._conv_idx, first_chunk=index == 0
            )
        )
    out = torch.cat(chunks, 2)
    if vae.config.patch_size is not None:
        out = unpatchify(out, patch_size=vae.config.patch_size)
    vae.clear_cache()
    return out
