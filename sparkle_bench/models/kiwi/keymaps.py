"""Parameter names across the layouts Kiwi weights come in, and LoRA merging.

- DiT: DiffSynth's Wan names (training checkpoints, Kiwi-Sparkle) <-> diffusers' ``WanTransformer3DModel``.
- VAE: the original Wan names (the released Kiwi folders' ``vae/``) <-> diffusers' ``AutoencoderKLWan``.
Each map is one table used both ways, so a checkpoint we write reads back to the same tensors.
"""

from __future__ import annotations

import re

import torch

# DiffSynth module (or parameter) path inside a block -> diffusers path
_BLOCK = {
    "self_attn.q": "attn1.to_q",
    "self_attn.k": "attn1.to_k",
    "self_attn.v": "attn1.to_v",
    "self_attn.o": "attn1.to_out.0",
    "self_attn.norm_q": "attn1.norm_q",
    "self_attn.norm_k": "attn1.norm_k",
    "cross_attn.q": "attn2.to_q",
    "cross_attn.k": "attn2.to_k",
    "cross_attn.v": "attn2.to_v",
    "cross_attn.o": "attn2.to_out.0",
    "cross_attn.norm_q": "attn2.norm_q",
    "cross_attn.norm_k": "attn2.norm_k",
    "cross_attn.k_img": "attn2.add_k_proj",
    "cross_attn.v_img": "attn2.add_v_proj",
    "cross_attn.norm_k_img": "attn2.norm_added_k",
    "ffn.0": "ffn.net.0.proj",
    "ffn.2": "ffn.net.2",
    "norm3": "norm2",  # DiffSynth's affine cross-attention norm; its norm1/norm2 hold no parameters
    "modulation": "scale_shift_table",
}
_TOP = {
    "text_embedding.0": "condition_embedder.text_embedder.linear_1",
    "text_embedding.2": "condition_embedder.text_embedder.linear_2",
    "time_embedding.0": "condition_embedder.time_embedder.linear_1",
    "time_embedding.2": "condition_embedder.time_embedder.linear_2",
    "time_projection.1": "condition_embedder.time_proj",
    "img_emb.proj.0": "condition_embedder.image_embedder.norm1",
    "img_emb.proj.1": "condition_embedder.image_embedder.ff.net.0.proj",
    "img_emb.proj.3": "condition_embedder.image_embedder.ff.net.2",
    "img_emb.proj.4": "condition_embedder.image_embedder.norm2",
    "patch_embedding": "patch_embedding",
    "head.modulation": "scale_shift_table",
    "head.head": "proj_out",
}
_PARAM_SUFFIXES = ("weight", "bias")


def _translate(name: str, table: dict[str, str], top: dict[str, str], block: str) -> str | None:
    """Map a module or parameter path through ``top`` / ``table`` (block-relative), or None."""
    stem, suffix = name, ""
    if name.rsplit(".", 1)[-1] in _PARAM_SUFFIXES:
        stem, suffix = name.rsplit(".", 1)[0], "." + name.rsplit(".", 1)[1]
    if stem in top:
        return top[stem] + suffix
    match = re.fullmatch(rf"{block}\.(\d+)\.(.+)", stem)
    if match and match.group(2) in table:
        return f"blocks.{match.group(1)}.{table[match.group(2)]}{suffix}"
    return None


def dit_to_diffusers(name: str) -> str | None:
    """DiffSynth DiT name (``blocks.3.self_attn.q.weight``) -> diffusers name, or None if unknown."""
    return _translate(name, _BLOCK, _TOP, "blocks")


def dit_to_diffsynth(name: str) -> str | None:
    """diffusers DiT name -> DiffSynth name (``scale_shift_table`` is the head's modulation)."""
    top = {v: k for k, v in _TOP.items()}
    return _translate(name, {v: k for k, v in _BLOCK.items()}, top, "blocks")


# --- VAE: original Wan names <-> AutoencoderKLWan -------------------------------------------------

_RESNET = {
    "norm1.gamma": "residual.0.gamma",
    "conv1": "residual.2",
    "norm2.gamma": "residual.3.gamma",
    "conv2": "residual.6",
    "conv_shortcut": "shortcut",
}


