"""The models a stage uses, by role, loaded once per worker: ``load_roles(cfg, 2, "vlm", "editor")``."""

from __future__ import annotations

from types import SimpleNamespace

from .config import SynthConfig


def load_propagator(spec: dict, device: str):
    """SAM3's tracker (transformers) or SAM2 (the sam2 package): the ``maskgen`` propagators."""
    from ..maskgen.propagate import Sam2Propagator, Sam3TrackerPropagator, load_sam2_video_predictor

    if spec["kind"] == "sam3":
        return Sam3TrackerPropagator(spec["model"], device)
    if spec["kind"] == "sam2":
        return Sam2Propagator(load_sam2_video_predictor(spec["model"], spec.get("config") or None, device))
    raise ValueError(f"[models] segmenter kind {spec['kind']!r}: use 'sam3' or 'sam2'")


def role_devices(cfg: SynthConfig, stage: int, roles: tuple[str, ...], device: str) -> dict[str, str]:
    """Each role's device: on CUDA with ``[ray] gpu_memory_gb`` set, the GPU the memory plan gives it
    (``cuda:k`` among the actor's GPUs); else the one device for all."""
    from .memory import stage_placement

    if not device.startswith("cuda"):
        return {role: device for role in roles}
    table = cfg.stage(stage)
    gpus = float(table["check_num_gpus"] if stage == 1 else table["num_gpus"])
    planned = {p.role: f"cuda:{p.gpu}" for p in stage_placement(cfg, stage, list(roles), gpus)}
    return {role: planned.get(role, device) for role in roles}


def load_roles(cfg: SynthConfig, stage: int, *roles: str) -> SimpleNamespace:
    from ..placement import placement
    from .generators import Animator, Editor, Renderer
    from .scorer import EditScorer
    from .vlm import VLM

    device, _ = placement(cfg.settings["device"])
    devices = role_devices(cfg, stage, roles, device)
    build = {
        "vlm": VLM,
        "editor": Editor,
        "animator": Animator,
        "renderer": Renderer,
        "segmenter": load_propagator,
        "scorer": lambda spec, device: EditScorer(spec, device, cfg.settings["seed"]),
    }
    return SimpleNamespace(**{role: build[role](cfg.role(stage, role), devices[role]) for role in roles})
