"""The model-adapter interface: one bench sample in, one edited video out.

A generating adapter implements :meth:`ModelAdapter.edit` only; the runner decides where the
result goes, skips samples whose output exists and writes atomically.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from ..bench import Bench, Sample
from ..video import write_video
from .hub import HubRepo


class AdapterError(RuntimeError):
    """An adapter that cannot run here (bad argument, missing weights or masks)."""


class WeightsError(AdapterError):
    """The model's weights cannot be loaded: no sample can be generated, so inference stops."""


@dataclass
class EditedVideo:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float


class ModelAdapter(ABC):
    """Turns bench samples into edited videos."""

    name: ClassVar[str]
    generates: ClassVar[bool] = True  # False: outputs already exist somewhere (precomputed)

    def __init__(self, arg: str | None = None) -> None:
        if arg:
            raise AdapterError(f"model {self.name!r} takes no argument (got {arg!r})")

    @property
    def spec(self) -> str:
        """The string that names this adapter and its argument, as given on the command line."""
        return self.name

    @property
    def run_suffix(self) -> str:
        """Appended to the default run name when a setting makes results incomparable (``-ref``)."""
        return ""

    def configure(self, options: dict[str, str]) -> None:
        """Apply ``--model-option KEY=VALUE`` settings (and ``--reference``/``--offload``)."""
        if options:
            raise AdapterError(f"model {self.name!r} takes no options (got {', '.join(sorted(options))})")

    def hub_repos(self) -> list[HubRepo]:
        """The hub repositories this adapter's weights come from, given its settings (local paths
        are not listed): what ``sparkle-bench download --model`` fetches and ``eval`` checks first."""
        return []

    def setup(self, bench: Bench) -> None:
        """Cheap preparation for a bench (paths, masks folder). Weights load on the first
        :meth:`edit`, so stages that only read outputs (score, judge) never load them."""

    def locate(self, sample: Sample, outputs: Path) -> Path | None:
        """The edited video for ``sample`` if it exists (the runner's cache check)."""
        path = outputs / sample.output_relpath
        return path if path.is_file() else None

    @abstractmethod
    def edit(self, sample: Sample) -> EditedVideo:
        """Produce the edited video for one sample."""

    def write(self, sample: Sample, target: Path) -> None:
        """Put the edited video at ``target``, atomically (adapters whose model writes files override this)."""
        video = self.edit(sample)
        write_video(target, video.frames, video.fps)