def _resnet_part(rest: str) -> str:
    for new, old in _RESNET.items():
        if rest == new or rest.startswith(new + "."):
            return old + rest[len(new) :]
    raise KeyError(rest)


def vae_to_original(name: str, num_res_blocks: int, residual: bool) -> str:
    """An ``AutoencoderKLWan`` parameter name -> the original Wan VAE name.

    ``residual`` is the Wan2.2 layout (nested down/up blocks); Wan2.1 keeps flat lists.
    """
    fixed = {"quant_conv": "conv1", "post_quant_conv": "conv2"}
    head, _, rest = name.partition(".")
    if head in fixed:
        return f"{fixed[head]}.{rest}"
    side, (part, _, rest) = head, rest.partition(".")
    simple = {"conv_in": "conv1", "norm_out": "head.0", "conv_out": "head.2"}
    if part in simple:
        return f"{side}.{simple[part]}.{rest}"
    if part == "mid_block":
        kind, index, tail = rest.split(".", 2)
        if kind == "attentions":
            return f"{side}.middle.1.{tail}"
        return f"{side}.middle.{2 * int(index)}.{_resnet_part(tail)}"
    flat = "downsamples" if side == "encoder" else "upsamples"
    level, kind, tail = rest.split(".", 2)
    level = int(level)
    if side == "encoder" and not residual:  # Wan2.1 encoder: already a flat list of blocks
        inner = f"{kind}.{tail}"
        try:
            return f"encoder.downsamples.{level}.{_resnet_part(inner)}"
        except KeyError:
            return f"encoder.downsamples.{level}.{inner}"
    per_level = num_res_blocks + (1 if side == "decoder" else 0)  # resnets before the resampler
    if kind == "resnets":
        index, tail = tail.split(".", 1)
        position, inner = int(index), _resnet_part(tail)
    else:  # downsampler / upsampler / upsamplers.0
        position, inner = per_level, tail.split(".", 1)[1] if kind == "upsamplers" else tail
    if residual:
        return f"{side}.{flat}.{level}.{flat}.{position}.{inner}"
    return f"{side}.{flat}.{level * (per_level + 1) + position}.{inner}"


def vae_name_map(diffusers_names: list[str], num_res_blocks: int, residual: bool) -> dict[str, str]:
    """original name -> diffusers name, for every parameter of an ``AutoencoderKLWan``."""
    mapping = {vae_to_original(n, num_res_blocks, residual): n for n in diffusers_names}
    if len(mapping) != len(diffusers_names):
        raise ValueError("VAE name map is not one-to-one")
    return mapping


# --- LoRA ------------------------------------------------------------------------------------------

LORA_PATTERN = re.compile(r"^(?P<target>.+)\.lora_(?P<which>[AB])(?:\.[^.]+)?\.weight$")


def lora_pairs(state: dict[str, torch.Tensor]) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """``{target module: (A, B)}`` from peft-style keys (``x.lora_A.default.weight``), and the
    LoRA keys that have no partner."""
    halves: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        match = LORA_PATTERN.match(key)
        if match:
            halves.setdefault(match["target"], {})[match["which"]] = value
    pairs = {t: (h["A"], h["B"]) for t, h in halves.items() if len(h) == 2}
    lonely = sorted(t for t, h in halves.items() if len(h) != 2)
    return pairs, lonely


def merged(
    weight: torch.Tensor, down: torch.Tensor, up: torch.Tensor, alpha: float, in_dtype: bool = False
) -> torch.Tensor:
    """``W + alpha * B @ A`` in float32, returned in the weight's dtype (1x1 conv LoRA allowed);
    ``in_dtype``: computed in the weight's dtype, rounding after the product and after the sum, as
    DiffSynth's LoRA loader does."""
    if in_dtype:
        delta = alpha * (up.to(weight.dtype).flatten(1) @ down.to(weight.dtype).flatten(1))
        return weight + delta.reshape(weight.shape)
    delta = alpha * (up.float().flatten(1) @ down.float().flatten(1))
    return (weight.float() + delta.reshape(weight.shape)).to(weight.dtype)
