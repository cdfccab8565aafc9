"""One Fun-Control expert folder (``high_noise_model/`` or ``low_noise_model/``: VideoX-Fun's
``config.json`` and safetensors in the original Wan parameter names) -> diffusers'
``WanTransformer3DModel`` plus Fun's reference-image convolution (``ref_conv``), when it has one."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from ...models.kiwi.keymaps import dit_to_diffusers

EXPERTS = ("high_noise_model", "low_noise_model")
VIDEOX_FUN_DEFAULTS = {  # Wan2_2Transformer3DModel's defaults, for keys a config.json leaves out
    "patch_size": [1, 2, 2],
    "text_len": 512,
    "in_dim": 16,
    "dim": 2048,
    "ffn_dim": 8192,
    "freq_dim": 256,
    "text_dim": 4096,
    "out_dim": 16,
    "num_heads": 16,
    "num_layers": 32,
    "qk_norm": True,
    "cross_attn_norm": True,
    "eps": 1e-6,
    "add_ref_conv": False,
    "in_dim_ref_conv": 16,
}


class CheckpointError(ValueError):
    """A Fun-Control folder that cannot be read; the message says which file and why."""


def read_config(folder: Path) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise CheckpointError(
            f"{folder} has no config.json (a Fun-Control expert folder holds config.json and *.safetensors)"
        )
    return {**VIDEOX_FUN_DEFAULTS, **json.loads(path.read_text())}


def diffusers_config(config: dict) -> dict:
    """VideoX-Fun's transformer config -> ``WanTransformer3DModel`` arguments."""
    return {
        "patch_size": tuple(config["patch_size"]),
        "num_attention_heads": config["num_heads"],
        "attention_head_dim": config["dim"] // config["num_heads"],
        "in_channels": config["in_dim"],
        "out_channels": config["out_dim"],
        "text_dim": config["text_dim"],
        "freq_dim": config["freq_dim"],
        "ffn_dim": config["ffn_dim"],
        "num_layers": config["num_layers"],
        "cross_attn_norm": config["cross_attn_norm"],
        "qk_norm": "rms_norm_across_heads" if config["qk_norm"] else None,
        "eps": config["eps"],
    }


def _state(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(Path(folder).glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"{folder} has no *.safetensors")
    state: dict[str, torch.Tensor] = {}
    for file in files:
        state.update(load_file(file))
    return state


def load_expert(folder: Path, dtype: torch.dtype) -> tuple[nn.Module, nn.Conv2d | None, dict]:
    """(transformer, ref_conv or None, VideoX-Fun config) of one expert, on the CPU in ``dtype``."""
    from accelerate import init_empty_weights
    from diffusers import WanTransformer3DModel

    config = read_config(folder)
    state = _state(folder)
    ref = {k.split(".", 1)[1]: state.pop(k) for k in list(state) if k.startswith("ref_conv.")}
    mapped, unknown = {}, []
    for name, tensor in state.items():
        target = dit_to_diffusers(name)
        if target is None:
            unknown.append(name)
        else:
            mapped[target] = tensor.to(dtype)
    if unknown:
        raise CheckpointError(f"{folder}: {len(unknown)} parameter(s) of no known Wan name, e.g. {unknown[:3]}")
    with init_empty_weights(include_buffers=False):  # parameters come from the checkpoint; RoPE tables are built
        transformer = WanTransformer3DModel(**diffusers_config(config))
    missing = sorted(set(transformer.state_dict()) - set(mapped))
    if missing:
        raise CheckpointError(f"{folder}: {len(missing)} parameter(s) missing, e.g. {missing[:3]}")
    transformer.load_state_dict(mapped, strict=True, assign=True)
    ref_conv = None
    if config["add_ref_conv"]:
        if set(ref) != {"weight", "bias"}:
            raise CheckpointError(
                f"{folder}: config.json asks for ref_conv but the weights have {sorted(ref) or 'none'}"
            )
        patch = tuple(config["patch_size"])[1:]
        ref_conv = nn.Conv2d(config["in_dim_ref_conv"], config["dim"], kernel_size=patch, stride=patch)
        ref_conv.load_state_dict({k: v.to(dtype) for k, v in ref.items()})
        ref_conv.to(dtype)
    return transformer.eval(), ref_conv, config
