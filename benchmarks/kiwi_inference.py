"""Kiwi inference cost per sample: seconds and peak memory, for a tiny random model built from
configs (always) and for real weights when they are local (``--weights``).

    python benchmarks/kiwi_inference.py                      # tiny model, this machine's device
    python benchmarks/kiwi_inference.py --weights stdKonjac/Kiwi-Sparkle-720P-81F --frames 81 --steps 50
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]


def measure(model, frames: np.ndarray, steps: int, device: str) -> tuple[float, float]:
    from sparkle_bench.models.kiwi.pipeline import Sampling

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model.generate("Replace the background with a busy harbour at dusk.", frames, None, Sampling(steps=steps))
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", help="a Kiwi folder, a DiffSynth .safetensors or a cached hub id")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", default="1280x720", help="source size; the protocol fits it into the pixel budget")
    parser.add_argument("--offload", action="store_true")
    args = parser.parse_args()
    from sparkle_bench.models.kiwi.frames import prepare_video

    device = "cuda" if torch.cuda.is_available() else "cpu"
    width, height = map(int, args.size.split("x"))
    source = np.random.default_rng(0).integers(0, 255, (args.frames, height, width, 3), dtype=np.uint8)
    if args.weights:
        from sparkle_bench.models.kiwi.sources import open_kiwi

        model = open_kiwi(args.weights, torch.bfloat16 if device == "cuda" else torch.float32)
        frames, name = prepare_video(source), args.weights
    else:
        sys.path.insert(0, str(ROOT))
        from tests.tiny_kiwi import tiny_kiwi_model

        model = tiny_kiwi_model(Path(tempfile.mkdtemp()))
        frames, name = prepare_video(source, 256 * 144), "tiny random Kiwi"
    model.vae.enable_tiling()
    model.place(device, offload=args.offload)
    measure(model, frames[:5], 1, device)  # warm-up
    seconds, peak = measure(model, frames, args.steps, device)
    unit = "GB GPU" if device == "cuda" else "GB RSS"
    print(f"{name}: {frames.shape[0]} frames at {frames.shape[2]}x{frames.shape[1]}, {args.steps} steps on {device}: "
          f"{seconds:.2f} s/sample ({seconds / args.steps:.3f} s/step), peak {peak:.2f} {unit}")


if __name__ == "__main__":
    main()
