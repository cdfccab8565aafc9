"""A tiny random Wan2.2-Fun-Control model laid out as the release is: ``high_noise_model/`` and
``low_noise_model/`` (VideoX-Fun's ``config.json``, safetensors in the original Wan names, with
``ref_conv``), plus a diffusers-format Wan folder for the VAE, text encoder and tokenizer."""

from __future__ import annotations

import json
from pathlib import Path

from .tiny_models import WAN_TINY, tiny_wan_parts

TINY_FUN = {
    "model_type": "i2v",
    "patch_size": [1, 2, 2],
    "text_len": 512,
    "in_dim": 52,
    "dim": 24,
    "ffn_dim": 32,
    "freq_dim": 256,
    "text_dim": 32,
    "out_dim": 16,
    "num_heads": 2,
    "num_layers": 2,
    "qk_norm": True,
    "cross_attn_norm": True,
    "eps": 1e-6,
    "add_ref_conv": True,
    "in_dim_ref_conv": 16,
}


def _expert(folder: Path, seed: int) -> None:
    import torch
    from diffusers import WanTransformer3DModel
    from safetensors.torch import save_file

    from sparkle_bench.models.kiwi.keymaps import dit_to_diffsynth

    torch.manual_seed(seed)
    transformer = WanTransformer3DModel(in_channels=TINY_FUN["in_dim"], **{**WAN_TINY, "rope_max_seq_len": 1024})
    with torch.no_grad():  # a larger output head than the default init: the inputs' effect shows in 8-bit frames
        transformer.proj_out.weight.normal_(0, 0.5)
    state = {dit_to_diffsynth(name): tensor.contiguous() for name, tensor in transformer.state_dict().items()}
    ref_conv = torch.nn.Conv2d(16, TINY_FUN["dim"], kernel_size=2, stride=2)
    state.update({f"ref_conv.{k}": v.contiguous() for k, v in ref_conv.state_dict().items()})
    folder.mkdir(parents=True)
    save_file(state, folder / "diffusion_pytorch_model.safetensors")
    (folder / "config.json").write_text(json.dumps(TINY_FUN))


def tiny_fun_control(root: Path) -> tuple[Path, Path]:
    """(model folder, parts folder) of a 2-layer Fun-Control model; the two experts differ."""
    model, parts = root / "fun-control", root / "wan-parts"
    _expert(model / "high_noise_model", 1)
    _expert(model / "low_noise_model", 2)
    for name, component in tiny_wan_parts().items():
        if name != "scheduler":
            component.save_pretrained(parts / name)
    return model, parts
