"""Where training starts: the Kiwi model named by ``start`` (a released folder, a DiffSynth
checkpoint with its bases, or an alias), how its Qwen LoRA relates to the base, and how each base
is recorded in the ``kiwi.json`` beside every checkpoint (``models/kiwi/sidecar.py``: hub id and
revision, or absolute and checkpoint-relative path, plus a fingerprint), so that the checkpoint finds
its base from any working directory. Both the trainer and ``train-cache`` load the start from here."""

from __future__ import annotations

import torch

from ..models.kiwi.releases import KIWI_EDIT_STAGE2, KIWI_SPARKLE
from .config import STAGE2, TrainConfig
from .model import Start

ALIASES = {"kiwi-edit": KIWI_EDIT_STAGE2, "kiwi-sparkle": KIWI_SPARKLE, "kiwi-edit-stage2": STAGE2}


def weights_dtype(config: TrainConfig) -> torch.dtype:
    return torch.bfloat16 if config.weights == "bf16" else torch.float32


def start_model(config: TrainConfig, dtype: torch.dtype):
    """The starting Kiwi model, how its Qwen LoRA relates to the base, and the ``kiwi.json`` records
    (``base``, ``mllm``, ``start``). A DiffSynth start's bases are found as inference finds them
    (``config.base``/``mllm``, else its own ``kiwi.json``, else the released models)."""
    from safetensors.torch import load_file

    from ..models.kiwi.checkpoints import model_from_checkpoint, sort_checkpoint
    from ..models.kiwi.folders import load_folder
    from ..models.kiwi.sidecar import entry
    from ..models.kiwi.sources import checkpoint_file, checkpoint_paths, resolve

    path = resolve(ALIASES.get(config.start, config.start))
    checkpoint = checkpoint_file(path)
    if checkpoint is None:  # a Kiwi folder: what we export applies on top of it, its Qwen LoRA to the folder's Qwen
        folder = entry(path)
        return load_folder(path, dtype), Start(qwen_lora=None), {"base": folder, "mllm": None, "start": folder}
    base_path, mllm_path = checkpoint_paths(checkpoint, config.base, config.mllm)
    sorted_ = sort_checkpoint(load_file(checkpoint))
    model = model_from_checkpoint(sorted_, base_path, mllm_path, dtype, merge_qwen_lora=False)
    records = {"base": entry(base_path), "mllm": entry(mllm_path) if mllm_path else None, "start": entry(path)}
    return model, Start(qwen_lora=sorted_.qwen_lora), records
