"""Training input throughput: pairs/s when every pair is decoded and fitted (no cache), when the
cache holds its latents and the trainable encoder still needs its (at most 16) source frames, and
when the cache holds everything (frozen encoder). One process, synthetic videos; the cache entries
hold latents of the shape the Wan2.2 VAE gives (48 channels, 4x time, 16x space) in bf16.

    python benchmarks/train_cache.py [--pairs 2] [--frames 81] [--size 1280x720] [--repeat 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def synthetic_pairs(root: Path, count: int, frames: int, size: tuple[int, int]) -> Path:
    """Smooth moving ramps (they compress, and decode, as real footage does)."""
    from train_speed import write_training_root  # benchmarks/ is on the path when run as a script

    width, height = size
    ramp = np.linspace(0, 255, width, dtype=np.float32)[None, :, None]
    videos = [
        np.stack([np.broadcast_to((ramp + 7 * t + 40 * i) % 255, (height, width, 3)) for t in range(frames)]).astype(
            np.uint8
        )
        for i in range(count)
    ]
    return write_training_root(root, videos)


def pairs_per_second(dataset, repeat: int, read: bool) -> float:
    from sparkle_bench.train.cache import read_entry

    started = time.perf_counter()
    for _ in range(repeat):
        for index in range(len(dataset)):
            sample = dataset[index]
            assert "skip" not in sample, sample
            if read and "cached" in sample:
                read_entry(sample["cached"], "cpu", torch.bfloat16)
    return repeat * len(dataset) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=2)
    parser.add_argument("--frames", type=int, default=81)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    from sparkle_bench.models.kiwi.frames import frame_count, protocol_size
    from sparkle_bench.train.cache import write_entry
    from sparkle_bench.train.config import TrainConfig
    from sparkle_bench.train.data import PairDataset, entry_path, read_pairs

    size = tuple(int(v) for v in args.size.split("x"))
    root = Path(tempfile.mkdtemp(prefix="train-cache-bench-"))
    pairs = read_pairs([str(synthetic_pairs(root / "data", args.pairs, args.frames, size))], ["bench"])
    settings = TrainConfig(cache_dir=str(root / "cache"), num_frames=args.frames)
    fitted = protocol_size(*size, settings.pixel_budget, settings.multiple)
    shape = (1, 48, (frame_count(args.frames, args.frames) - 1) // 4 + 1, fitted[1] // 16, fitted[0] // 16)
    for pair in pairs:
        write_entry(
            entry_path(Path(settings.cache_dir), pair, settings.cache_settings()),
            {"source": torch.randn(shape).bfloat16(), "target": torch.randn(shape).bfloat16()},
        )
    common = (
        pairs,
        settings.num_frames,
        settings.pixel_budget,
        settings.multiple,
        settings.length_mismatch,
        settings.resize,
    )
    results = {
        "decoding every frame (no cache)": pairs_per_second(PairDataset(*common), args.repeat, False),
        "cached latents + 16 source frames (encoder trains)": pairs_per_second(
            PairDataset(*common, Path(settings.cache_dir), settings.cache_settings(), encoder_reads=True),
            args.repeat,
            True,
        ),
        "cached latents only (frozen encoder)": pairs_per_second(
            PairDataset(*common, Path(settings.cache_dir), settings.cache_settings(), encoder_reads=False),
            args.repeat,
            True,
        ),
    }
    print(
        f"{args.pairs} pairs of {args.frames} frames at {size[0]}x{size[1]} (fitted to {fitted[0]}x{fitted[1]}), "
        f"latents {tuple(shape)} bf16, one process:"
    )
    for name, rate in results.items():
        print(f"  {name:52s} {rate:8.2f} pairs/s")


if __name__ == "__main__":
    main()
