"""Our sampler for Wan2.2-Fun-A14B-Control, following VideoX-Fun's control pipeline for the facts.

Conditioning, all as normalised Wan-VAE latents: the control video (``control_latents``, 16
channels); the start image as an image-to-video input (a 4-channel mask that is 1 on the first
latent frame, and the latents of a video that is the image then grey); optionally a reference
image (one latent frame, through the expert's ``ref_conv``; zeros when the expert has one and no
image is given). The flow-matching Euler schedule (shift 5) runs the high-noise expert while the
timestep is at or above ``boundary * 1000`` and the low-noise expert after, with classifier-free
guidance against the negative prompt.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .denoiser import velocity


@dataclass
class Expert:
    transformer: nn.Module
    ref_conv: nn.Conv2d | None


@dataclass
class FunControlParts:
    """Everything a render needs, loaded once: two experts and the Wan VAE, text encoder and tokenizer."""

    high: Expert
    low: Expert
    vae: nn.Module
    text_encoder: nn.Module
    tokenizer: object
    text_len: int = 512
    offload: bool = False  # experts and text encoder wait on the CPU, each moved to the device while it works

    def active(self, expert: Expert, device: str) -> Expert:
        """``expert``, on ``device``; with ``offload``, the other expert back on the CPU first."""
        if self.offload:
            for other in (self.high, self.low):
                if other is not expert:
                    other.transformer.to("cpu")
            expert.transformer.to(device)
        return expert


@dataclass(frozen=True)
class Sampling:
    steps: int
    guidance: float
    shift: float
    boundary: float
    seed: int
    negative_prompt: str = ""
    reference: bool = False  # the start image also as Fun's reference image (ref_conv)


def encode_text(parts: FunControlParts, prompts: list[str], device: str) -> torch.Tensor:
    """UMT5 states of each prompt, cut to its tokens and zero-padded to ``text_len`` (as the DiT sees them)."""
    tokens = parts.tokenizer(
        prompts,
        padding="max_length",
        max_length=parts.text_len,
        truncation=True,
        add_special_tokens=True,
        return_attention_mask=True,
        return_tensors="pt",
    )
    mask = tokens.attention_mask.to(device)
    if parts.offload:
        parts.text_encoder.to(device)
    with torch.no_grad():
        states = parts.text_encoder(tokens.input_ids.to(device), attention_mask=mask).last_hidden_state
    if parts.offload:
        parts.text_encoder.to("cpu")
    return states * mask.unsqueeze(-1).to(states.dtype)


def _pixels(frames: np.ndarray, device: str, dtype: torch.dtype) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (1, 3, T, H, W) in [-1, 1]."""
    video = torch.from_numpy(np.ascontiguousarray(frames)).to(device=device, dtype=torch.float32)
    return (video.permute(3, 0, 1, 2).unsqueeze(0) / 127.5 - 1.0).to(dtype)


def encode_video(vae: nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    """Normalised latents (the mode of the posterior), as the Wan DiT expects them."""
    with torch.no_grad():
        latents = vae.encode(pixels).latent_dist.mode()
    mean = torch.tensor(vae.config.latents_mean, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    return (latents - mean) / std


def decode_video(vae: nn.Module, latents: torch.Tensor) -> np.ndarray:
    """(T, H, W, 3) uint8 of normalised latents."""
    mean = torch.tensor(vae.config.latents_mean, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std, device=latents.device, dtype=latents.dtype).view(1, -1, 1, 1, 1)
    with torch.no_grad():
        video = vae.decode((latents * std + mean).to(vae.dtype)).sample.clamp(-1, 1)
    video = ((video[0].float() + 1) / 2).permute(1, 2, 3, 0).cpu().numpy()
    return (video * 255).round().astype(np.uint8)


def conditions(
    parts: FunControlParts,
    control: np.ndarray,
    first_frame: np.ndarray,
    reference: bool,
    device: str,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(y, ref_latents): y = [control latents, start-image mask, start-image video latents] (B, 36, F, h, w)."""
    pixels = _pixels(control, device, parts.vae.dtype)
    control_latents = encode_video(parts.vae, pixels)
    start = torch.zeros_like(pixels)  # 0 is grey in [-1, 1]: every frame but the first
    start[:, :, 0] = _pixels(first_frame[None], device, parts.vae.dtype)[:, :, 0]
    start_latents = encode_video(parts.vae, start)
    mask = torch.zeros_like(start_latents[:, :4])
    mask[:, :, 0] = 1.0  # the first latent frame is given
    ref_latents = None
    if parts.high.ref_conv is not None or parts.low.ref_conv is not None:
        ref_latents = (
            encode_video(parts.vae, _pixels(first_frame[None], device, parts.vae.dtype))[:, :, 0]
            if reference
            else torch.zeros_like(control_latents[:, :, 0])
        )
    y = torch.cat([control_latents, mask, start_latents], dim=1).to(dtype)
    return y, ref_latents.to(dtype) if ref_latents is not None else None


def render(
    parts: FunControlParts,
    control: np.ndarray,
    first_frame: np.ndarray,
    prompt: str,
    sampling: Sampling,
    device: str = "cpu",
) -> np.ndarray:
    """The edited video (T, H, W, 3) uint8 for a control video (T, H, W, 3) and its start image (H, W, 3)."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from diffusers.utils.torch_utils import randn_tensor

    dtype = parts.high.transformer.patch_embedding.weight.dtype
    count = control.shape[0]
    if (count - 1) % 4:
        raise ValueError(f"Fun-Control renders 4k+1 frames, got {count}")
    y, ref_latents = conditions(parts, control, first_frame, sampling.reference, device, dtype)
    guided = sampling.guidance > 1.0
    context = encode_text(parts, [sampling.negative_prompt, prompt] if guided else [prompt], device)
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=sampling.shift)
    scheduler.set_timesteps(sampling.steps, device=device)
    generator = torch.Generator(device="cpu" if not str(device).startswith("cuda") else device).manual_seed(
        sampling.seed
    )
    latents = randn_tensor(y[:, :16].shape, generator=generator, device=torch.device(device), dtype=dtype)
    batch = 2 if guided else 1
    y_in = y.repeat(batch, 1, 1, 1, 1)
    ref_in = ref_latents.repeat(batch, 1, 1, 1) if ref_latents is not None else None
    for t in scheduler.timesteps:
        expert = parts.active(
            parts.high if t >= sampling.boundary * scheduler.config.num_train_timesteps else parts.low, device
        )
        predicted = velocity(
            expert.transformer,
            expert.ref_conv,
            latents.repeat(batch, 1, 1, 1, 1),
            t.expand(batch),
            context,
            y_in,
            ref_in if expert.ref_conv is not None else None,
        )
        if guided:
            uncond, cond = predicted.chunk(2)
            predicted = uncond + sampling.guidance * (cond - uncond)
        latents = scheduler.step(predicted, t, latents, return_dict=False)[0]
    return decode_video(parts.vae, latents)
