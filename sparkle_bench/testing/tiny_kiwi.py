"""A tiny random-weight Kiwi model built from configs (2-layer DiT, small Wan2.2-style VAE, 1-layer
Qwen2.5-VL with an in-code tokenizer), and the files it is loaded from in each released layout."""

from __future__ import annotations

from pathlib import Path

import torch

from .tiny_models import tiny_qwen25_vl

DIT = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    in_channels=48,
    out_channels=48,
    text_dim=32,
    freq_dim=32,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=64,
)
VAE = dict(
    base_dim=8,
    decoder_base_dim=8,
    z_dim=48,
    dim_mult=[1, 1, 1, 1],
    num_res_blocks=1,
    is_residual=True,
    in_channels=12,
    out_channels=12,
    patch_size=2,
    scale_factor_spatial=16,
    latents_mean=[0.01 * i for i in range(48)],
    latents_std=[0.5 + 0.01 * i for i in range(48)],
)
QUERIES = dict(num_image_queries=4, num_video_queries=6, num_ref_queries=5)


def tiny_wan_base(folder: Path, **dit) -> Path:
    """A diffusers-layout Wan base (transformer/ and vae/), like Wan2.2-TI2V-5B-Diffusers."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    torch.manual_seed(1)
    WanTransformer3DModel(**{**DIT, **dit}).save_pretrained(folder / "transformer")
    AutoencoderKLWan(**VAE).save_pretrained(folder / "vae")
    return folder


def pass_noise_through(transformer) -> None:
    """Start a random Wan DiT the way a pretrained flow model starts: its output repeats its noisy
    input (patch embedding and output projection are an isometry and its transpose; every block's
    gates and the time modulation start at zero). From a fully random start, a tiny DiT needs
    thousands of steps to learn that pass-through before it can fit any velocity."""
    dim = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    conv = transformer.patch_embedding
    channels, pt, ph, pw = conv.weight.shape[1:]
    size = channels * pt * ph * pw
    basis, _ = torch.linalg.qr(torch.randn(dim, size, generator=torch.Generator().manual_seed(0)))
    with torch.no_grad():
        conv.weight.copy_(basis.reshape(dim, channels, pt, ph, pw))
        conv.bias.zero_()
        back = basis.T.reshape(channels, pt, ph, pw, dim).permute(1, 2, 3, 0, 4).reshape(size, dim)
        transformer.proj_out.weight.copy_(back * (size / dim) ** 0.5)  # undoes the final LayerNorm's scaling
        transformer.proj_out.bias.zero_()
        transformer.scale_shift_table.zero_()
        for block in transformer.blocks:
            block.scale_shift_table.zero_()
        time = transformer.condition_embedder
        time.time_embedder.linear_2.weight.zero_()
        time.time_embedder.linear_2.bias.zero_()
        time.time_proj.bias.zero_()


def tiny_kiwi_model(root: Path, pretrained_like: bool = False, **dit):
    """A tiny KiwiModel whose zero-initialised parts (connectors, embedders) are made random, so the
    instruction, the source and the reference all change the output."""
    from diffusers import WanTransformer3DModel

    from sparkle_bench.models.kiwi.dit import Denoiser
    from sparkle_bench.models.kiwi.embedders import ConditionalEmbedder
    from sparkle_bench.models.kiwi.encoder import ConditionEncoder, EncoderConfig
    from sparkle_bench.models.kiwi.folders import load_qwen, load_vae
    from sparkle_bench.models.kiwi.pipeline import KiwiModel

    base, qwen_dir = tiny_wan_base(root / "base", **dit), tiny_qwen25_vl(root / "qwen")
    qwen, processor = load_qwen(qwen_dir, qwen_dir, torch.float32)
    torch.manual_seed(2)
    width = {**DIT, **dit}["num_attention_heads"] * {**DIT, **dit}["attention_head_dim"]
    encoder = ConditionEncoder(qwen, processor, width, EncoderConfig(**QUERIES))
    source, reference = ConditionalEmbedder(48, width), ConditionalEmbedder(48, width)
    with torch.no_grad():
        for part in (encoder.connector[2], encoder.ref_connector[2], source.patch_embedding, reference.patch_embedding):
            for param in part.parameters():
                param.normal_(0, 0.5)
    transformer = WanTransformer3DModel.from_pretrained(base / "transformer")
    if pretrained_like:
        pass_noise_through(transformer)
    return KiwiModel(encoder, Denoiser(transformer, source, reference), load_vae(base / "vae", torch.float32)).eval()
