"""Metrics with learned weights (open_clip, LPIPS), loaded only from local caches.

Missing weights make the metric *unavailable* for every sample, with the reason recorded;
they never crash a run and never score 0.
"""

from __future__ import annotations

import functools
import os
from typing import Any

import numpy as np

from ..pair import VideoPair
from .base import Metric, MetricUnavailable, foreground_region

CLIP_FRAMES = 8


def clip_choice() -> tuple[str, str | None]:
    """open_clip model and pretrained tag: ``$SPARKLE_CLIP_MODEL`` (an open_clip name, ``hf-hub:...``
    or ``local-dir:/path``) and ``$SPARKLE_CLIP_PRETRAINED`` (a tag or a weights file)."""
    model = os.environ.get("SPARKLE_CLIP_MODEL", "ViT-B-32")
    default = None if ":" in model else "laion2b_s34b_b79k"  # hf-hub: and local-dir: carry their weights
    return model, os.environ.get("SPARKLE_CLIP_PRETRAINED", default)


@functools.lru_cache(maxsize=2)
def _clip(model_name: str, pretrained: str | None) -> tuple[Any, Any, Any] | str:
    """(model, preprocess, tokenizer), or the reason they cannot be loaded here."""
    try:
        import open_clip

        model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pretrained)
        return model.eval(), preprocess, open_clip.get_tokenizer(model_name)
    except Exception as exc:  # any loader failure (offline hub, missing package) means "unavailable"
        return (
            f"open_clip {model_name}/{pretrained} not available locally "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''})"
        )


def _clip_or_unavailable() -> tuple[Any, Any, Any]:
    loaded = _clip(*clip_choice())
    if isinstance(loaded, str):
        raise MetricUnavailable(loaded)
    return loaded


def _frame_embeddings(pair: VideoPair, hide_foreground: bool) -> Any:
    import torch
    from PIL import Image

    model, preprocess, _ = _clip_or_unavailable()
    idx = np.linspace(0, len(pair.edited) - 1, min(CLIP_FRAMES, len(pair.edited))).round().astype(int)
    frames = pair.edited[idx].copy()
    if hide_foreground and pair.mask is not None:
        for frame, mask in zip(frames, pair.mask[idx]):
            frame[mask] = frame[~mask].mean(axis=0) if (~mask).any() else 0
    with torch.no_grad():
        batch = torch.stack([preprocess(Image.fromarray(f)) for f in frames])
        embeddings = model.encode_image(batch)
    return embeddings / embeddings.norm(dim=-1, keepdim=True)


class ClipText(Metric):
    """Cosine similarity between the prompt and edited frames with the subject greyed out
    (so the score follows the background the prompt asks for)."""

    name, higher_is_better, range, needs_mask = "clip_text", True, (-1.0, 1.0), False
    header, order, tolerance, noise_sd = "clipTxt", 90, 0.01, 0.002

    def compute(self, pair: VideoPair) -> float:
        import torch

        model, _, tokenizer = _clip_or_unavailable()
        images = _frame_embeddings(pair, hide_foreground=True)
        with torch.no_grad():
            text = model.encode_text(tokenizer([pair.prompt]))
        text = text / text.norm(dim=-1, keepdim=True)
        return float((images @ text.T).mean())


class ClipConsistency(Metric):
    """Mean cosine similarity of CLIP embeddings of consecutive sampled frames."""

    name, higher_is_better, range, needs_mask = "clip_consistency", True, (-1.0, 1.0), False
    header, order, tolerance, noise_sd = "clipCons", 100, 0.01, 0.002

    def compute(self, pair: VideoPair) -> float:
        embeddings = _frame_embeddings(pair, hide_foreground=False)
        if len(embeddings) < 2:
            raise MetricUnavailable("only one frame: nothing to compare")
        return float((embeddings[1:] * embeddings[:-1]).sum(dim=-1).mean())


@functools.lru_cache(maxsize=1)
def _lpips() -> Any:
    try:
        import lpips

        return lpips.LPIPS(net="alex", spatial=True, verbose=False).eval()
    except Exception as exc:  # the AlexNet backbone comes from torchvision's download cache
        return f"LPIPS backbone weights not available locally ({type(exc).__name__})"


class ForegroundLPIPS(Metric):
    """LPIPS (AlexNet) distance map averaged over foreground pixels only."""

    name, higher_is_better, range = "fg_lpips", False, (0.0, 1.0)
    header, order, tolerance, noise_sd = "fLPIPS", 40, 0.01, 0.002

    def compute(self, pair: VideoPair) -> float:
        import torch

        model = _lpips()
        if isinstance(model, str):
            raise MetricUnavailable(model)
        region = foreground_region(pair)
        to_tensor = lambda v: torch.from_numpy(v).permute(0, 3, 1, 2).float() / 127.5 - 1  # noqa: E731
        total = count = 0.0
        with torch.no_grad():
            for start in range(0, len(pair.source), 8):
                dist = model(to_tensor(pair.source[start : start + 8]), to_tensor(pair.edited[start : start + 8]))[
                    :, 0
                ].numpy()
                keep = region[start : start + 8]
                total, count = total + float(dist[keep].sum()), count + int(keep.sum())
        return total / count
