"""Where a model runs and in what precision, chosen the same way everywhere: the GPU in bfloat16
when there is one, else the CPU in float32; either can be given (``"cuda:1"``, ``"float16"``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def placement(device: str | None = None, dtype: str | None = None) -> tuple[str, torch.dtype]:
    import torch

    device = device if device not in (None, "", "auto") else ("cuda" if torch.cuda.is_available() else "cpu")
    if dtype:
        return device, getattr(torch, dtype)
    return device, torch.bfloat16 if device.startswith("cuda") else torch.float32
