"""Trainer throughput and memory: optimizer steps per second and the measured peak beside the
start-up estimate, for a tiny and a mid-size Kiwi configuration built from configs (random weights,
synthetic pairs), on this machine's device; and, with ``--full-size``, the estimate for the 5B
recipe per engine and GPU count from a weightless (meta-device) model of the released sizes.

    python benchmarks/train_speed.py [--steps 10] [--sizes tiny,mid] [--full-size]
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

SIZES = {  # DiT width / depth, frames, pixel budget
    "tiny": (dict(num_attention_heads=2, attention_head_dim=12, ffn_dim=32), 5, 64 * 64),
    "mid": (dict(num_attention_heads=8, attention_head_dim=64, ffn_dim=2048, num_layers=8), 17, 320 * 192),
}
WAN22_5B = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=24,
    attention_head_dim=128,
    in_channels=48,
    out_channels=48,
    text_dim=4096,
    freq_dim=256,
    ffn_dim=14336,
    num_layers=30,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    eps=1e-6,
    rope_max_seq_len=1024,
)
WAN22_VAE = dict(
    base_dim=160,
    decoder_base_dim=256,
    z_dim=48,
    dim_mult=[1, 2, 4, 4],
    num_res_blocks=2,
    temperal_downsample=[False, True, True],
    is_residual=True,
    in_channels=12,
    out_channels=12,
    patch_size=2,
    scale_factor_spatial=16,
    scale_factor_temporal=4,
    latents_mean=[0.0] * 48,
    latents_std=[1.0] * 48,
)
QWEN25_VL_3B = dict(
    text_config=dict(
        hidden_size=2048,
        intermediate_size=11008,
        num_hidden_layers=36,
        num_attention_heads=16,
        num_key_value_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
        rope_scaling={"type": "mrope", "mrope_section": [16, 24, 24]},
    ),
    vision_config=dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=2048,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
    ),
    tie_word_embeddings=True,
)


def write_training_root(root: Path, videos: list[np.ndarray]) -> Path:
    """A one-theme (``bench``) training root in the layout the trainer reads: each video as a source,
    its negative as the target."""
    from sparkle_bench.video import write_video

    rows = []
    for i, video in enumerate(videos):
        write_video(root / f"src{i}.mp4", video, 16)
        write_video(root / f"tgt{i}.mp4", 255 - video, 16)
        rows.append(
            {
                "prompt": f"Replace the background {i}.",
                "src_video": f"src{i}.mp4",
                "tgt_video": f"tgt{i}.mp4",
                "task": f"p{i}",
            }
        )
    (root / "prompts").mkdir()
    with open(root / "prompts" / "bench_train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def synthetic_pairs(root: Path, frames: int, size: tuple[int, int]) -> Path:
    rng = np.random.default_rng(0)
    return write_training_root(
        root, [rng.integers(0, 255, (frames, size[1], size[0], 3), dtype=np.uint8) for _ in range(2)]
    )


def full_size_model():
    """The released architecture on the meta device (no weights, no memory): what the estimate reads."""
    from diffusers import AutoencoderKLWan, WanTransformer3DModel
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from sparkle_bench.models.kiwi.dit import Denoiser
    from sparkle_bench.models.kiwi.embedders import ConditionalEmbedder
    from sparkle_bench.models.kiwi.encoder import ConditionEncoder
    from sparkle_bench.models.kiwi.pipeline import KiwiModel

    processor = SimpleNamespace(tokenizer=SimpleNamespace(convert_tokens_to_ids=lambda token: 0))
    with torch.device("meta"):
        transformer = WanTransformer3DModel(**WAN22_5B)
        qwen = Qwen2_5_VLForConditionalGeneration(Qwen2_5_VLConfig(**QWEN25_VL_3B))
        dim = WAN22_5B["num_attention_heads"] * WAN22_5B["attention_head_dim"]
        denoiser = Denoiser(transformer, ConditionalEmbedder(48, dim), ConditionalEmbedder(48, dim))
        return KiwiModel(ConditionEncoder(qwen, processor, dim), denoiser, AutoencoderKLWan(**WAN22_VAE))


def print_full_size() -> None:
    from sparkle_bench.train.config import TrainConfig
    from sparkle_bench.train.memory import estimate
    from sparkle_bench.train.model import Start, make_trainable

    config = TrainConfig()  # the recipe: full DiT, Qwen LoRA 64, 81 frames at 1280x720, bf16, checkpointing
    model = full_size_model().to(torch.bfloat16)
    make_trainable(model, config, Start(qwen_lora=None))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(
        f"full size (5B DiT + 3.75B Qwen2.5-VL + VAE), {trainable / 1e9:.2f}B trainable, "
        f"{config.num_frames} frames, {config.pixel_budget} px, bf16, gradient checkpointing:"
    )
    for engine, offload in (("ddp", False), ("fsdp2", False), ("deepspeed", True), ("deepspeed", False)):
        for processes in (1, 8):
            config.engine, config.offload_optimizer = engine, offload
            print(
                "  "
                + estimate(model, config, processes).line()
                + (" [offload]" if engine == "deepspeed" and offload else "")
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--sizes", default="tiny,mid")
    parser.add_argument("--full-size", action="store_true", help="only print the 5B recipe's memory estimate")
    args = parser.parse_args()
    if args.full_size:
        print_full_size()
        return
    from sparkle_bench.models.kiwi.folders import save_folder
    from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
    from sparkle_bench.train.config import TrainConfig
    from sparkle_bench.train.loop import train
    from sparkle_bench.train.memory import GB, estimate, rss_peak_during
    from sparkle_bench.train.model import Start, make_trainable

    device = "cuda" if torch.cuda.is_available() else "cpu"
    for name in args.sizes.split(","):
        dit, frames, budget = SIZES[name]
        root = Path(tempfile.mkdtemp())
        model = tiny_kiwi_model(root / "parts", **dit)
        start = save_folder(model, root / "start")
        side = int((budget * 16 / 9) ** 0.5) // 32 * 32
        data = synthetic_pairs(root / "data", frames, (side, budget // side // 32 * 32))
        config = TrainConfig(
            start=str(start),
            roots=[str(data)],
            themes=["bench"],
            num_frames=frames,
            pixel_budget=budget,
            workers=0,
            qwen_lora_rank=8,
            steps=args.steps,
            save_every=args.steps,
            out=str(root / "run"),
            log_with=[],
            weights="bf16" if device == "cuda" else "fp32",
            mixed_precision="bf16" if device == "cuda" else "no",
        )
        make_trainable(model, config, Start(qwen_lora=None))
        expected = estimate(model, config, 1)
        del model
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        started = time.perf_counter()
        before, peak = rss_peak_during(lambda: train(config))
        total = time.perf_counter() - started
        records = [json.loads(line) for line in (root / "run" / "losses.jsonl").read_text().splitlines()]
        steady = [r["seconds"] for r in records[2:]] or [r["seconds"] for r in records]
        measured = torch.cuda.max_memory_allocated() if device == "cuda" else peak - before
        what = "GPU peak allocated" if device == "cuda" else "resident-memory growth (model loaded in the run)"
        print(
            f"{name}: {frames} frames, budget {budget} px, {args.steps} steps on {device}: "
            f"{1 / np.mean(steady):.2f} steps/s steady ({total:.1f} s with loading and checkpoint); "
            f"{what} {measured / GB:.2f} GB, estimated {expected.total / GB:.2f} GB ({expected.line()})"
        )


if __name__ == "__main__":
    main()
