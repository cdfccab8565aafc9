"""Precomputed training inputs: each pair's VAE latents (and, when nothing in the condition encoder
trains, its context) encoded once and read back at every epoch, so training decodes no video.

``sparkle-bench train-cache CONFIG`` fills the cache ahead of training, its pairs split over the
processes of a ``torchrun``/``accelerate launch`` job; entries already there are skipped, so a
re-run resumes. Training with the same ``cache_dir`` reads hits without decoding and writes misses.
Entries are written atomically (temporary name, then rename); keys are in ``data.entry_path``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..log import console, problem
from .config import TrainConfig


def encode_entry(model, sample: dict, with_context: bool) -> dict[str, torch.Tensor]:
    """The tensors training would compute from a decoded sample before the DiT."""
    with torch.no_grad():
        found = {"source": model.encode(sample["source"]), "target": model.encode(sample["target"])}
        if with_context:
            found["context"] = model.encoder(sample["prompt"], sample["source"])
    return found


def write_entry(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, tmp)
    os.replace(tmp, path)


def read_entry(path: str | Path, device, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: v.to(device, dtype) for k, v in load_file(path).items()}


def build_cache(config: TrainConfig) -> int:
    """Encode every pair of the config into ``cache_dir`` (this process's share); 0 when done."""
    from accelerate import PartialState

    from .data import PairDataset, keep_as_is, read_pairs
    from .model import UNSET_FRAME_CAP, use_frame_cap
    from .start import start_model, weights_dtype

    if not config.cache_dir:
        raise ValueError("train-cache needs cache_dir in the config (or --cache-dir)")
    state = PartialState(cpu=not torch.cuda.is_available())
    pairs = read_pairs(config.roots, config.themes)
    mine = list(range(state.process_index, len(pairs), state.num_processes))
    dataset = PairDataset(
        pairs,
        config.num_frames,
        config.pixel_budget,
        config.multiple,
        config.length_mismatch,
        config.resize,
        Path(config.cache_dir),
        config.cache_settings(),
        encoder_reads=False,
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=None, sampler=mine, collate_fn=keep_as_is, num_workers=config.workers
    )
    model = None
    written = cached = skipped = 0
    for sample in loader:
        if "skip" in sample:
            problem("skipped", sample["id"], sample["skip"])
            skipped += 1
            continue
        if "cached" in sample:
            cached += 1
            continue
        if model is None:  # loaded only when something needs encoding
            model = start_model(config, weights_dtype(config))[0].place(state.device).eval()
            use_frame_cap(model, config.qwen_max_pixels or UNSET_FRAME_CAP)
        write_entry(Path(sample["cache_path"]), encode_entry(model, sample, config.encoder_frozen))
        written += 1
    console.print(
        f"train-cache (process {state.process_index + 1}/{state.num_processes}): {written} encoded, "
        f"{cached} already cached, {skipped} skipped of {len(mine)} pairs -> {config.cache_dir}"
    )
    state.wait_for_everyone()
    return 0
