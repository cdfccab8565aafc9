"""Trainer throughput: optimizer steps per second and peak memory for a tiny and a mid-size Kiwi
configuration built from configs (random weights, synthetic pairs), on this machine's device.

    python benchmarks/train_speed.py [--steps 10] [--sizes tiny,mid]
"""

from __future__ import annotations

import argparse
import csv
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SIZES = {  # DiT width / depth, frames, pixel budget
    "tiny": (dict(num_attention_heads=2, attention_head_dim=12, ffn_dim=32), 5, 64 * 64),
    "mid": (dict(num_attention_heads=8, attention_head_dim=64, ffn_dim=2048, num_layers=8), 17, 320 * 192),
}


def synthetic_pairs(root: Path, frames: int, size: tuple[int, int]) -> Path:
    from sparkle_bench.video import write_video

    rng = np.random.default_rng(0)
    rows = []
    for i in range(2):
        video = rng.integers(0, 255, (frames, size[1], size[0], 3), dtype=np.uint8)
        write_video(root / f"src{i}.mp4", video, 16)
        write_video(root / f"tgt{i}.mp4", 255 - video, 16)
        rows.append({"prompt": f"Replace the background {i}.", "src_video": f"src{i}.mp4", "tgt_video": f"tgt{i}.mp4", "task": f"p{i}"})
    (root / "prompts").mkdir()
    with open(root / "prompts" / "bench_train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sizes", default="tiny,mid")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from tests.tiny_kiwi import tiny_kiwi_model
    from sparkle_bench.models.kiwi.folders import save_folder
    from sparkle_bench.train.config import TrainConfig
    from sparkle_bench.train.loop import train

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in args.sizes.split(","):
        dit, frames, budget = SIZES[name]
        root = Path(tempfile.mkdtemp())
        start = save_folder(tiny_kiwi_model(root / "parts", **dit), root / "start")
        side = int((budget * 16 / 9) ** 0.5) // 32 * 32
        data = synthetic_pairs(root / "data", frames, (side, budget // side // 32 * 32))
        config = TrainConfig(start=str(start), roots=[str(data)], themes=["bench"], num_frames=frames, pixel_budget=budget,
                             workers=0, qwen_lora_rank=8, steps=args.steps, save_every=args.steps, out=str(root / "run"),
                             log_with=[], mixed_precision="bf16" if device == "cuda" else "no")
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        train(config)
        total = time.perf_counter() - started
        records = [json.loads(line) for line in (root / "run" / "losses.jsonl").read_text().splitlines()]
        steady = [r["seconds"] for r in records[2:]] or [r["seconds"] for r in records]
        peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        print(f"{name}: {frames} frames, budget {budget} px, {args.steps} steps on {device}: "
              f"{1 / np.mean(steady):.2f} steps/s steady ({total:.1f} s with loading and checkpoint), peak {peak:.2f} GB")


if __name__ == "__main__":
    main()
