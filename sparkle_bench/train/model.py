"""The model side of training: which parts learn (the stage-2 recipe by default), the flow-matching
loss of one sample, and the checkpoint the trainer exports.

Loss: a timestep drawn uniformly from the 1000 training steps (within the configured boundaries),
sigma shifted by 5, ``x_t = (1 - sigma) x0 + sigma * noise``, target velocity ``noise - x0``, fp32 MSE
times the schedule's Gaussian-bump weight. Draws come from a generator the loop seeds per step, so
a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.kiwi.checkpoints import diffsynth_state, lora_layers, plain_state
from ..models.kiwi.pipeline import KiwiModel
from ..models.kiwi.sampler import TRAIN_STEPS, FlowSchedule
from .config import TrainConfig

QWEN_LM = "model.language_model"  # the Qwen language model inside Qwen2_5_VLForConditionalGeneration


@dataclass(frozen=True)
class Start:
    """How training began: Qwen LoRA pairs relative to the base Qwen (a DiffSynth start), or None
    when the start's Qwen already has a LoRA merged in (a released folder)."""

    qwen_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] | None


def _inject(module: nn.Module, rank: int, targets: list[str]) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets), module)


def make_trainable(model: KiwiModel, config: TrainConfig, start: Start) -> list[str]:
    """Freeze everything, then open the configured parts; returns the trainable parameter names."""
    model.requires_grad_(False)
    transformer = model.transformer
    if config.dit == "full":
        transformer.requires_grad_(True)
    elif config.dit == "lora":
        _inject(transformer, config.dit_lora_rank, config.dit_lora_targets)
    encoder = model.encoder
    if config.qwen_lora_rank:
        pairs = start.qwen_lora or {}
        rank = next(iter(pairs.values()))[0].shape[0] if pairs else config.qwen_lora_rank
        language = encoder.qwen.get_submodule(QWEN_LM)
        _inject(language, rank, config.qwen_lora_targets)
        layers = lora_layers(language, f"{QWEN_LM}.")
        unknown = sorted(set(pairs) - set(layers))
        if unknown:
            raise ValueError(f"the start checkpoint has Qwen LoRA on modules training does not adapt: {unknown[:5]}")
        with torch.no_grad():
            for target, (down, up) in pairs.items():
                layers[target][0].copy_(down)
                layers[target][1].copy_(up)
    if config.queries:
        encoder.image_queries.requires_grad_(True)
        encoder.video_queries.requires_grad_(True)
    if config.connector:
        encoder.connector.requires_grad_(True)
    if config.source_embedder:
        model.denoiser.source_embedder.requires_grad_(True)
    if config.gradient_checkpointing:
        model.denoiser.gradient_checkpointing = True
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError("nothing to train: every part is frozen")
    return names


class FlowMatchingObjective(nn.Module):
    """Wraps the Kiwi model for the distributed engine; ``forward`` is one sample's weighted loss."""

    def __init__(self, model: KiwiModel, min_timestep: float = 0.0, max_timestep: float = 1.0):
        super().__init__()
        self.kiwi = model
        self.schedule = FlowSchedule.make(TRAIN_STEPS)
        self.weights = self.schedule.training_weights()
        self.bounds = (int(min_timestep * TRAIN_STEPS), int(max_timestep * TRAIN_STEPS))

    def forward(self, sample: dict, draw: torch.Generator, source: torch.Tensor | None = None,
                target: torch.Tensor | None = None, context: torch.Tensor | None = None) -> torch.Tensor:
        """``source``/``target`` latents and the ``context`` may come precomputed (the cache)."""
        kiwi = self.kiwi
        if context is None:
            context = kiwi.encoder(sample["prompt"], sample["source"])
        if source is None or target is None:
            with torch.no_grad():
                source, target = kiwi.encode(sample["source"]), kiwi.encode(sample["target"])
        clean = target
        index = int(torch.randint(*self.bounds, (1,), generator=draw))
        timestep = self.schedule.timesteps[index : index + 1].to(clean.device)
        sigma = self.schedule.sigma(timestep).to(clean.device)
        noise = torch.randn(clean.shape, generator=draw, dtype=torch.float32).to(clean.device, clean.dtype)
        noisy = (1 - sigma) * clean + sigma * noise
        prediction = kiwi.denoiser(noisy, timestep.to(clean.dtype), sigma, context.to(clean.dtype), source)
        loss = F.mse_loss(prediction.float(), (noise - clean).float())
        return loss * self.weights[self.schedule.index(timestep)].to(loss.device)


def export_state(model: KiwiModel, config: TrainConfig, start: Start) -> dict[str, torch.Tensor]:
    """The checkpoint a run writes: DiffSynth layout (as the releases), so our loader and upstream's
    tools both read it on the Wan2.2 base and Qwen2.5-VL. The DiT is always exported in full (merged
    with any LoRA); the Qwen projections as LoRA pairs relative to the base Qwen when training
    started from such pairs, else in full (the start's Qwen already had a LoRA merged in)."""
    qwen_lora = qwen_weights = None
    if config.qwen_lora_rank:
        layers = lora_layers(model.encoder.qwen.get_submodule(QWEN_LM), f"{QWEN_LM}.")
        if start.qwen_lora is not None:
            qwen_lora = layers
        else:
            plain = plain_state(model.encoder.qwen)
            qwen_weights = {f"{target}.weight": plain[f"{target}.weight"] for target in layers}
    return diffsynth_state(model, reference=model.has_reference, qwen_lora=qwen_lora, qwen_weights=qwen_weights)
