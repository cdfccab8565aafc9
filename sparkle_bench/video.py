"""Reading videos with decord (resize on decode) and writing H.264 mp4 with PyAV.

Every failure surfaces as :class:`VideoError` with a one-line cause, so callers can record
it against the sample and carry on.
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import decord
import numpy as np

decord.logging.set_level(decord.logging.QUIET)


class VideoError(RuntimeError):
    """A video that cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    num_frames: int
    fps: float

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _open(path: Path, width: int = -1, height: int = -1) -> decord.VideoReader:
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"zero-byte file: {path.name}")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height)
    except (RuntimeError, decord.DECORDError) as exc:
        raise VideoError(f"cannot open {path.name} (corrupt or not a video): {_first_line(exc)}") from exc
    if len(reader) == 0:
        raise VideoError(f"{path.name} has no frames")
    return reader


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def probe(path: Path) -> VideoInfo:
    """Size, frame count and fps of a video (decodes one frame to learn the size)."""
    reader = _open(path)
    try:
        height, width = reader[0].shape[:2]
    except (RuntimeError, decord.DECORDError) as exc:
        raise VideoError(f"cannot decode the first frame of {Path(path).name}: {_first_line(exc)}") from exc
    return VideoInfo(width=int(width), height=int(height), num_frames=len(reader), fps=float(reader.get_avg_fps()))


def read_frames(
    path: Path, size: tuple[int, int] | None = None, indices: Sequence[int] | None = None
) -> np.ndarray:
    """Decode frames as a (T, H, W, 3) uint8 RGB array, resized on decode to ``size=(W, H)``."""
    width, height = size if size else (-1, -1)
    reader = _open(path, width, height)
    wanted = list(range(len(reader))) if indices is None else [int(i) for i in indices]
    if wanted and (min(wanted) < 0 or max(wanted) >= len(reader)):
        raise VideoError(f"{Path(path).name}: frame index out of range (has {len(reader)} frames)")
    try:
        batch = reader.get_batch(wanted)
        # decord's bridge is process-wide and sam2 switches it to torch: accept either
        frames = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
    except (RuntimeError, decord.DECORDError) as exc:
        raise VideoError(f"{Path(path).name} is truncated or damaged: {_first_line(exc)}") from exc
    if frames.shape[0] != len(wanted):
        raise VideoError(f"{Path(path).name}: decoded {frames.shape[0]} of {len(wanted)} frames")
    return frames


# x264's AVX-512 code (macroblock-tree rate control) reads memory it never wrote, so the same frames
# encoded in a process whose heap holds other data (a CLI run after a model) gave other bytes and
# other pixels. Its SSE2 code computes the same results (x264's asm is bit-exact across instruction
# sets) without that read: capped there on x86-64, where every CPU has SSE2 (~30% slower encoding).
X264_REPRODUCIBLE = {"x264-params": "asm=MMX2,SSE,SSE2"} if platform.machine().lower() in ("x86_64", "amd64") else {}
OFFICIAL_CRF = 25  # the official scripts' save_video(quality=5): imageio-ffmpeg maps quality q to crf int((1 - q/10) * 51)


def write_video(path: Path, frames: np.ndarray, fps: float, crf: int = 17) -> None:
    """Write (T, H, W, 3) uint8 RGB frames as H.264 mp4 (x264 preset medium, yuv420p; ``crf`` 17 keeps
    nearly everything, :data:`OFFICIAL_CRF` is what the official Kiwi scripts save), atomically."""
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise VideoError(f"cannot write {path.name}: expected (T, H, W, 3) frames, got {frames.shape}")
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:  # yuv420p needs even sizes
        frames = frames[:, : height - height % 2, : width - width % 2]
        height, width = frames.shape[1:3]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    rate = Fraction(fps).limit_denominator(1001)
    try:
        with av.open(str(tmp), mode="w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": str(crf), "preset": "medium", **X264_REPRODUCIBLE}
            stream.thread_count = 1
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, np.uint8), format="rgb24")))
            container.mux(stream.encode())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
