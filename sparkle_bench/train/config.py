"""Training settings: one flat dataclass, read from a TOML file (sections are only for the reader)
and overridable by a flag per field (``--lr 2e-5``, ``--no-gradient-checkpointing``).

The defaults are Kiwi-Edit's stage-2 recipe, which is how Kiwi-Sparkle was made from Kiwi-Edit.
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


@dataclass
class TrainConfig:
    # model: where training starts (a Kiwi-Edit stage checkpoint or Kiwi-Sparkle, any format the Kiwi loader reads)
    start: str = "kiwi-edit"
    base: str | None = None  # a DiffSynth start's Wan2.2-TI2V-5B diffusers base (default: its kiwi.json, else the release)
    mllm: str | None = None  # ... and Qwen2.5-VL-3B-Instruct
    # data: the Sparkle training layout, prompts/{theme}_train.csv under each root
    roots: list[str] = field(default_factory=lambda: ["data/Sparkle"])
    themes: list[str] = field(default_factory=lambda: list(SPARKLE_THEMES))
    num_frames: int = MAX_FRAMES
    pixel_budget: int = PIXEL_BUDGET
    multiple: int = SIDE_MULTIPLE
    length_mismatch: str = "truncate"  # source/target of different lengths: "truncate" to the shorter, or "skip"
    workers: int = 4  # decoding processes
    cache_dir: str = ""  # VAE latents (and frozen-encoder contexts) cached here, keyed by file hash and settings
    # what trains
    dit: str = "full"  # "full", "lora" (peft) or "frozen"
    dit_lora_rank: int = 32
    dit_lora_targets: list[str] = field(default_factory=lambda: ["to_q", "to_k", "to_v", "to_out.0", "ffn.net.0.proj", "ffn.net.2"])
    qwen_lora_rank: int = 64  # 0: the Qwen language model stays frozen
    qwen_lora_targets: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    queries: bool = True  # image/video queries
    connector: bool = True
    source_embedder: bool = True
    # optimisation
    steps: int = 10000
    batch_size: int = 1  # samples per device per micro-step
    grad_accum: int = 2
    lr: float = 1e-5
    warmup_steps: int = 10  # constant learning rate after a short linear warm-up
    weight_decay: float = 0.01
    max_grad_norm: float = 0.0  # 0: no clipping (the recipe's)
    mixed_precision: str = "bf16"  # "bf16", "fp16" or "no" (CPU runs use "no")
    gradient_checkpointing: bool = True
    min_timestep: float = 0.0  # timestep boundaries, as fractions of the 1000 training steps
    max_timestep: float = 1.0
    seed: int = 0
    # checkpoints, logs, evaluation
    out: str = "runs/train/kiwi-sparkle"
    save_every: int = 500
    keep: int = 3
    log_with: list[str] = field(default_factory=lambda: ["tensorboard"])  # accelerate trackers ("wandb" too)
    eval_every: int = 0  # 0: only at the end (when eval_bench is set)
    eval_bench: str = ""  # e.g. "demo" or a Sparkle-Bench folder; empty: no evaluation
    eval_subset: str = "smoke"
    eval_options: list[str] = field(default_factory=list)  # --model-option KEY=VALUE for the evaluation

    def validate(self) -> None:
        problems = []
        if self.dit not in ("full", "lora", "frozen"):
            problems.append(f"dit must be full, lora or frozen, not {self.dit!r}")
        if self.length_mismatch not in ("truncate", "skip"):
            problems.append(f"length_mismatch must be truncate or skip, not {self.length_mismatch!r}")
        if self.mixed_precision not in ("bf16", "fp16", "no"):
            problems.append(f"mixed_precision must be bf16, fp16 or no, not {self.mixed_precision!r}")
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
            parser.add_argument(flag, dest=name, type=lambda t: [x.strip() for x in t.split(",") if x.strip()], default=None)
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
