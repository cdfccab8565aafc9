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
PRELOADED: dict[str, object] = {}  # checkpoint file -> a model already in memory (the trainer's evaluation)


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
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, local_files_only=True))
    except Exception as exc:  # the hub client raises several types for "not cached"
        raise WeightsError(f"{source} is not in the local Hugging Face cache ({type(exc).__name__}); "
                           f"download it first (`hf download {source}`) or pass a local path") from exc


def checkpoint_file(path: Path) -> Path | None:
    """The DiffSynth checkpoint at ``path`` (a .safetensors file, or a folder without a
    ``model_index.json`` holding ``model.safetensors`` or exactly one other), or None when ``path``
    is a released-layout folder."""
    if path.is_file():
        if path.suffix != ".safetensors":
            raise WeightsError(f"{path.name}: only .safetensors checkpoints are read")
        return path
    if (path / "model_index.json").is_file():
        return None
    if (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    files = sorted(path.glob("*.safetensors"))
    if len(files) != 1:
        raise WeightsError(f"{path}: neither a Kiwi folder (model_index.json) nor a folder with one .safetensors "
                           f"checkpoint ({len(files)} found)")
    refuse_pickle(str(files[0]))
    return files[0]


def checkpoint_bases(checkpoint: Path, base: str | None, mllm: str | None) -> tuple[str, str]:
    """The Wan base and Qwen model a DiffSynth checkpoint applies to: as given, else as recorded in
    the ``kiwi.json`` our trainer writes beside its checkpoints, else the released models."""
    from .checkpoints import DEFAULT_BASE, DEFAULT_MLLM

    sidecar = checkpoint.parent / SIDECAR
    recorded = json.loads(sidecar.read_text()) if sidecar.is_file() else {}
    return base or recorded.get("base") or DEFAULT_BASE, mllm or recorded.get("mllm") or DEFAULT_MLLM


def checkpoint_paths(checkpoint: Path, base: str | None, mllm: str | None) -> tuple[Path, Path | None]:
    """Local paths of a checkpoint's bases (no Qwen needed when the base is a whole Kiwi folder)."""
    from .checkpoints import is_kiwi_folder

    base, mllm = checkpoint_bases(checkpoint, base, mllm)
    base_path = resolve(base)
    return base_path, None if is_kiwi_folder(base_path) else resolve(mllm)


def open_kiwi(source: str, dtype: torch.dtype, base: str | None = None, mllm: str | None = None,
              lora_alpha: float = 1.0):
    """A :class:`KiwiModel` from any supported source; one-line :class:`WeightsError` on failure."""
    from .checkpoints import CheckpointError, load_checkpoint
    from .folders import FolderError, load_folder

    path = resolve(source)
    try:
        checkpoint = checkpoint_file(path)
        if checkpoint is None:
            return load_folder(path, dtype)
        if str(checkpoint.resolve()) in PRELOADED:
            return PRELOADED[str(checkpoint.resolve())]
        base_path, mllm_path = checkpoint_paths(checkpoint, base, mllm)
        return load_checkpoint(checkpoint, base_path, mllm_path, dtype, lora_alpha)
    except (CheckpointError, FolderError, OSError, ValueError) as exc:
        raise WeightsError(f"cannot load Kiwi weights from {source}: {str(exc).splitlines()[0]}") from exc
