"""DiffSynth training checkpoints: Kiwi-Sparkle's ``model.safetensors``, any Kiwi-Edit stage
checkpoint, and the checkpoints our trainer writes.

Such a file holds only what training changed, in DiffSynth names, applied on the Wan2.2-TI2V-5B
diffusers base and Qwen2.5-VL-3B-Instruct: DiT weights (full, replacing the base's) or LoRA pairs
on the DiT, LoRA pairs (or weights) on the Qwen language model, the learnable queries, the
connectors and the source/reference embedders. Every key must find a place: the load stops with
the list of keys that map nowhere. Conversion runs once and is cached as a released-layout folder
keyed by the checkpoint's hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file

from ...paths import home
from .dit import Denoiser
from .embedders import ConditionalEmbedder
from .folders import encoder_with, load_folder, load_qwen, load_vae, save_folder
from .keymaps import LORA_PATTERN, dit_to_diffsynth, dit_to_diffusers, lora_pairs, merged
from .pipeline import KiwiModel
from .sampler import SIGMA_MIN_DIFFSYNTH

CONVERTER_VERSION = 2
QUERY_KEYS = {
    "mllm.image_queries.q": "image_queries",
    "mllm.video_queries.q": "video_queries",
    "mllm.ref_queries.q": "ref_queries",
}
CONNECTOR_PREFIXES = {
    "mllm.connetor.": "connector.",
    "mllm.connector.": "connector.",
    "mllm.ref_connector.": "ref_connector.",
}
QWEN_PREFIX = "mllm.model."


class CheckpointError(ValueError):
    """A checkpoint that cannot be applied; the message lists the offending keys."""


@dataclass
class SortedCheckpoint:
    """A checkpoint's tensors by destination (DiT names already in diffusers form)."""

    dit: dict[str, torch.Tensor] = field(default_factory=dict)
    dit_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    qwen: dict[str, torch.Tensor] = field(default_factory=dict)
    qwen_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    encoder: dict[str, torch.Tensor] = field(default_factory=dict)
    source: dict[str, torch.Tensor] = field(default_factory=dict)
    reference: dict[str, torch.Tensor] = field(default_factory=dict)


def _dit_name(name: str) -> str | None:
    name = name.removeprefix("dit.").removeprefix("diffusion_model.")
    return dit_to_diffusers(name)


def sort_checkpoint(state: dict[str, torch.Tensor]) -> SortedCheckpoint:
    """Route every key to its destination; raise :class:`CheckpointError` naming the keys that fit nowhere."""
    state = {k.removeprefix("pipe."): v for k, v in state.items()}
    pairs, lonely = lora_pairs(state)
    out, unknown = SortedCheckpoint(), [f"{t}.lora_* (no partner)" for t in lonely]
    for target, pair in pairs.items():
        if target.startswith(QWEN_PREFIX):
            out.qwen_lora[target[len(QWEN_PREFIX) :]] = pair
        elif (mapped := _dit_name(target)) is not None:
            out.dit_lora[mapped] = pair
        else:
            unknown.append(f"{target}.lora_*")
    for key, value in state.items():
        if LORA_PATTERN.match(key):
            continue
        if key in QUERY_KEYS:
            out.encoder[QUERY_KEYS[key]] = value
        elif prefix := next((p for p in CONNECTOR_PREFIXES if key.startswith(p)), None):
            out.encoder[CONNECTOR_PREFIXES[prefix] + key[len(prefix) :]] = value
        elif key.startswith(QWEN_PREFIX):
            out.qwen[key[len(QWEN_PREFIX) :]] = value
        elif key.startswith("vae_condition."):
            out.source[key[len("vae_condition.") :]] = value
        elif key.startswith("ref_vae_condition."):
            out.reference[key[len("ref_vae_condition.") :]] = value
        elif (mapped := _dit_name(key)) is not None:
            out.dit[mapped] = value
        else:
            unknown.append(key)
    if unknown:
        raise CheckpointError(f"{len(unknown)} checkpoint key(s) map nowhere: {', '.join(sorted(unknown)[:20])}")
    return out


