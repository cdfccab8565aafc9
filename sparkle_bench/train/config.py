"""Training settings: one flat dataclass, read from a TOML file (sections are only for the reader)
and overridable by a flag per field (``--lr 2e-5``, ``--no-gradient-checkpointing``).

The defaults are Kiwi-Edit's stage-2 recipe as its DiffSynth script runs it (Kiwi-Sparkle is that
script on the Sparkle pairs, started from the stage-2 checkpoint); every place where we could do
otherwise is a setting whose default is upstream's (README: "Training", the recipe table).
"""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ..models.kiwi.frames import MAX_FRAMES, PIXEL_BUDGET, SIDE_MULTIPLE

SPARKLE_THEMES = ["location", "season", "time", "style", "openve3m"]
STAGE2 = "linyq/wan2.2_ti2v_5b_qwen25vl_3b_stage2_img_vid_720x1280_81f"  # Kiwi-Edit stage 2 (DiffSynth)
ENGINES = ("ddp", "fsdp2", "deepspeed")


@dataclass
class TrainConfig:
    # model: where training starts (a Kiwi-Edit stage checkpoint or Kiwi-Sparkle, any format the Kiwi loader reads);
    # a DiffSynth checkpoint's own Qwen LoRA is continued (upstream's --checkpoint), a folder gets a fresh one
    start: str = STAGE2
    # a DiffSynth start's Wan2.2-TI2V-5B diffusers base (default: its kiwi.json, else the release)
    base: str | None = None
    mllm: str | None = None  # ... and Qwen2.5-VL-3B-Instruct
    # data: the Sparkle training layout, prompts/{theme}_train.csv under each root
    roots: list[str] = field(default_factory=lambda: ["data/Sparkle"])
    themes: list[str] = field(default_factory=lambda: list(SPARKLE_THEMES))
    num_frames: int = MAX_FRAMES
    pixel_budget: int = PIXEL_BUDGET
    multiple: int = SIDE_MULTIPLE
    length_mismatch: str = "truncate"  # source/target of different lengths: "truncate" to the shorter, or "skip"
    # upstream: bilinear resize to cover, then centre crop; "crop-resize": the eval protocol's
    resize: str = "resize-crop"
    qwen_max_pixels: int = 0  # Qwen's per-frame pixel cap; 0: unset, as upstream training (262144: our inference's)
    workers: int = 4  # decoding processes
    cache_dir: str = ""  # VAE latents (and frozen-encoder contexts) cached here, keyed by file hash and settings
    # what trains
    dit: str = "full"  # "full", "lora" (peft) or "frozen"
    dit_lora_rank: int = 32
    dit_lora_targets: list[str] = field(
        default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"]
    )
    qwen_lora_rank: int = 64  # 0: the Qwen language model stays frozen
    qwen_lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    queries: bool = True  # image/video queries
    connector: bool = True
    source_embedder: bool = True
    # optimisation
    steps: int = 10000  # optimizer steps (each: grad_accum micro-steps of batch_size samples on every process)
    batch_size: int = 1  # samples per process per micro-step
    grad_accum: int = 2
    lr: float = 1e-5
    lr_schedule: str = "constant"  # upstream's ConstantLR (lr/3 for 5 scheduler steps), or "warmup" (linear)
    warmup_steps: int = 10  # "warmup" only: optimizer steps of linear warm-up
    weight_decay: float = 0.01
    max_grad_norm: float = 1.0  # upstream: DeepSpeed's "auto" clipping as accelerate fills it; 0: none
    # upstream: bf16 weights (trainable ones keep fp32 masters), timestep cast to bf16 first; or "fp32"
    weights: str = "bf16"
    mixed_precision: str = "bf16"  # "bf16", "fp16" or "no" (CPU runs with fp32 weights use "no")
    gradient_checkpointing: bool = True
    min_timestep: float = 0.0  # timestep boundaries, as fractions of the 1000 training steps
    max_timestep: float = 1.0
    seed: int = 0
    # memory: how the state is spread over processes, and what a device holds
    engine: str = "ddp"  # "ddp" (one process or data parallel), "fsdp2" (torch FSDP2), "deepspeed" (ZeRO-2, upstream's)
    offload_optimizer: bool = True  # deepspeed: optimizer state in CPU memory (upstream's setting)
    gpu_memory: float = 0.0  # GB per device for the fit check; 0: the device's own (no check on a CPU)
    fsdp_wrap: list[str] = field(
        default_factory=lambda: ["WanTransformerBlock", "Qwen2_5_VLDecoderLayer"]
    )  # shard units
    # checkpoints, logs, evaluation
    out: str = "runs/train/kiwi-sparkle"
    save_every: int = 500
    keep: int = 3
    log_with: list[str] = field(default_factory=lambda: ["tensorboard"])  # accelerate trackers ("wandb" too)
    eval_every: int = 0  # 0: only at the end (when eval_bench is set)
    eval_bench: str = ""  # e.g. "demo" or a Sparkle-Bench folder; empty: no evaluation
    eval_subset: str = "smoke"
    eval_options: list[str] = field(default_factory=list)  # --model-option KEY=VALUE for the evaluation

    @property
    def encoder_frozen(self) -> bool:
        """Nothing in the condition encoder trains: its contexts can be computed once (the cache)."""
        return not (self.qwen_lora_rank or self.queries or self.connector)

    def cache_settings(self) -> tuple:
        """What shapes a cache entry besides the files: decoding, and the weights that encode."""
        context = (self.mllm, self.qwen_max_pixels) if self.encoder_frozen else ()
        return (
            self.start,
            self.base,
            self.num_frames,
            self.pixel_budget,
            self.multiple,
            self.resize,
            self.length_mismatch,
            self.weights,
            *context,
        )

    def validate(self) -> None:
        problems = []
        if self.dit not in ("full", "lora", "frozen"):
            problems.append(f"dit must be full, lora or frozen, not {self.dit!r}")
        if self.length_mismatch not in ("truncate", "skip"):
            problems.append(f"length_mismatch must be truncate or skip, not {self.length_mismatch!r}")
        if self.mixed_precision not in ("bf16", "fp16", "no"):
            problems.append(f"mixed_precision must be bf16, fp16 or no, not {self.mixed_precision!r}")
        choices = {
            "resize": ("resize-crop", "crop-resize"),
            "lr_schedule": ("constant", "warmup"),
            "weights": ("bf16", "fp32"),
            "engine": ENGINES,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}")
        if self.engine == "fsdp2" and self.eval_bench:
            problems.append(
                "the evaluation hook generates in one process, which sharded (fsdp2) weights cannot do: "
                "evaluate the exported checkpoints with sparkle-bench eval instead"
            )
        if self.weights == "bf16" and self.mixed_precision != "bf16":
            problems.append('weights = "bf16" computes in bf16: it needs mixed_precision = "bf16"')
        if not 0 <= self.min_timestep < self.max_timestep <= 1:
            problems.append("need 0 <= min_timestep < max_timestep <= 1")
        for name in ("steps", "batch_size", "grad_accum", "save_every", "keep"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1")
        if problems:
            raise ValueError("training config: " + "; ".join(problems))


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def load_config(path: Path | None, overrides: dict) -> TrainConfig:
    """The config file (sections flattened) with flag ``overrides`` on top; unknown keys refused."""
    values: dict = {}
    if path is not None:
        for key, value in tomllib.loads(Path(path).read_text()).items():
            values.update(value if isinstance(value, dict) else {key: value})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValueError(f"{path}: unknown setting(s) {', '.join(unknown)}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = TrainConfig(**values)
    config.validate()
    return config


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per field (lists comma-separated, booleans as --x / --no-x); default None = not given."""
    hints = typing.get_type_hints(TrainConfig)
    for name in FIELDS:
        kind, flag = hints[name], "--" + name.replace("_", "-")
        if typing.get_origin(kind) in (typing.Union, types.UnionType):  # optional: the type it holds
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        if kind is bool:
            parser.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None)
        elif typing.get_origin(kind) is list:
            parser.add_argument(
                flag, dest=name, type=lambda t: [x.strip() for x in t.split(",") if x.strip()], default=None
            )
        else:
            parser.add_argument(flag, dest=name, type=kind, default=None)


def to_toml(config: TrainConfig) -> str:
    """The resolved config as TOML (what a run folder records)."""

    def value(v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        return repr(v)

    return "".join(f"{k} = {value(v)}\n" for k, v in dataclasses.asdict(config).items())
