"""One prepared check of Kiwi at real size on whatever GPU is here, with no download: full-size random
weights built from the packaged configurations (Wan2.2-TI2V-5B, Qwen2.5-VL-3B), the official
protocol (81 frames at 1280x704, bf16, DiffSynth tiling), and one table:

- seconds per denoising step, and per sample (50 steps extrapolated from a 2-step run);
- peak GPU memory of a sample resident and with ``--offload``, with and without VAE tiling;
- the VAE encode and decode;
- one training step of the Kiwi-Sparkle recipe (stage 2: full DiT, Qwen LoRA rank 64, queries,
  connector, source embedder; gradient checkpointing), forward+backward and the optimizer step.

    python benchmarks/gpu_check.py            # < 8 min on one H100-class card
    python benchmarks/gpu_check.py --tiny     # the same code at tiny size on the CPU (the test runs this)

The prompt goes through a stand-in character tokenizer that has Qwen2.5's special-token ids (the
real tokenizer is a download): the text is ~3x more tokens than with Qwen's BPE, a few hundred of
the ~3000 the encoder reads, which changes the encoder's time by a few percent at most.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

PROMPT = "Replace the background with a busy harbour at dusk, keep the subject unchanged."
GIB = 2**30
QWEN25_SPECIAL_IDS = {
    "<|endoftext|>": 151643,
    "<|im_start|>": 151644,
    "<|im_end|>": 151645,
    "<|object_ref_start|>": 151646,
    "<|vision_start|>": 151652,
    "<|vision_end|>": 151653,
    "<|image_pad|>": 151655,
    "<|video_pad|>": 151656,
}


def stand_in_processor():
    """A Qwen2.5-VL processor whose tokenizer reads characters but gives the special tokens the ids
    the real model's config expects (image/video pads, vision start/end, the query token)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2_5_VLProcessor, Qwen2VLImageProcessor
    from transformers.models.qwen2_vl import Qwen2VLVideoProcessor

    from sparkle_bench.synth.demo_models import CHAT_TEMPLATE

    vocab = {chr(c): i for i, c in enumerate(range(32, 127))} | {"\n": 95} | QWEN25_SPECIAL_IDS
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.add_special_tokens(list(QWEN25_SPECIAL_IDS))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    return Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )


def build(tiny: bool, device: str, dtype: torch.dtype):
    """(model on ``device``, frames, what it is)."""
    from sparkle_bench.models.kiwi.frames import prepare_video
    from sparkle_bench.testing.videos import smooth_video

    if tiny:
        from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model

        with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
            model = tiny_kiwi_model(Path(folder)).to(dtype)
        return model, prepare_video(smooth_video(9, 128, 64), 128 * 64), "tiny random Kiwi"
    from sparkle_bench.models.kiwi.full_size import full_size_kiwi

    model = full_size_kiwi(device, dtype)
    model.encoder.processor = stand_in_processor()
    model.encoder.query_id = QWEN25_SPECIAL_IDS["<|object_ref_start|>"]
    return model, prepare_video(smooth_video(81, 1280, 720)), "full-size Kiwi (random weights)"


