"""The model side of training: which parts learn (the stage-2 recipe by default), in which dtype,
the flow-matching loss of one sample, the learning-rate schedule, and the checkpoint exported.

Loss: a timestep drawn uniformly from the 1000 training steps (within the configured boundaries),
sigma shifted by 5, ``x_t = (1 - sigma) x0 + sigma * noise``, target velocity ``noise - x0``, fp32 MSE
times the schedule's Gaussian-bump weight. With ``weights = "bf16"`` the drawn timestep is cast to
bf16 before its sigma and weight are looked up, as upstream does with its bf16 pipeline (294
distinct timesteps). Draws come from a generator seeded per sample (:func:`draw_for`), so a
resumed run draws exactly what an uninterrupted one would.

Public entry points for one training step outside the loop (``benchmarks/gpu_check.py``):
:func:`prepare_training` (trainable model + objective + optimizer from a config) and
:func:`batch_loss` (the mean loss of a batch, as the loop computes it).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..models.kiwi.checkpoints import QWEN_PREFIX, lora_layers
from ..models.kiwi.keymaps import dit_to_diffsynth
from ..models.kiwi.pipeline import KiwiModel
from ..models.kiwi.qwen_inputs import IMAGE_MAX_TOKENS
from ..models.kiwi.sampler import TRAIN_STEPS, FlowSchedule
from .config import TrainConfig

QWEN_LM = "model.language_model"  # the Qwen language model inside Qwen2_5_VLForConditionalGeneration
UNSET_FRAME_CAP = IMAGE_MAX_TOKENS * 56 * 56  # qwen-vl-utils' own limit: what an unset per-frame cap amounts to
CONSTANT_FACTOR, CONSTANT_ITERS = 1 / 3, 5  # torch's ConstantLR defaults, as upstream constructs it


@dataclass(frozen=True)
class Start:
    """How training began: Qwen LoRA pairs relative to the base Qwen (a DiffSynth start), or None
    when the start's Qwen already has a LoRA merged in (a released folder)."""

    qwen_lora: dict[str, tuple[torch.Tensor, torch.Tensor]] | None


@dataclass
class Training:
    objective: "FlowMatchingObjective"
    optimizer: torch.optim.Optimizer
    trainable: list[str]


def _inject(module: nn.Module, rank: int, targets: list[str]) -> None:
    from peft import LoraConfig, inject_adapter_in_model

    inject_adapter_in_model(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets), module)


def make_trainable(model: KiwiModel, config: TrainConfig, start: Start) -> list[str]:
    """Freeze everything, then open the configured parts; returns the trainable parameter names.
    With ``weights = "bf16"`` the trainable parameters are held in fp32 (the optimizer's masters;
    DeepSpeed keeps its own) and everything else stays in the dtype it was loaded in."""
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
    use_frame_cap(model, config.qwen_max_pixels or UNSET_FRAME_CAP)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    if not names:
        raise ValueError("nothing to train: every part is frozen")
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data.float()
    return names


def use_frame_cap(model: KiwiModel, pixels: int) -> int:
    """Set the Qwen per-frame pixel cap; returns the one it replaces."""
    previous = model.encoder.config.max_pixels_per_frame
    model.encoder.config = dataclasses.replace(model.encoder.config, max_pixels_per_frame=pixels)
    return previous


def timestep_dtype(config: TrainConfig) -> torch.dtype:
    return torch.bfloat16 if config.weights == "bf16" else torch.float32