def _assign(module: torch.nn.Module, state: dict[str, torch.Tensor], what: str) -> None:
    """Copy tensors into existing parameters (shapes must match), keeping the module's dtypes."""
    own = module.state_dict()
    wrong = [k for k, v in state.items() if k not in own or own[k].shape != v.shape]
    if wrong:
        raise CheckpointError(f"{what}: {len(wrong)} tensor(s) have no matching parameter: {', '.join(wrong[:10])}")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=False)


def _merge(
    module: torch.nn.Module,
    lora: dict[str, tuple[torch.Tensor, torch.Tensor]],
    alpha: float,
    what: str,
    in_dtype: bool = False,
) -> None:
    params = dict(module.named_parameters())
    missing = [t for t in lora if f"{t}.weight" not in params]
    if missing:
        raise CheckpointError(f"{what} LoRA targets not in the model: {', '.join(missing[:10])}")
    with torch.no_grad():
        for target, (down, up) in lora.items():
            weight = params[f"{target}.weight"]
            weight.copy_(merged(weight, down.to(weight.device), up.to(weight.device), alpha, in_dtype))


def is_kiwi_folder(path: Path) -> bool:
    """A released-layout Kiwi folder holds a condition encoder (``mllm_encoder/``) beside its index;
    a Wan base (``WanPipeline`` repository) has an index too, but no encoder."""
    path = Path(path)
    return (path / "model_index.json").is_file() and (path / "mllm_encoder").is_dir()


def is_wan_base(path: Path) -> bool:
    """A diffusers Wan base (``Wan-AI/Wan2.2-TI2V-5B-Diffusers`` or just its ``transformer/`` and ``vae/``)."""
    path = Path(path)
    return (path / "transformer").is_dir() and (path / "vae").is_dir() and not (path / "mllm_encoder").is_dir()


def model_from_checkpoint(
    checkpoint: SortedCheckpoint,
    base: Path,
    mllm: Path | None,
    dtype: torch.dtype,
    lora_alpha: float = 1.0,
    merge_qwen_lora: bool = True,
    rounding: str = "float32",
) -> KiwiModel:
    """The checkpoint applied (LoRA merged as W + alpha*B@A) on its base: the Wan DiT/VAE folder and
    Qwen2.5-VL, or a whole Kiwi folder (what our trainer records when training started from one).
    ``rounding="diffsynth"`` merges in ``dtype`` as DiffSynth does (the same in float32)."""
    from diffusers import WanTransformer3DModel

    if is_kiwi_folder(base):
        model = load_folder(base, dtype, sigma_min=SIGMA_MIN_DIFFSYNTH)
        _assign(model.encoder, checkpoint.encoder, "condition encoder")
    else:
        transformer = WanTransformer3DModel.from_pretrained(base / "transformer", torch_dtype=dtype)
        qwen, processor = load_qwen(mllm, mllm, dtype)
        cfg = transformer.config
        dim = cfg.num_attention_heads * cfg.attention_head_dim
        encoder = encoder_with(qwen, processor, dim, checkpoint.encoder, {})
        embedders = [ConditionalEmbedder(cfg.in_channels, dim, cfg.patch_size).to(dtype) for _ in range(2)]
        model = KiwiModel(
            encoder,
            Denoiser(transformer, *embedders),
            load_vae(base / "vae", dtype),
            sigma_min=SIGMA_MIN_DIFFSYNTH,
            has_reference=False,
        )
        model.has_reference = bool(checkpoint.reference) and "ref_queries" in checkpoint.encoder
    _assign(model.transformer, checkpoint.dit, "DiT")
    in_dtype = rounding == "diffsynth"
    _merge(model.transformer, checkpoint.dit_lora, lora_alpha, "DiT", in_dtype)
    _assign(model.encoder.qwen, checkpoint.qwen, "Qwen2.5-VL")
    if merge_qwen_lora:
        _merge(model.encoder.qwen, checkpoint.qwen_lora, lora_alpha, "Qwen2.5-VL", in_dtype)
    _assign(model.denoiser.source_embedder, checkpoint.source, "source embedder")
    _assign(model.denoiser.ref_embedder, checkpoint.reference, "reference embedder")
    model.diffsynth_pixels = True
    return model.eval()


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 24), b""):
            digest.update(block)
    return digest.hexdigest()


