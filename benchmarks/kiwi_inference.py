"""Kiwi inference cost per sample: seconds and peak memory, for a tiny random model built from
configs (always) and for real weights when they are local (``--weights``).

    python benchmarks/kiwi_inference.py                      # tiny model, this machine's device
    python benchmarks/kiwi_inference.py --weights stdKonjac/Kiwi-Sparkle-720P-81F --frames 81 --steps 50
    python benchmarks/kiwi_inference.py --compare            # what each protocol option changes (tiny, bf16)
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sparkle_bench.testing.videos import smooth_video


def measure(model, frames: np.ndarray, steps: int, device: str) -> tuple[float, float]:
    from sparkle_bench.models.kiwi.pipeline import Sampling

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model.generate("Replace the background with a busy harbour at dusk.", frames, None, Sampling(steps=steps))
    seconds = time.perf_counter() - start
    peak = (
        torch.cuda.max_memory_allocated() / 2**30
        if device.startswith("cuda")
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    )
    return seconds, peak


def compare_options(model, frames: np.ndarray, steps: int) -> None:
    """Grey levels (of 255) each protocol difference moves the output, and its time, on one model:
    the official settings against each alternative, all in bfloat16 (where the roundings differ)."""
    from sparkle_bench.models.kiwi.pipeline import Sampling
    from sparkle_bench.video import OFFICIAL_CRF, read_frames, write_video

    model.to(torch.bfloat16)
    prompt = "Replace the background with a busy harbour at dusk."

    def run(**options) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        video = model.generate(prompt, frames, None, Sampling(steps=steps, **options))
        return video, time.perf_counter() - start

    official, seconds = run()
    print(f"official (tiling=diffsynth, rounding=diffsynth): {seconds:.2f} s")
    for name, options in (
        ("rounding=float32", {"rounding": "float32"}),
        ("tiling=diffusers", {"tiling": "diffusers"}),
        ("tiling=off", {"tiling": "off"}),
    ):
        video, took = run(**options)
        diff = np.abs(video.astype(int) - official)
        print(f"{name:<18} mean {diff.mean():.3f}  max {diff.max():3d} grey levels vs official; {took:.2f} s")
    with tempfile.TemporaryDirectory() as folder:  # on the (smooth) source: a random model's output is noise
        for crf in (17, OFFICIAL_CRF):
            path = Path(folder) / f"{crf}.mp4"
            write_video(path, frames, 15.0, crf=crf)
            diff = np.abs(read_frames(path).astype(int) - frames)
            print(
                f"mp4 crf={crf:<9} mean {diff.mean():.3f}  max {diff.max():3d} grey levels lost on the source; "
                f"{path.stat().st_size / 1024:.0f} KiB"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", help="a Kiwi folder, a DiffSynth .safetensors or a cached hub id")
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", default="1280x720", help="source size; the protocol fits it into the pixel budget")
    parser.add_argument("--offload", action="store_true")
    parser.add_argument("--compare", action="store_true", help="what each protocol option changes, instead of timing")
    args = parser.parse_args()
    from sparkle_bench.models.kiwi.frames import prepare_video

    device = "cuda" if torch.cuda.is_available() else "cpu"
    width, height = map(int, args.size.split("x"))
    source = smooth_video(args.frames, width, height)
    if args.weights:
        from sparkle_bench.models.kiwi.sources import open_kiwi

        model = open_kiwi(args.weights, torch.bfloat16 if device == "cuda" else torch.float32)
        frames, name = prepare_video(source), args.weights
    else:
        from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model

        model = tiny_kiwi_model(Path(tempfile.mkdtemp()))
        frames, name = prepare_video(source, *(() if args.compare else (256 * 144,))), "tiny random Kiwi"
    if args.compare:
        return compare_options(model.place(device), frames, args.steps)
    model.place(device, offload=args.offload)
    measure(model, frames[:5], 1, device)  # warm-up
    seconds, peak = measure(model, frames, args.steps, device)
    unit = "GB GPU" if device == "cuda" else "GB RSS"
    print(
        f"{name}: {frames.shape[0]} frames at {frames.shape[2]}x{frames.shape[1]}, {args.steps} steps on {device}: "
        f"{seconds:.2f} s/sample ({seconds / args.steps:.3f} s/step), peak {peak:.2f} {unit}"
    )


if __name__ == "__main__":
    main()
