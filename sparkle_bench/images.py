"""Reading still images as RGB arrays with Pillow, not OpenCV: once decord is imported before cv2
(as ``sparkle_bench.video`` does), ``cv2.imread`` fails on PNGs in this environment (the two
libraries' zlib builds clash), so no image read may depend on which was imported first."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB of an image file; a missing or unreadable file raises with its name."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except OSError as exc:  # missing, or not an image (UnidentifiedImageError)
        raise FileNotFoundError(f"unreadable image {path}: {exc}") from exc
