"""Kiwi at its real size without its weights: the published configurations (``configs/*.json``:
Wan2.2-TI2V-5B transformer and VAE, Qwen2.5-VL-3B-Instruct, Kiwi-Edit's stage-2 recipe) build the
full model on the meta device (shapes only: key maps can be checked against it in seconds) or with
random weights on a GPU (``benchmarks/gpu_check.py``), and give the memory a run needs before any
load (``--dry-run``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

import torch

from .frames import MAX_FRAMES, PIXEL_BUDGET, SIDE_MULTIPLE, frame_count, protocol_size

TRANSFORMER = "wan2.2_ti2v_5b_transformer.json"
VAE = "wan2.2_ti2v_5b_vae.json"
QWEN = "qwen2.5_vl_3b_instruct.json"
RECIPE = "kiwi_stage2_recipe.json"
GIB = 2**30


def load_config(name: str) -> dict:
    """One of the packaged configuration files, without its ``_``-prefixed bookkeeping keys."""
    text = resources.files(__package__).joinpath("configs", name).read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def full_size_kiwi(device: str | torch.device = "meta", dtype: torch.dtype = torch.bfloat16):
    """The full-size Kiwi model (DiT, VAE, Qwen2.5-VL encoder with queries and connectors, both
    embedders) on ``device``: shapes only on ``meta``, random weights elsewhere. Each part is cast
    to ``dtype`` as soon as it is built, so a GPU holds at most one float32 part at a time. The
    encoder has no processor: it cannot read prompts (``KiwiModel.generate`` needs real weights)."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from .dit import Denoiser
    from .embedders import ConditionalEmbedder
    from .encoder import ConditionEncoder, EncoderConfig
    from .pipeline import KiwiModel

    def cast(module: torch.nn.Module) -> torch.nn.Module:
        """To ``dtype``, except the modules diffusers keeps in float32 when it loads weights."""
        torch.nn.Module.to(module, dtype)
        keep = getattr(module, "_keep_in_fp32_modules", None) or []
        for name, sub in module.named_modules():
            if any(part in keep for part in name.split(".")):
                torch.nn.Module.to(sub, torch.float32)
        return module

    recipe = load_config(RECIPE)
    queries = {k: recipe[k] for k in ("num_image_queries", "num_video_queries", "num_ref_queries")}
    with torch.device(device):
        transformer = cast(WanTransformer3DModel(**load_config(TRANSFORMER)))
        cfg = transformer.config
        dim = cfg.num_attention_heads * cfg.attention_head_dim
        embedders = [ConditionalEmbedder(cfg.in_channels, dim, cfg.patch_size).to(dtype) for _ in range(2)]
        vae = cast(AutoencoderKLWan(**load_config(VAE)))
        qwen = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig.from_dict(load_config(QWEN))).to(dtype)
        encoder = ConditionEncoder(qwen, None, dim, EncoderConfig(**queries)).to(dtype)
        model = KiwiModel(encoder, Denoiser(transformer, *embedders), vae).eval()
    model.diffsynth_pixels = True  # as a DiffSynth checkpoint (Kiwi-Sparkle) is run
    return model


@dataclass(frozen=True)
class MemoryPlan:
    """GPU memory for one sample, in bytes: exact weights per part, estimated activation peaks."""

    frames: int
    width: int
    height: int
    dtype: str
    weights: dict[str, int]  # encoder (Qwen + queries), denoiser (DiT + embedders), vae
    activations: dict[str, int]  # the largest live tensors while each part runs (estimates)

    @property
    def resident(self) -> int:
        """Everything on the GPU at once (no ``--offload``)."""
        return sum(self.weights.values()) + max(self.activations.values())

    @property
    def offloaded(self) -> int:
        """``--offload``: one part's weights at a time, with its own activations."""
        return max(self.weights[part] + self.activations[part] for part in self.weights)

    def lines(self) -> list[str]:
        rows = [
            f"memory for {self.frames} frames at {self.width}x{self.height} ({self.dtype}; activations are estimates):"
        ]
        for part in self.weights:
            rows.append(
                f"  {part:<9} weights {self.weights[part] / GIB:6.2f} GiB   "
                f"peak activations ~{self.activations[part] / GIB:5.2f} GiB"
            )
        rows.append(
            f"  GPU needed: ~{self.resident / GIB:.1f} GiB resident, ~{self.offloaded / GIB:.1f} GiB with --offload "
            f"(plus ~1 GiB CUDA context); CPU RAM for --offload: ~{sum(self.weights.values()) / GIB:.1f} GiB"
        )
        return rows


def _bytes(module: torch.nn.Module) -> int:
    return sum(p.numel() * p.element_size() for p in module.parameters())


def memory_plan(
    frames: int = MAX_FRAMES,
    width: int = 1280,
    height: int = 720,
    pixel_budget: int = PIXEL_BUDGET,
    multiple: int = SIDE_MULTIPLE,
    tile_pixels: tuple[int, int] | None = (480, 832),
    per_value: int = 2,
) -> MemoryPlan:
    """What the protocol needs for a ``width`` x ``height`` source of ``frames`` frames.

    Weights are counted on the meta model. Activation peaks are estimated from the architecture:
    the DiT's per-block live tensors (hidden states, q/k/v, attention output, feed-forward), the
    encoder's vision and language tokens, and the VAE decoder's top-level feature maps and causal
    caches for one latent frame (4 video frames) of one tile (``tile_pixels``, None: whole frames)."""
    model = full_size_kiwi("meta", torch.bfloat16 if per_value == 2 else torch.float32)
    frames = frame_count(frames)
    width, height = protocol_size(width, height, pixel_budget, multiple)
    dit = model.transformer.config
    dim = dit.num_attention_heads * dit.attention_head_dim
    tokens = ((frames - 1) // 4 + 1) * (height // 32) * (width // 32)
    dit_peak = tokens * (6 * dim + 2 * dit.ffn_dim) * per_value
    text = model.encoder.qwen.config.text_config
    vision = model.encoder.qwen.config.vision_config
    patches = 8 * (model.encoder.config.max_pixels_per_frame // (vision.patch_size**2))  # 16 frames, 2 per patch
    llm_tokens = patches // 4 + model.encoder.config.num_video_queries + 128
    encoder_peak = (
        patches * (6 * vision.hidden_size + 3 * vision.intermediate_size)
        + llm_tokens * (6 * text.hidden_size + 3 * text.intermediate_size)
    ) * per_value
    tile_h, tile_w = tile_pixels if tile_pixels else (height, width)
    tile_h, tile_w = min(tile_h, height), min(tile_w, width)
    vae = model.vae.config
    top = 4 * (tile_h // 2) * (tile_w // 2) * vae.decoder_base_dim * per_value  # one latent frame -> 4 frames, half res
    vae_peak = top * (5 + 2 * (vae.num_res_blocks + 1))  # live maps + two cached frames per causal conv (top level)
    weights = {"encoder": _bytes(model.encoder), "denoiser": _bytes(model.denoiser), "vae": _bytes(model.vae)}
    return MemoryPlan(
        frames,
        width,
        height,
        "bfloat16" if per_value == 2 else "float32",
        weights,
        {"encoder": encoder_peak, "denoiser": dit_peak, "vae": vae_peak},
    )
