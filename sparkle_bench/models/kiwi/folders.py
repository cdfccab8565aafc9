"""Kiwi in the released diffusers-folder layout (``linyq/kiwi-edit-5b-*-diffusers``), read and
written as weights and configs only: the folder's Python files are never imported.

Layout: ``model_index.json``, ``transformer/`` (diffusers), ``vae/`` (original Wan VAE names, or a
diffusers ``AutoencoderKLWan``), ``mllm_encoder/`` (Qwen2.5-VL weights + the queries/connectors in
``diffusion_pytorch_model.safetensors``), ``processor/`` (tokenizer, processor, ``qwen_config.json``),
``source_embedder/``, ``ref_embedder/``, ``scheduler/``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .dit import Denoiser
from .embedders import ConditionalEmbedder
from .encoder import ConditionEncoder, EncoderConfig
from .keymaps import vae_name_map
from .pipeline import KiwiModel
from .sampler import SHIFT, SIGMA_MIN_DIFFUSERS, TRAIN_STEPS

WEIGHTS = "diffusion_pytorch_model.safetensors"
VAE_FIELDS = (
    "z_dim",
    "dim",
    "dim_mult",
    "num_res_blocks",
    "attn_scales",
    "temperal_downsample",
    "dropout",
    "latents_mean",
    "latents_std",
)
WAN22_DECODER_DIM = 256  # the Wan2.2 VAE decoder's base width, fixed in the original code


class FolderError(ValueError):
    """A folder that is not a readable Kiwi model; the message names what is wrong."""


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise FolderError(f"cannot read {path}: {exc}") from exc


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    path = folder / WEIGHTS
    return load_file(path) if path.is_file() else {}


# --- VAE --------------------------------------------------------------------------------------------


def vae_from_original(config: dict, state: dict[str, torch.Tensor]):
    """An ``AutoencoderKLWan`` from the original Wan VAE config and weights (Wan2.1 or Wan2.2)."""
    from diffusers import AutoencoderKLWan

    residual = config["z_dim"] == 48  # the original code picks the Wan2.2 architecture by latent width
    kwargs = dict(
        base_dim=config["dim"],
        z_dim=config["z_dim"],
        dim_mult=config["dim_mult"],
        num_res_blocks=config["num_res_blocks"],
        attn_scales=config.get("attn_scales", []),
        temperal_downsample=config["temperal_downsample"],
        dropout=config.get("dropout", 0.0),
        latents_mean=config["latents_mean"],
        latents_std=config["latents_std"],
    )
    if residual:
        kwargs.update(
            decoder_base_dim=config.get("dec_dim", WAN22_DECODER_DIM),
            is_residual=True,
            in_channels=12,
            out_channels=12,
            patch_size=2,
            scale_factor_spatial=16,
        )
    vae = AutoencoderKLWan(**kwargs)
    names = vae_name_map(list(vae.state_dict()), config["num_res_blocks"], residual)
    unknown = sorted(set(state) - set(names))
    missing = sorted(set(names) - set(state))
    if unknown or missing:
        raise FolderError(f"VAE weights do not fit the config: unknown {unknown[:5]}, missing {missing[:5]}")
    vae.load_state_dict({names[k]: v for k, v in state.items()})
    return vae


def vae_to_original(vae) -> tuple[dict, dict[str, torch.Tensor]]:
    """(config, weights) of an ``AutoencoderKLWan`` in the original Wan layout."""
    cfg = vae.config
    residual = bool(cfg.is_residual)
    config = {
        "_class_name": "VAE",
        "z_dim": cfg.z_dim,
        "dim": cfg.base_dim,
        "dim_mult": list(cfg.dim_mult),
        "num_res_blocks": cfg.num_res_blocks,
        "attn_scales": list(cfg.attn_scales),
        "temperal_downsample": list(cfg.temperal_downsample),
        "dropout": cfg.dropout,
        "latents_mean": list(cfg.latents_mean),
        "latents_std": list(cfg.latents_std),
        "vae_pth": WEIGHTS,
    }
    if residual and (cfg.decoder_base_dim or cfg.base_dim) != WAN22_DECODER_DIM:
        config["dec_dim"] = cfg.decoder_base_dim or cfg.base_dim
    names = {v: k for k, v in vae_name_map(list(vae.state_dict()), cfg.num_res_blocks, residual).items()}
    return config, {names[k]: v.contiguous() for k, v in vae.state_dict().items()}


def load_vae(folder: Path, dtype: torch.dtype):
    from diffusers import AutoencoderKLWan

    config = _json(folder / "config.json")
    if config.get("_class_name") == "AutoencoderKLWan":
        return AutoencoderKLWan.from_pretrained(folder, torch_dtype=dtype)
    missing = [k for k in VAE_FIELDS if k not in config]
    if missing:
        raise FolderError(f"{folder}/config.json lacks {', '.join(missing)}")
    vae = vae_from_original(config, load_file(folder / WEIGHTS))
    return vae if dtype == torch.float32 else vae.to(dtype)


# --- condition encoder ---------------------------------------------------------------------------


def load_qwen(weights: Path, processor_dir: Path, dtype: torch.dtype, config_file: Path | None = None):
    """(Qwen2.5-VL model, processor); ``config_file`` when the folder's config.json is not Qwen's.

    The tokenizer is read from ``tokenizer.json`` verbatim when there is one: recent transformers
    rebuild a Qwen2 tokenizer from its vocabulary instead, which can tokenize differently from the
    fast tokenizer the weights were trained with."""
    from transformers import (
        AutoProcessor,
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
    )

    config = Qwen2_5_VLConfig.from_json_file(str(config_file)) if config_file else None
    qwen = Qwen2_5_VLForConditionalGeneration.from_pretrained(weights, config=config, dtype=dtype)
    processor = AutoProcessor.from_pretrained(processor_dir)
    if (Path(processor_dir) / "tokenizer.json").is_file():
        processor.tokenizer = PreTrainedTokenizerFast.from_pretrained(processor_dir)
    return qwen.eval(), processor


def encoder_with(qwen, processor, dit_dim: int, extra: dict[str, torch.Tensor], settings: dict) -> ConditionEncoder:
    """A condition encoder whose query counts are those of the given weights (``image_queries``,
    ``video_queries``, ``ref_queries``, ``connector.*``, ``ref_connector.*``)."""
    defaults = EncoderConfig()
    counts = {
        f"num_{kind}_queries": len(extra[f"{kind}_queries"])
        if f"{kind}_queries" in extra
        else getattr(defaults, f"num_{kind}_queries")
        for kind in ("image", "video", "ref")
    }
    config = EncoderConfig(
        **counts,
        max_object_token=settings.get("max_object_token", defaults.max_object_token),
        max_pixels_per_frame=settings.get("max_pixels_per_frame", defaults.max_pixels_per_frame),
    )
    encoder = ConditionEncoder(qwen, processor, dit_dim, config).to(qwen.dtype)
    own = encoder.state_dict()
    unknown = sorted(k for k in extra if k not in own or k.startswith("qwen."))
    if unknown:
        raise FolderError(f"condition-encoder weights with no place: {', '.join(unknown)}")
    encoder.load_state_dict(extra, strict=False)
    return encoder


def _embedder(folder: Path, dim: int, in_dim: int, patch: list[int]) -> tuple[ConditionalEmbedder, bool, bool]:
    """(embedder, weights present, reference tokens first)."""
    config = _json(folder / "config.json") if (folder / "config.json").is_file() else {}
    embedder = ConditionalEmbedder(
        config.get("in_dim", in_dim), config.get("dim", dim), config.get("patch_size", patch)
    )
    state = _weights(folder)
    if state:
        embedder.load_state_dict(state)
    return embedder, bool(state), bool(config.get("ref_pad_first", False))


def load_folder(folder: Path, dtype: torch.dtype = torch.float32, sigma_min: float = SIGMA_MIN_DIFFUSERS) -> KiwiModel:
    """A Kiwi model from a released-layout folder (weights and configs only)."""
    from diffusers import WanTransformer3DModel

    folder = Path(folder)
    index = _json(folder / "model_index.json")
    needed = ("transformer", "vae", "mllm_encoder")
    absent = [part for part in needed if part not in index or not (folder / part).is_dir()]
    if absent:
        raise FolderError(f"{folder} is not a Kiwi folder: no {', '.join(absent)}")
    transformer = WanTransformer3DModel.from_pretrained(folder / "transformer", torch_dtype=dtype)
    cfg = transformer.config
    dim = cfg.num_attention_heads * cfg.attention_head_dim
    processor_dir = folder / "processor" if (folder / "processor").is_dir() else folder / "mllm_encoder"
    qwen_config = next(
        (p for p in (processor_dir / "qwen_config.json", folder / "mllm_encoder" / "qwen_config.json") if p.is_file()),
        None,
    )
    qwen, processor = load_qwen(folder / "mllm_encoder", processor_dir, dtype, qwen_config)
    extra = _weights(folder / "mllm_encoder")
    encoder = encoder_with(qwen, processor, dim, extra, _json(folder / "mllm_encoder" / "config.json"))
    source, _, _ = _embedder(folder / "source_embedder", dim, cfg.in_channels, list(cfg.patch_size))
    ref, ref_weights, ref_first = _embedder(folder / "ref_embedder", dim, cfg.in_channels, list(cfg.patch_size))
    denoiser = Denoiser(transformer, source.to(dtype), ref.to(dtype), ref_first)
    has_reference = ref_weights and "ref_queries" in extra and "ref_connector.2.weight" in extra
    return KiwiModel(
        encoder, denoiser, load_vae(folder / "vae", dtype), sigma_min=sigma_min, has_reference=has_reference
    ).eval()


def save_folder(model: KiwiModel, folder: Path) -> Path:
    """Write ``model`` in the released layout, atomically (a temporary folder renamed into place)."""
    import diffusers

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        _write_json(
            tmp / "model_index.json",
            {
                "_class_name": "KiwiEditPipeline",
                "_diffusers_version": diffusers.__version__,
                "transformer": ["diffusers", "WanTransformer3DModel"],
                "vae": ["wan_video_vae", "VAE"],
                "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                "mllm_encoder": ["mllm_encoder", "MLLMEncoder"],
                "source_embedder": ["conditional_embedder", "ConditionalEmbedder"],
                "ref_embedder": ["conditional_embedder", "ConditionalEmbedder"],
                "processor": ["transformers", "AutoProcessor"],
            },
        )
        model.transformer.save_pretrained(tmp / "transformer", safe_serialization=True)
        config, state = vae_to_original(model.vae)
        _write_json(tmp / "vae" / "config.json", config)
        save_file(state, tmp / "vae" / WEIGHTS)
        encoder = model.encoder
        encoder.qwen.save_pretrained(tmp / "mllm_encoder", safe_serialization=True)
        (tmp / "processor").mkdir()
        os.replace(tmp / "mllm_encoder" / "config.json", tmp / "processor" / "qwen_config.json")
        encoder.processor.save_pretrained(tmp / "processor")
        extra = {k: v.detach().contiguous() for k, v in encoder.state_dict().items() if not k.startswith("qwen.")}
        save_file(extra, tmp / "mllm_encoder" / WEIGHTS)
        hidden = encoder.qwen.config.text_config.hidden_size
        _write_json(
            tmp / "mllm_encoder" / "config.json",
            {
                "_class_name": "MLLMEncoder",
                "mllm_model_path": ".",
                "dit_dim": encoder.connector[2].out_features,
                "hidden_size": hidden,
                "num_image_queries": len(encoder.image_queries),
                "num_video_queries": len(encoder.video_queries),
                "num_ref_queries": len(encoder.ref_queries),
                "max_object_token": encoder.config.max_object_token,
                "max_frames": 16,
                "max_pixels_per_frame": encoder.config.max_pixels_per_frame,
            },
        )
        denoiser = model.denoiser
        for name, embedder in (("source_embedder", denoiser.source_embedder), ("ref_embedder", denoiser.ref_embedder)):
            _write_json(
                tmp / name / "config.json",
                {
                    "_class_name": "ConditionalEmbedder",
                    **embedder.config(),
                    "zero_init": True,
                    "ref_pad_first": denoiser.ref_first,
                },
            )
            save_file({k: v.detach().contiguous() for k, v in embedder.state_dict().items()}, tmp / name / WEIGHTS)
        _write_json(
            tmp / "scheduler" / "scheduler_config.json",
            {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": SHIFT, "num_train_timesteps": TRAIN_STEPS},
        )
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
