"""GPU memory planned before anything loads: each role's model sized (a local folder from its
safetensors headers, a hub id from ``data/model_sizes.toml``), then the roles of one stage placed on
the GPUs its actor gets. Roles share a GPU only when their weights fit beside each other with
RESERVE of it left for activations; a VLM or scorer larger than one GPU is meant to be served (vLLM /
SGLang with tensor parallelism, ``backend = "openai"``), a diffusers pipeline offloaded (it then holds
its largest component); a stage short of GPUs fails in one line that says how many it needs.
"""

from __future__ import annotations

import json
import math
import struct
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .config import DATA_DIR, ConfigError, SynthConfig

RESERVE = 0.2  # of each GPU, kept for activations, latents and the CUDA context
GB = 1e9
STORED_BYTES = {
    "F64": 8,
    "I64": 8,
    "U64": 8,
    "F32": 4,
    "I32": 4,
    "U32": 4,
    "F16": 2,
    "BF16": 2,
    "I16": 2,
    "U16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}
FLOATS = {"F64", "F32", "F16", "BF16"}


class MemoryPlanError(ConfigError):
    """The models of a stage do not fit the GPUs it asks for."""


def safetensors_bytes(path: Path) -> int:
    """Bytes of a safetensors file's tensors at bf16 (floating ones; others as stored), from its header."""
    with open(path, "rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        count = math.prod(tensor["shape"])
        total += count * (2 if tensor["dtype"] in FLOATS else STORED_BYTES.get(tensor["dtype"], 4))
    return total


def known_sizes() -> dict[str, dict[str, float]]:
    """``{"gb": {hub id: GB}, "offload_peak_gb": {hub id: GB}}`` from ``data/model_sizes.toml``."""
    data = tomllib.loads((DATA_DIR / "model_sizes.toml").read_text())
    return {"gb": data["gb"], "offload_peak_gb": data.get("offload_peak_gb", {})}


def _folder_gb(path: Path) -> float:
    files = sorted(path.rglob("*.safetensors"))
    if files:
        return sum(safetensors_bytes(f) for f in files) / GB
    return sum(f.stat().st_size for f in path.rglob("*") if f.suffix in (".bin", ".pt", ".pth")) / GB


def model_gb(model: str, known: dict[str, dict[str, float]], offload: bool = False) -> float | None:
    """A model's weights in GB (with ``offload``: its largest component, what a diffusers pipeline with CPU
    offload holds at once): a local folder from its safetensors headers, a hub id from the table; None if unknown."""
    path = Path(model)
    if path.is_dir():
        parts = [p for p in path.iterdir() if p.is_dir()]
        if offload and parts:
            return max(_folder_gb(p) for p in parts)
        return _folder_gb(path) or None
    if path.is_file():
        return (safetensors_bytes(path) if path.suffix == ".safetensors" else path.stat().st_size) / GB
    if offload and model in known["offload_peak_gb"]:
        return known["offload_peak_gb"][model]
    return known["gb"].get(model)


def served(role: str, spec: dict) -> bool:
    """Whether the role's model runs behind an endpoint (no GPU memory of this actor)."""
    return (role == "vlm" and spec.get("backend") == "openai") or (
        role == "scorer" and spec.get("backbone") == "openai"
    )


def role_sizes(
    cfg: SynthConfig, number: int, roles: list[str], known: dict[str, dict[str, float]]
) -> dict[str, float | None]:
    """GB per locally loaded role of a stage (a scorer's local LoRA adds its size)."""
    sizes: dict[str, float | None] = {}
    for role in roles:
        spec = cfg.role(number, role)
        if served(role, spec):
            continue
        gb = model_gb(spec["model"], known, bool(spec.get("offload")))
        if gb is not None and spec.get("lora") and Path(spec["lora"]).exists():
            gb += model_gb(spec["lora"], known) or 0.0
        sizes[role] = gb
    return sizes


@dataclass(frozen=True)
class Placement:
    role: str
    gb: float
    gpu: int  # index among the GPUs the actor sees (cuda:{gpu})


def place(sizes: dict[str, float], num_gpus: int, gpu_gb: float) -> list[Placement]:
    """First fit, largest first; raises MemoryPlanError when a role is larger than a GPU or the roles need more GPUs."""
    usable = gpu_gb * (1 - RESERVE)
    too_big = [f"{role} {gb:.1f} GB" for role, gb in sizes.items() if gb > usable]
    if too_big:
        raise MemoryPlanError(
            f"{', '.join(too_big)} larger than one {gpu_gb:g} GB GPU ({usable:.0f} GB usable): serve a VLM or "
            'scorer (backend = "openai": vLLM / SGLang with tensor parallelism), give a diffusers pipeline '
            "offload = true, or use larger GPUs"
        )
    free, placed = [usable] * max(0, math.floor(num_gpus)), []
    for role, gb in sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0])):
        gpu = next((i for i, left in enumerate(free) if left >= gb), None)
        if gpu is None:
            need = gpus_needed(sizes, gpu_gb)
            listed = " + ".join(f"{r} {g:.1f}" for r, g in sorted(sizes.items(), key=lambda kv: -kv[1]))
            raise MemoryPlanError(
                f"{listed} GB do not fit {num_gpus:g} GPU(s) of {gpu_gb:g} GB ({usable:.0f} GB usable each): "
                f'ask for num_gpus = {need}, or serve the VLM (backend = "openai")'
            )
        free[gpu] -= gb
        placed.append(Placement(role, gb, gpu))
    return placed


def gpus_needed(sizes: dict[str, float], gpu_gb: float) -> int:
    """The fewest GPUs first fit places the roles on (each role fits one GPU)."""
    usable, free = gpu_gb * (1 - RESERVE), []
    for gb in sorted(sizes.values(), reverse=True):
        gpu = next((i for i, left in enumerate(free) if left >= gb), None)
        if gpu is None:
            free.append(usable)
            gpu = len(free) - 1
        free[gpu] -= gb
    return len(free)


def stage_placement(
    cfg: SynthConfig, number: int, roles: list[str], num_gpus: float, known: dict[str, dict[str, float]] | None = None
) -> list[Placement]:
    """The stage's roles on its actor's GPUs, under ``[ray] gpu_memory_gb``; [] when not planned (0) or on CPU.
    A fractional ``num_gpus`` is that share of one GPU."""
    gpu_gb = float(cfg.settings["ray"]["gpu_memory_gb"])
    if gpu_gb <= 0 or num_gpus <= 0:
        return []
    sizes = role_sizes(cfg, number, roles, known_sizes() if known is None else known)
    unknown = [f"{role} {cfg.role(number, role)['model']!r}" for role, gb in sizes.items() if gb is None]
    if unknown:
        raise MemoryPlanError(
            f"stage {number}: cannot size {', '.join(unknown)} "
            "(not a local folder, not in sparkle_bench/synth/data/model_sizes.toml)"
        )
    gpus, share = (math.ceil(num_gpus), gpu_gb) if num_gpus >= 1 else (1, gpu_gb * num_gpus)
    try:
        return place({r: gb for r, gb in sizes.items() if gb is not None}, gpus, share)
    except MemoryPlanError as exc:
        raise MemoryPlanError(f"stage {number}: {exc}") from None
