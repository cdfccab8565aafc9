"""What one device must hold to train, estimated before anything moves to it, so a run that cannot
fit stops at once with the figures instead of failing with out-of-memory an hour later.

Per device, for the engine and process count in use:

- weights: frozen parts as loaded (bf16 with ``weights = "bf16"``) plus the trainable parameters in
  fp32 (their masters); FSDP2 shards both; DeepSpeed holds every weight in bf16.
- gradients: fp32 per trainable parameter (plus DDP's communication buckets, another copy); FSDP2
  keeps a 1/N shard; ZeRO-2 a 1/N shard of bf16 gradients plus its reduce bucket.
- optimizer: AdamW's two fp32 moments and the one fp32 temporary its step makes (FSDP2: 1/N);
  ZeRO-2 adds the fp32 masters and shards all three, in host memory with ``offload_optimizer``.
- activations: the DiT at the configured frames and pixel budget (with gradient checkpointing one
  block's intermediates plus each block's input), the Qwen language model over its video tokens
  when gradients flow through it, or the VAE's encoding peak (none when latents come from the
  cache), whichever is larger.

The activation terms are coefficient models (elements kept per token and layer, counted from the
blocks' saved tensors), checked against measured peaks of tiny and mid-size models on CPU
(``tests/test_train_memory.py``, ``benchmarks/train_speed.py``); the VAE's coefficient is the CPU
measurement (its conv3d buffers) and overstates a GPU.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

GB = 2**30
DIT_KEPT = (14, 3)  # elements per token kept by one DiT block: x dim, x ffn_dim
QWEN_KEPT = (8, 4)  # ... by one Qwen decoder layer: x hidden, x intermediate
VAE_KEPT = 16  # elements per pixel, frame of a 4-frame chunk and unit of the VAE's base width (CPU-measured)
ZERO_BUCKET = 5e8  # DeepSpeed's default reduce bucket (elements)
QWEN_FRAMES, QWEN_PATCH = 16, 28  # frames the encoder sees; pixels per token side (after 2x2 merge: 28)


class DoesNotFit(ValueError):
    """The estimate exceeds the device: the run stops before loading anything onto it."""


@dataclass
class MemoryEstimate:
    engine: str
    processes: int
    weights: float
    gradients: float
    optimizer: float
    activations: float
    host_optimizer: float = 0.0

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations

    def line(self) -> str:
        host = (
            f"; optimizer state in host memory {self.host_optimizer / GB:.1f} GB per process"
            if self.host_optimizer
            else ""
        )
        return (
            f"memory per device ({self.engine} on {self.processes} process{'es' if self.processes > 1 else ''}): "
            f"~{self.total / GB:.1f} GB = weights {self.weights / GB:.1f} + gradients {self.gradients / GB:.1f} "
            f"+ optimizer {self.optimizer / GB:.1f} + activations {self.activations / GB:.1f}{host}"
        )


def _sizes(model) -> tuple[int, float, float]:
    """(trainable elements, frozen bytes as held, largest block's bytes)."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() * p.element_size() for p in model.parameters() if not p.requires_grad)
    blocks = [sum(p.numel() * p.element_size() for p in b.parameters()) for b in model.transformer.blocks]
    return trainable, frozen, max(blocks, default=0)


def activation_bytes(model, config) -> float:
    """Peak activation memory of one sample at the configured size (see the module docstring)."""
    act = 2 if config.mixed_precision in ("bf16", "fp16") else 4
    dit = model.transformer.config
    dim, ffn, layers = dit.num_attention_heads * dit.attention_head_dim, dit.ffn_dim, dit.num_layers
    latent_frames = (config.num_frames - 1) // 4 + 1
    spatial = model.vae.config.scale_factor_spatial
    pt, ph, pw = dit.patch_size
    tokens = latent_frames / pt * config.pixel_budget / (spatial * ph * spatial * pw)
    block = tokens * (DIT_KEPT[0] * dim + DIT_KEPT[1] * ffn) * act
    dit_peak = layers * tokens * dim * act + block if config.gradient_checkpointing else layers * block
    qwen_peak = 0.0
    if config.qwen_lora_rank or config.queries or config.connector:
        text = model.encoder.qwen.config.text_config
        cap = config.qwen_max_pixels or 768 * QWEN_PATCH**2
        frame_tokens = min(cap, config.pixel_budget) / QWEN_PATCH**2
        seen = min(QWEN_FRAMES, config.num_frames)
        qwen_tokens = math.ceil(seen / 2) * frame_tokens + model.encoder.config.num_video_queries + 128
        qwen_peak = (
            text.num_hidden_layers
            * qwen_tokens
            * (QWEN_KEPT[0] * text.hidden_size + QWEN_KEPT[1] * text.intermediate_size)
            * act
        )
    vae = model.vae.config
    vae_peak = 0 if config.cache_dir else VAE_KEPT * 4 * config.pixel_budget * vae.base_dim * act
    return max(dit_peak + qwen_peak, vae_peak)


def estimate(model, config, processes: int) -> MemoryEstimate:
    """The per-device estimate for ``config.engine`` on ``processes`` processes (model as loaded,
    trainable parts already opened)."""
    trainable, frozen, block = _sizes(model)
    activations = activation_bytes(model, config) * config.batch_size
    n = max(1, processes)
    if config.engine == "fsdp2":
        return MemoryEstimate(
            "fsdp2", n, (frozen + 4 * trainable) / n + 2 * block, 4 * trainable / n, 12 * trainable / n, activations
        )
    if config.engine == "deepspeed":
        frozen_elements = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        states = 12 * trainable / n
        on_device = 0.0 if config.offload_optimizer else states
        return MemoryEstimate(
            "deepspeed ZeRO-2",
            n,
            2 * (frozen_elements + trainable),
            2 * trainable / n + 2 * min(trainable, ZERO_BUCKET),
            on_device,
            activations,
            states if config.offload_optimizer else 0.0,
        )
    buckets = 4 * trainable if n > 1 else 0
    return MemoryEstimate("ddp", n, frozen + 4 * trainable, 4 * trainable + buckets, 12 * trainable, activations)


def device_capacity(config) -> float | None:
    """Bytes one device offers: ``gpu_memory`` when set, else the GPU's own; None on a CPU."""
    if config.gpu_memory:
        return config.gpu_memory * GB
    import torch

    if torch.cuda.is_available():
        return float(torch.cuda.get_device_properties(torch.cuda.current_device()).total_memory)
    return None


def check_fit(found: MemoryEstimate, capacity: float | None) -> None:
    """Refuse in one line when the estimate exceeds the device (5% kept for the runtime)."""
    if capacity is not None and found.total > 0.95 * capacity:
        raise DoesNotFit(
            f"training cannot fit: {found.line()}, the device has {capacity / GB:.0f} GB; use "
            f'engine = "fsdp2" or "deepspeed", more processes, gradient_checkpointing, '
            f"or a smaller num_frames / pixel_budget (gpu_memory = GB overrides the detected size)"
        )


def rss_peak_during(work) -> tuple[float, float]:
    """(resident bytes before, peak resident bytes while ``work()`` runs), sampled every millisecond
    from /proc (Linux): how the estimate is checked against a CPU run."""
    import threading
    import time

    page = os.sysconf("SC_PAGE_SIZE")

    def resident() -> float:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * page

    before, peak, done = resident(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], resident())
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        work()
    finally:
        done.set()
        thread.join()
    return before, max(peak[0], resident())
