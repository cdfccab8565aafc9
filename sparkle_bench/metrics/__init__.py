"""Metrics, looked up by name; each has a card in the repository's ``metrics/`` folder.

A built-in metric is one module of this package: its class declares its name, direction, header,
order and the gate's tolerance (:class:`Metric`), and the registry finds it on first use. A metric
from elsewhere is ``package.module:Class``; a run records every metric's ``module:Class`` in its
provenance (:func:`remember`), so tables, reports and the gate find its declarations in any process.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from ..registry import Registry
from .base import Metric, MetricUnavailable


def _builtin() -> dict[str, str]:
    """Every concrete :class:`Metric` defined in a module of this package, by its name."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Metric) and cls.__module__ == module.__name__ and not inspect.isabstract(cls):
                found[cls.name] = f"{module.__name__}:{cls.__qualname__}"
    return found


METRICS = Registry("metric", {}, discover=_builtin)

# Objective metrics that need no weights: what `eval` computes unless told otherwise.
DEFAULT_METRICS = (
    "fg_psnr",
    "fg_ssim",
    "fg_motion",
    "bg_change",
    "bg_dynamics",
    "bg_camera",
    "bg_static",
    "bg_flicker",
)


def load_metrics(names: list[str] | tuple[str, ...]) -> list[Metric]:
    return [METRICS.load(name)() for name in names]


def spec_of(metric: Metric) -> str:
    """``module:Class`` of a metric instance: what a run records to find its class again."""
    return f"{type(metric).__module__}:{type(metric).__qualname__}"


def remember(specs: dict[str, str]) -> None:
    """Make metrics a run recorded (name -> ``module:Class``) known by name in this process."""
    for name, spec in specs.items():
        METRICS.add(name, spec)


def declared(column: str) -> type[Metric] | None:
    """The metric class behind a score column; None for other columns (counts, judge dimensions)
    and for a metric whose module cannot be imported here (then shown by its name, never gated)."""
    if METRICS.get(column) is None:
        return None
    try:
        return METRICS.load(column)
    except (ImportError, AttributeError):
        return None


__all__ = [
    "METRICS",
    "DEFAULT_METRICS",
    "Metric",
    "MetricUnavailable",
    "declared",
    "load_metrics",
    "remember",
    "spec_of",
]