class Meter:
    """Seconds and peak GPU memory of one block (peak: n/a on the CPU)."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")

    def __call__(self, work):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            result = work()
        except torch.OutOfMemoryError:
            if self.cuda:
                torch.cuda.empty_cache()
            return None, time.perf_counter() - start, "out of memory"
        if self.cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        peak = f"{torch.cuda.max_memory_allocated() / GIB:.1f} GiB" if self.cuda else "n/a"
        return result, seconds, peak


def inference_rows(model, frames: np.ndarray, device: str, probe_steps: int) -> list[tuple[str, str, str]]:
    from sparkle_bench.models.kiwi.pipeline import Sampling
    from sparkle_bench.models.kiwi.sampler import FlowSchedule

    meter, rows = Meter(device), []
    model.place(device)
    with torch.inference_mode():
        context, seconds, peak = meter(lambda: model.encoder(PROMPT, frames).to(device, model.dtype))
        rows.append(("condition encoder (Qwen2.5-VL, up to 16 frames)", f"{seconds:.2f} s", peak))
        for tiling in ("diffsynth", "off"):
            source, seconds, peak = meter(lambda: model.encode(frames, tiling, "diffsynth"))
            rows.append((f"VAE encode, tiling={tiling}", f"{seconds:.2f} s", peak))
        schedule = FlowSchedule.make(50)
        latents = torch.randn(source.shape, generator=torch.Generator().manual_seed(0)).to(device, model.dtype)

        def steps(count: int):
            for index in range(count):
                timestep = schedule.timesteps[index : index + 1].to(device, model.dtype)
                model.denoiser(latents, timestep, schedule.sigma(timestep), context, source)

        meter(lambda: steps(1))  # warm-up (kernels, allocator)
        _, seconds, peak = meter(lambda: steps(probe_steps))
        step = seconds / probe_steps
        rows.append(
            (f"denoising step ({source.shape[2]}x{source.shape[3]}x{source.shape[4]} latents)", f"{step:.3f} s", peak)
        )
        for tiling in ("diffsynth", "off"):
            _, seconds, peak = meter(lambda: model.decode(latents, tiling, "diffsynth"))
            rows.append((f"VAE decode, tiling={tiling}", f"{seconds:.2f} s", peak))
        two = Sampling(steps=2)
        _, seconds, peak = meter(lambda: model.generate(PROMPT, frames, None, two))
        rows.append(("sample, 50 steps (2-step run + 48 x step), resident", f"{seconds + 48 * step:.1f} s", peak))
        _, _, peak = meter(lambda: model.generate(PROMPT, frames, None, Sampling(steps=2, tiling="off")))
        rows.append(("sample peak without VAE tiling, resident", "", peak))
    model.to("cpu")
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    model.place(device, offload=True)
    with torch.inference_mode():
        _, seconds, peak = meter(lambda: model.generate(PROMPT, frames, None, two))
        rows.append(("sample, 2 steps, --offload (weights on the CPU)", f"{seconds:.1f} s", peak))
    from accelerate.hooks import remove_hook_from_module

    remove_hook_from_module(model, recurse=True)
    model.to("cpu")
    return rows


def training_rows(model, frames: np.ndarray, device: str, tiny: bool) -> list[tuple[str, str, str]]:
    """One optimizer step of the stage-2 recipe through the trainer's public functions."""
    from sparkle_bench.train.config import TrainConfig
    from sparkle_bench.train.model import batch_loss, prepare_training

    config = TrainConfig(
        weights="fp32" if tiny else "bf16", mixed_precision="no" if tiny else "bf16", qwen_lora_rank=4 if tiny else 64
    )
    model.place(device)
    training = prepare_training(config, model)
    sample = {"prompt": PROMPT, "source": frames, "target": frames[:, :, ::-1].copy()}
    meter, rows = Meter(device), []
    autocast = (
        torch.autocast("cuda", torch.bfloat16) if device.startswith("cuda") else torch.autocast("cpu", enabled=False)
    )

    def forward_backward():
        with autocast:
            loss = batch_loss(training.objective, [sample], config, step=0, micro=0)
        loss.backward()
        return loss

    loss, seconds, peak = meter(forward_backward)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    rows.append(
        (f"training forward+backward ({trainable / 1e6:,.0f}M trainable, checkpointing)", f"{seconds:.2f} s", peak)
    )
    _, seconds, peak = meter(training.optimizer.step)
    note = " (upstream: ZeRO-2, optimizer on the CPU)" if peak == "out of memory" else ""
    rows.append((f"training optimizer step (AdamW){note}", f"{seconds:.2f} s", peak))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny random model on the CPU (what the test runs)")
    parser.add_argument("--steps", type=int, default=3, help="denoising steps timed (after one warm-up)")
    parser.add_argument("--no-training", action="store_true")
    args = parser.parse_args(argv)
    device = "cpu" if args.tiny else "cuda"
    if not args.tiny and not torch.cuda.is_available():
        print("no GPU here: run with --tiny for the CPU check", file=sys.stderr)
        return 2
    started = time.perf_counter()
    dtype = torch.float32 if args.tiny else torch.bfloat16
    model, frames, what = build(args.tiny, device, dtype)
    gpu = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    rows = inference_rows(model, frames, device, args.steps)
    if not args.no_training:
        rows += training_rows(model, frames, device, args.tiny)
    width = max(len(r[0]) for r in rows)
    print(
        f"{what}, {len(frames)} frames at {frames.shape[2]}x{frames.shape[1]}, {dtype} on {gpu} "
        f"(torch {torch.__version__}; {time.perf_counter() - started:.0f} s in all)"
    )
    print(f"{'what':<{width}}  {'time':>10}  {'peak GPU':>13}")
    for name, seconds, peak in rows:
        print(f"{name:<{width}}  {seconds:>10}  {peak:>13}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