def load_checkpoint(
    path: Path,
    base: Path,
    mllm: Path | None,
    dtype: torch.dtype = torch.float32,
    lora_alpha: float = 1.0,
    cache: Path | None = None,
    rounding: str = "float32",
) -> KiwiModel:
    """A Kiwi model from a DiffSynth checkpoint, converted once into ``cache`` (default:
    ``$SPARKLE_BENCH_HOME/kiwi-converted/<key>``) and read from there afterwards."""
    merge = rounding if dtype != torch.float32 else "float32"  # the same arithmetic in float32: one cache entry
    key_text = json.dumps([file_sha256(path), str(base), str(mllm), lora_alpha, str(dtype), CONVERTER_VERSION, merge])
    folder = (cache or home() / "kiwi-converted") / hashlib.sha256(key_text.encode()).hexdigest()[:20]
    if not (folder / "model_index.json").is_file():
        model = model_from_checkpoint(sort_checkpoint(load_file(path)), base, mllm, dtype, lora_alpha, rounding=merge)
        save_folder(model, folder)
        (folder / "SOURCE.json").write_text(
            json.dumps({"checkpoint": str(path), "key": json.loads(key_text)}, indent=1)
        )
    model = load_folder(folder, dtype, sigma_min=SIGMA_MIN_DIFFSYNTH)  # sampled as the official script samples it
    model.diffsynth_pixels = True
    return model


def plain_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A module's weights under its own names, with any peft LoRA layer merged in (W + s * B @ A)."""
    state = {k.replace(".base_layer.", "."): v for k, v in module.state_dict().items() if ".lora_" not in k}
    for name, sub in module.named_modules():
        if "default" in getattr(sub, "lora_A", {}):
            key = f"{name}.weight"
            state[key] = merged(
                state[key], sub.lora_A["default"].weight, sub.lora_B["default"].weight, sub.scaling["default"]
            )
    return state


def lora_layers(module: torch.nn.Module, prefix: str = "") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{module name: (A, B)}`` of the peft LoRA layers in ``module``."""
    return {
        f"{prefix}{name}": (sub.lora_A["default"].weight, sub.lora_B["default"].weight)
        for name, sub in module.named_modules()
        if "default" in getattr(sub, "lora_A", {})
    }


def diffsynth_state(
    model: KiwiModel,
    *,
    dit: bool = True,
    encoder: bool = True,
    reference: bool = False,
    qwen_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    qwen_weights: dict[str, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """A checkpoint in the DiffSynth layout of the releases (``pipe.`` removed): the full DiT (LoRA
    merged), queries and connectors (their spelling, ``connetor``), embedders, and for the Qwen
    language model LoRA pairs relative to the base (``qwen_lora``) or full weights (``qwen_weights``)."""
    out: dict[str, torch.Tensor] = {}
    if dit:
        for name, value in plain_state(model.transformer).items():
            out[f"dit.{dit_to_diffsynth(name)}"] = value
    own = {k: v for k, v in model.encoder.state_dict().items() if not k.startswith("qwen.")}
    if encoder:
        out.update({"mllm.image_queries.q": own["image_queries"], "mllm.video_queries.q": own["video_queries"]})
        out.update({f"mllm.connetor.{k[len('connector.') :]}": v for k, v in own.items() if k.startswith("connector.")})
        out.update({f"vae_condition.{k}": v for k, v in model.denoiser.source_embedder.state_dict().items()})
    if reference:
        out["mllm.ref_queries.q"] = own["ref_queries"]
        out.update({f"mllm.{k}": v for k, v in own.items() if k.startswith("ref_connector.")})
        out.update({f"ref_vae_condition.{k}": v for k, v in model.denoiser.ref_embedder.state_dict().items()})
    for target, (down, up) in (qwen_lora or {}).items():
        out[f"{QWEN_PREFIX}{target}.lora_A.default.weight"] = down
        out[f"{QWEN_PREFIX}{target}.lora_B.default.weight"] = up
    out.update({f"{QWEN_PREFIX}{name}": value for name, value in (qwen_weights or {}).items()})
    return {k: v.detach().contiguous() for k, v in out.items()}
