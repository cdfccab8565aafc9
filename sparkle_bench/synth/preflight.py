"""What a run checks before Ray starts, so a config that cannot work stops in seconds with one line
per cause instead of tracebacks from every worker: each model the stages will load is a local folder
or in the Hugging Face cache (else the hub must answer), and each stage's models fit its GPUs."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable

from .config import ConfigError, SynthConfig
from .memory import MemoryPlanError, known_sizes, served, stage_placement
from .steps import stage_roles

HUB_TIMEOUT_S = 5.0


def stage_gpus(cfg: SynthConfig, number: int) -> float:
    table = cfg.stage(number)
    return float(table["check_num_gpus"] if number == 1 else table["num_gpus"])


def needed_models(cfg: SynthConfig, stages: Iterable[int]) -> dict[str, str]:
    """Hub id or path -> the first ``models.x.key`` naming it, for every locally loaded model of the stages
    (dotted, not ``[models.x]``: the console would take brackets for markup)."""
    needed: dict[str, str] = {}
    for number in stages:
        for role in stage_roles(cfg, number):
            spec = cfg.role(number, role)
            if served(role, spec):
                continue
            name = cfg.stage(number).get(role, role)
            keys = {
                "scorer": ("model", "lora"),
                "renderer": ("model", "parts") if spec.get("kind") == "fun_control" else ("model",),
            }
            for key in keys.get(role, ("model",)):
                if spec.get(key):
                    needed.setdefault(spec[key], f"models.{name}.{key}")
    return needed


def _missing(model: str) -> str | None:
    """Why a model cannot be loaded here, or None when it can (on disk, cached, or the hub answers)."""
    from huggingface_hub import constants, model_info

    from ..models.hub import HubRepo
    from ..models.weights import cached_snapshot

    if Path(model).exists():
        return None
    if model.startswith(("/", "./", "../")) or model.count("/") != 1:
        return "no such folder"
    if cached_snapshot(HubRepo(model)) is not None:
        return None
    if constants.HF_HUB_OFFLINE:
        return "not in the Hugging Face cache (HF_HUB_OFFLINE is set)"
    try:
        model_info(model, timeout=HUB_TIMEOUT_S)
        return None  # it downloads when a worker loads it
    except Exception as exc:  # no network, unknown repository, gated without a token
        return f"not in the Hugging Face cache and the hub does not serve it ({type(exc).__name__})"


def missing_models(cfg: SynthConfig, stages: Iterable[int]) -> list[str]:
    needed = needed_models(cfg, stages)
    with ThreadPoolExecutor(max_workers=8) as pool:
        causes = dict(zip(needed, pool.map(_missing, needed)))
    return [f"missing model: {needed[model]} = {model!r}: {cause}" for model, cause in causes.items() if cause]


def check_run(cfg: SynthConfig, stages: Iterable[int]) -> None:
    """Raises ConfigError with one line per missing model and per stage whose models do not fit its GPUs."""
    stages = list(stages)
    lines = missing_models(cfg, stages)
    known = known_sizes()
    for number in stages:
        try:
            stage_placement(cfg, number, stage_roles(cfg, number), stage_gpus(cfg, number), known)
        except MemoryPlanError as exc:
            lines.append(str(exc))
    if lines:
        raise ConfigError("\n".join(lines))
