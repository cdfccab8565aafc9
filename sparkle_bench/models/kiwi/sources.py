"""Where Kiwi weights come from: a folder, a ``.safetensors`` file, or a Hugging Face id found in
the local cache (never downloaded at run time). Pickle checkpoints are refused: loading them can
run code."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..base import WeightsError

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
SIDECAR = "kiwi.json"  # beside a checkpoint: the base and Qwen model it applies to


def refuse_pickle(source: str) -> None:
    if source.lower().endswith(PICKLE_SUFFIXES):
        raise WeightsError(f"{source}: pickle checkpoints are refused (loading one can run code); "
                           f"convert it to .safetensors")


def resolve(source: str) -> Path:
    """A local path for ``source``: itself, or its snapshot in the Hugging Face cache."""
    refuse_pickle(source)
    path = Path(source).expanduser()
    if path.exists():
        return path.resolve()
    if source.startswith(("/", ".", "~")) or source.count("/") != 1:
        raise WeightsError(f"cannot load weights from {source}: no such file or folder")
    from huggingface_hub import errors, snapshot_download

    try:
        return Path(snapshot_download(source, local_files_only=True))
    except getattr(errors, "IncompleteSnapshotError", ()) as exc:
        # fetched with file patterns (`sparkle-bench download` takes only what Kiwi reads): the
        # loader opens the files it needs from it and names any that is missing
        return Path(exc.snapshot_path)
    except Exception as exc:  # the hub client raises several types for "not cached"
        raise WeightsError(f"{source} is not in the local Hugging Face cache ({type(exc).__name__}); "
                           f"`sparkle-bench download --model MODEL` fetches it, or pass a local path") from exc


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names of a safetensors file, read from its header only; a file that is not
    safetensors (a renamed pickle, a truncated download) is refused in one line."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return list(handle.keys())
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"{path.name} is not a readable safetensors file ({str(exc).splitlines()[0][:120]}); "
                           f"only safetensors checkpoints are read") from exc


def checkpoint_file(path: Path) -> Path | None:
    """The DiffSynth checkpoint at ``path`` (a .safetensors file, or a folder holding
    ``model.safetensors`` or exactly one other), or None when ``path`` is a released-layout Kiwi folder."""
    from .checkpoints import is_kiwi_folder, is_wan_base

    if path.is_file():
        if path.suffix != ".safetensors":
            raise WeightsError(f"{path.name}: only .safetensors checkpoints are read")
        safetensors_keys(path)
        return path
    if is_kiwi_folder(path):
        return None
    if is_wan_base(path):
        raise WeightsError(f"{path} is a Wan base (transformer/, vae/), not Kiwi weights: "
                           f"give it as --model-option base={path} of a Kiwi checkpoint")
    files = [path / "model.safetensors"] if (path / "model.safetensors").is_file() else sorted(path.glob("*.safetensors"))
    if len(files) != 1:
        raise WeightsError(f"{path}: neither a Kiwi folder (model_index.json, mllm_encoder/) nor a folder with one "
                           f".safetensors checkpoint ({len(files)} found)")
    safetensors_keys(files[0])
    return files[0]


def checkpoint_bases(checkpoint: Path, base: str | None, mllm: str | None) -> tuple[str, str]:
    """The Wan base and Qwen model a DiffSynth checkpoint applies to: as given, else as recorded in
    the ``kiwi.json`` our trainer writes beside its checkpoints, else the released models."""
    from .releases import DEFAULT_BASE, DEFAULT_MLLM

    sidecar = checkpoint.parent / SIDECAR
    recorded = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    return base or recorded.get("base") or DEFAULT_BASE, mllm or recorded.get("mllm") or DEFAULT_MLLM


def checkpoint_paths(checkpoint: Path, base: str | None, mllm: str | None) -> tuple[Path, Path | None]:
    """Local paths of a checkpoint's bases (no Qwen needed when the base is a whole Kiwi folder).

    A Kiwi folder given as ``base=`` for a checkpoint that carries a Qwen LoRA is refused: its Qwen
    already has a LoRA merged in, and a released checkpoint's LoRA is relative to the plain
    Qwen2.5-VL-3B (our trainer's ``kiwi.json`` records a folder only when its LoRA is relative to it)."""
    from .checkpoints import QWEN_PREFIX, is_kiwi_folder, is_wan_base

    given = base
    base, mllm = checkpoint_bases(checkpoint, base, mllm)
    base_path = resolve(base)
    if is_kiwi_folder(base_path):
        if given and any(k.startswith(QWEN_PREFIX) and ".lora_" in k for k in safetensors_keys(checkpoint)):
            raise WeightsError(f"base={given} is a Kiwi folder whose Qwen already has a LoRA merged in; "
                               f"{checkpoint.name} carries its own Qwen LoRA: give the Wan2.2-TI2V-5B base instead")
        return base_path, None
    if not is_wan_base(base_path):
        raise WeightsError(f"base {base} is neither a Wan base (transformer/, vae/) nor a Kiwi folder")
    return base_path, resolve(mllm)


def open_kiwi(source: str, dtype: torch.dtype, base: str | None = None, mllm: str | None = None,
              lora_alpha: float = 1.0, rounding: str = "float32"):
    """A :class:`KiwiModel` from any supported source; one-line :class:`WeightsError` on failure."""
    from safetensors import SafetensorError

    from .checkpoints import CheckpointError, load_checkpoint
    from .folders import FolderError, load_folder

    path = resolve(source)
    try:
        checkpoint = checkpoint_file(path)
        if checkpoint is None:
            return load_folder(path, dtype)
        base_path, mllm_path = checkpoint_paths(checkpoint, base, mllm)
        return load_checkpoint(checkpoint, base_path, mllm_path, dtype, lora_alpha, rounding=rounding)
    except (CheckpointError, FolderError, OSError, ValueError, SafetensorError) as exc:
        raise WeightsError(f"cannot load Kiwi weights from {source}: {str(exc).splitlines()[0]}") from exc
