"""Model adapters, looked up lazily by name (listing them imports no torch)."""

from __future__ import annotations

from ..registry import Registry
from .base import AdapterError, EditedVideo, ModelAdapter, WeightsError

MODELS = Registry(
    "model",
    {
        "precomputed": "sparkle_bench.models.precomputed:Precomputed",
        "identity": "sparkle_bench.models.baselines:Identity",
        "still-composite": "sparkle_bench.models.baselines:StillComposite",
        "reference": "sparkle_bench.models.baselines:Reference",
        "shortcut-pan": "sparkle_bench.models.shortcuts:Pan",
        "shortcut-zoom": "sparkle_bench.models.shortcuts:Zoom",
        "shortcut-shake": "sparkle_bench.models.shortcuts:Shake",
        "shortcut-noise": "sparkle_bench.models.shortcuts:Noise",
        "kiwi-edit": "sparkle_bench.models.kiwi.adapter:KiwiEdit",
        "kiwi-sparkle": "sparkle_bench.models.kiwi.adapter:KiwiSparkle",
        "command": "sparkle_bench.models.command:Command",
        "lucy-edit": "sparkle_bench.models.diffusion:LucyEdit",
        "vace": "sparkle_bench.models.diffusion:WanVace",
    },
)


def load_model(spec: str, options: dict[str, str] | None = None) -> ModelAdapter:
    """``name``, ``name:ARG`` (e.g. ``precomputed:DIR``) or ``package.module:Class``, configured
    with ``options`` (``--model-option KEY=VALUE``)."""
    name, _, arg = spec.partition(":")
    adapter = MODELS.load(name)(arg or None) if name in MODELS.names() else MODELS.load(spec)()
    adapter.configure(dict(options or {}))
    return adapter


__all__ = ["MODELS", "AdapterError", "EditedVideo", "ModelAdapter", "WeightsError", "load_model"]