class FlowMatchingObjective(nn.Module):
    """Wraps the Kiwi model for the distributed engine; ``forward`` is one sample's weighted loss."""

    def __init__(
        self,
        model: KiwiModel,
        min_timestep: float = 0.0,
        max_timestep: float = 1.0,
        timestep_dtype: torch.dtype = torch.float32,
    ):
        super().__init__()
        self.kiwi = model
        self.schedule = FlowSchedule.make(TRAIN_STEPS)
        self.weights = self.schedule.training_weights()
        self.bounds = (int(min_timestep * TRAIN_STEPS), int(max_timestep * TRAIN_STEPS))
        self.timestep_dtype = timestep_dtype

    def forward(
        self,
        sample: dict,
        draw: torch.Generator,
        source: torch.Tensor | None = None,
        target: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """``source``/``target`` latents and the ``context`` may come precomputed (the cache)."""
        kiwi = self.kiwi
        if context is None:
            context = kiwi.encoder(sample["prompt"], sample["source"])
        if source is None or target is None:
            with torch.no_grad():
                source, target = kiwi.encode(sample["source"]), kiwi.encode(sample["target"])
        clean = target
        index = int(torch.randint(*self.bounds, (1,), generator=draw))
        timestep = self.schedule.timesteps[index : index + 1].to(
            self.timestep_dtype
        )  # upstream: cast first, then look up
        position = self.schedule.index(timestep)
        sigma = self.schedule.sigmas[position].to(clean.device)
        noise = torch.randn(clean.shape, generator=draw, dtype=torch.float32).to(clean.device, clean.dtype)
        noisy = (1 - sigma) * clean + sigma * noise
        prediction = kiwi.denoiser(noisy, timestep.to(clean.device), sigma, context.to(clean.dtype), source)
        loss = F.mse_loss(prediction.float(), (noise - clean).float())
        return loss * self.weights[position].to(loss.device)


def draw_for(seed: int, step: int, slot: int, rank: int) -> torch.Generator:
    """The generator of one sample: optimizer step, its slot in the step (micro-step x batch), rank."""
    return torch.Generator().manual_seed(seed * 1_000_003 + step * 10_007 + slot * 101 + rank)


def batch_loss(
    objective: nn.Module,
    samples: list[dict],
    config: TrainConfig,
    step: int,
    micro: int,
    rank: int = 0,
    inputs: list[dict] | None = None,
) -> torch.Tensor:
    """Mean loss of one micro-batch (``inputs``: precomputed latents/contexts per sample, or None)."""
    losses = [
        objective(
            sample, draw_for(config.seed, step, micro * config.batch_size + i, rank), **(inputs[i] if inputs else {})
        )
        for i, sample in enumerate(samples)
    ]
    return torch.stack(losses).mean()


def lr_factor(config: TrainConfig, num_processes: int):
    """The multiplier of ``lr`` before optimizer step ``k + 1`` (k counted from 0).

    "constant" is upstream's ``ConstantLR(optimizer)`` (factor 1/3 until 5 scheduler steps) as
    accelerate steps it: ``num_processes`` scheduler steps per optimizer step, so on 8 GPUs only the
    first optimizer step runs at lr/3. "warmup" is a linear warm-up over ``warmup_steps``."""
    if config.lr_schedule == "warmup":
        warmup = max(1, config.warmup_steps)
        return lambda k: min(1.0, (k + 1) / warmup)
    return lambda k: CONSTANT_FACTOR if k * num_processes < CONSTANT_ITERS else 1.0


def prepare_training(config: TrainConfig, model: KiwiModel, start: Start = Start(qwen_lora=None)) -> Training:
    """The configured parts made trainable, the objective around the model and AdamW over the
    trainable parameters (upstream's optimizer: lr, weight decay 0.01, torch defaults otherwise)."""
    trainable = make_trainable(model, config, start)
    objective = FlowMatchingObjective(model, config.min_timestep, config.max_timestep, timestep_dtype(config))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return Training(objective, optimizer, trainable)


def export_trainable(state: dict[str, torch.Tensor], has_reference: bool = False) -> dict[str, torch.Tensor]:
    """Trainable parameters (KiwiModel names) -> the DiffSynth layout of the releases, in bf16.

    Only what trains is written, as upstream's ``export_trainable_state_dict`` does: the DiT (full
    weights, or its LoRA pairs), the queries, the connector (its spelling, ``connetor``), the source
    embedder and the Qwen LoRA pairs (``mllm.model.<target>.lora_A/B.default.weight``, which
    upstream's converter merges into the base Qwen). Raises on a name with no DiffSynth place."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for name, value in state.items():
        key = None
        if name.startswith("denoiser.transformer."):
            rest = name[len("denoiser.transformer.") :]
            if ".lora_" in rest:
                module, lora = rest.split(".lora_", 1)
                mapped = dit_to_diffsynth(module)
                key = mapped and f"dit.{mapped}.lora_{lora}"
            else:
                mapped = dit_to_diffsynth(rest.replace(".base_layer.", "."))
                key = mapped and f"dit.{mapped}"
        elif name.startswith("encoder.qwen."):
            key = QWEN_PREFIX + name[len("encoder.qwen.") :]
        elif name in ("encoder.image_queries", "encoder.video_queries") or (
            has_reference and name == "encoder.ref_queries"
        ):
            key = f"mllm.{name[len('encoder.') :]}.q"
        elif name.startswith("encoder.connector."):
            key = "mllm.connetor." + name[len("encoder.connector.") :]
        elif name.startswith("encoder.ref_connector."):
            key = "mllm." + name[len("encoder.") :]
        elif name.startswith("denoiser.source_embedder."):
            key = "vae_condition." + name[len("denoiser.source_embedder.") :]
        elif name.startswith("denoiser.ref_embedder."):
            key = "ref_vae_condition." + name[len("denoiser.ref_embedder.") :]
        if key is None:
            unknown.append(name)
        else:
            out[key] = value.detach().to("cpu", torch.bfloat16).contiguous()
    if unknown:
        raise ValueError(f"no DiffSynth name for trainable parameter(s): {', '.join(unknown[:5])}")
    return out
