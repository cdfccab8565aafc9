"""Reading videos (decord, resize on decode; PyAV where decord cannot) and writing H.264 mp4 with PyAV.

decord 0.6 is the fast path but its FFmpeg predates some codecs (AV1: "Check failed"); every file
it cannot open or read is decoded again with PyAV, whose FFmpeg reads what current FFmpeg reads,
giving the same frames: the same indices (presentation order), the same resize (FFmpeg's bilinear
``scale`` filter, then RGB, as decord does) and the same display rotation. :func:`probe` reads
the stream's timestamps with PyAV (demux only, no decoding) so variable-frame-rate files are timed
by when their frames are shown. Every failure surfaces as :class:`VideoError` with a one-line
cause, so callers can record it against the sample and carry on.
"""

from __future__ import annotations

import itertools
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.filter
import decord
import numpy as np

decord.logging.set_level(decord.logging.QUIET)

AV_ERRORS = (av.FFmpegError, OSError, ValueError, RuntimeError)
# Timestamps more than this share of a frame period from a constant rate make a file variable-rate.
JITTER = 0.25


class VideoError(RuntimeError):
    """A video that cannot be used; the message says why in one line."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns of a video. ``width``/``height`` are as shown (after the display
    rotation); ``times`` are the frames' presentation times in seconds from the first, kept only
    when they are not regular at ``fps`` (variable frame rate)."""

    width: int
    height: int
    num_frames: int
    fps: float
    times: tuple[float, ...] | None = None
    rotation: int = 0  # degrees counterclockwise the stored frames are turned to be shown
    codec: str = ""
    container: str = ""

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height

    def frame_times(self) -> np.ndarray:
        """Presentation time of every frame, seconds from the first."""
        return np.asarray(self.times) if self.times is not None else np.arange(self.num_frames) / self.fps

    @property
    def duration(self) -> float:
        """Seconds the video shows: up to the end of its last frame."""
        return float(self.frame_times()[-1]) + 1.0 / self.fps if self.num_frames else 0.0


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise VideoError(f"file not found: {path}")
    if path.stat().st_size == 0:
        raise VideoError(f"zero-byte file: {path.name}")


def _open(path: Path, width: int = -1, height: int = -1) -> decord.VideoReader:
    path = Path(path)
    _check_file(path)
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


def _what(stream, container) -> str:
    return f"{stream.codec_context.name} video in a {container.format.name} container"


def _rate(times: list[Fraction], stream) -> tuple[float, tuple[float, ...] | None]:
    """(fps, irregular times or None) from presentation times; the stream's average rate where
    the timestamps cannot tell (one frame, or none known)."""
    declared = stream.average_rate or stream.guessed_rate or stream.base_rate
    if len(times) < 2 or times[-1] <= times[0]:
        return (float(declared) if declared else 0.0), None
    span = float(times[-1] - times[0])
    fps = (len(times) - 1) / span
    if declared and abs(float(declared) - fps) <= 0.01 * fps:
        fps = float(declared)  # the exact rational (30000/1001), not its float estimate
    offsets = np.array([float(t - times[0]) for t in times])
    if np.abs(offsets - np.arange(len(times)) / fps).max() <= JITTER / fps:
        return fps, None
    return fps, tuple(offsets.tolist())


def probe(path: Path) -> VideoInfo:
    """Size as shown, frame count, frame rate and (when irregular) frame times of a video: one
    pass over its packets (no decoding but the first frame, which tells the display rotation)."""
    path = Path(path)
    _check_file(path)
    try:
        container = av.open(str(path))
    except AV_ERRORS as exc:
        raise VideoError(f"cannot open {path.name} (corrupt or not a video): {_first_line(exc)}") from exc
    with container:
        if not container.streams.video:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            raise VideoError(f"{path.name} has no video stream (a {container.format.name} container of {kinds})")
        stream = container.streams.video[0]
        pts: list[int | None] = []
        first = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0 and packet.pts is None:
                    continue  # the flush packet demux yields at the end
                pts.append(packet.pts)
                if first is None:
                    first = next(iter(packet.decode()), None)
            if first is None:
                first = next(iter(stream.codec_context.decode(None)), None)  # a decoder that holds frames back
        except AV_ERRORS as exc:
            raise VideoError(
                f"{path.name} is truncated or damaged ({_what(stream, container)}): {_first_line(exc)}"
            ) from exc
        if not pts:
            raise VideoError(f"{path.name} has no frames ({_what(stream, container)})")
        if first is None:
            raise VideoError(f"no decoder reads {path.name}: {_what(stream, container)}, no frame decoded")
        rotation = round((first.rotation or 0) / 90) % 4 * 90
        width, height = (first.height, first.width) if rotation % 180 else (first.width, first.height)
        known = [Fraction(p) * stream.time_base for p in pts if p is not None] if stream.time_base else []
        fps, times = _rate(sorted(known) if len(known) == len(pts) else [], stream)
        if fps <= 0:
            raise VideoError(f"{path.name} has no frame rate ({_what(stream, container)})")
        return VideoInfo(
            int(width), int(height), len(pts), fps, times, rotation, stream.codec_context.name, container.format.name
        )


def read_frames(
    path: Path, size: tuple[int, int] | None = None, indices: Sequence[int] | None = None, info: VideoInfo | None = None
) -> np.ndarray:
    """Decode frames as a (T, H, W, 3) uint8 RGB array as shown (display rotation applied), resized
    on decode to ``size=(W, H)``. decord first; a file it cannot open or read is decoded with PyAV
    (``info``: the file's :func:`probe`, when the caller has it)."""
    try:
        return _read_decord(Path(path), size, indices)
    except VideoError:
        if Path(path).is_file() and Path(path).stat().st_size:
            return _read_pyav(Path(path), size, indices, info or probe(path))
        raise


def _read_decord(path: Path, size: tuple[int, int] | None, indices: Sequence[int] | None) -> np.ndarray:
    width, height = size if size else (-1, -1)
    reader = _open(path, width, height)
    wanted = list(range(len(reader))) if indices is None else [int(i) for i in indices]
    if wanted and (min(wanted) < 0 or max(wanted) >= len(reader)):
        raise VideoError(f"{path.name}: frame index out of range (has {len(reader)} frames)")
    try:
        batch = reader.get_batch(wanted)
        # decord's bridge is process-wide and sam2 switches it to torch: accept either
        frames = batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)
    except (RuntimeError, decord.DECORDError) as exc:
        raise VideoError(f"{path.name} is truncated or damaged: {_first_line(exc)}") from exc
    if frames.shape[0] != len(wanted):
        raise VideoError(f"{path.name}: decoded {frames.shape[0]} of {len(wanted)} frames")
    return frames


# How FFmpeg's filters turn a frame stored with a display rotation (degrees counterclockwise) upright.
UPRIGHT = {90: [("transpose", "cclock")], 180: [("hflip", ""), ("vflip", "")], 270: [("transpose", "clock")]}


def _converter(stream, rotation: int, size: tuple[int, int] | None):
    """A filter graph that turns, resizes and converts frames as decord does: upright first, then
    FFmpeg's ``scale`` (bilinear) to ``size``, then RGB."""
    graph = av.filter.Graph()
    steps = UPRIGHT.get(rotation, []) + ([("scale", f"{size[0]}:{size[1]}:flags=bilinear")] if size else [])
    chain = [
        graph.add_buffer(template=stream),
        *(graph.add(name, args) for name, args in [*steps, ("format", "rgb24")]),
    ]
    chain.append(graph.add("buffersink"))
    for a, b in itertools.pairwise(chain):
        a.link_to(b)
    graph.configure()
    return graph


def _read_pyav(path: Path, size: tuple[int, int] | None, indices: Sequence[int] | None, info: VideoInfo) -> np.ndarray:
    """The frames decord would give, decoded by PyAV in presentation order."""
    wanted = list(range(info.num_frames)) if indices is None else [int(i) for i in indices]
    if wanted and (min(wanted) < 0 or max(wanted) >= info.num_frames):
        raise VideoError(f"{path.name}: frame index out of range (has {info.num_frames} frames)")
    needed, decoded = set(wanted), {}
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            graph = None
            for index, frame in enumerate(container.decode(stream)):
                if index in needed:
                    if size is None and not info.rotation:
                        decoded[index] = frame.to_ndarray(format="rgb24")
                    else:
                        graph = graph or _converter(stream, info.rotation, size)
                        graph.push(frame)
                        decoded[index] = graph.pull().to_ndarray()
                if len(decoded) == len(needed):
                    break
    except AV_ERRORS as exc:
        if not decoded:
            raise VideoError(
                f"no decoder reads {path.name} ({info.codec} video in a {info.container} container): {_first_line(exc)}"
            ) from exc
    if len(decoded) < len(needed):
        raise VideoError(
            f"{path.name} is truncated or damaged ({info.codec} video in a {info.container} container): "
            f"decoded {len(decoded)} of {len(needed)} frames"
        )
    shape = next(iter(decoded.values())).shape if decoded else (0, 0, 3)
    return np.stack([decoded[i] for i in wanted]) if wanted else np.empty((0, *shape), np.uint8)


# x264's AVX-512 code (macroblock-tree rate control) reads memory it never wrote, so the same frames
# encoded in a process whose heap holds other data (a CLI run after a model) gave other bytes and
# other pixels. Its SSE2 code computes the same results (x264's asm is bit-exact across instruction
# sets) without that read: capped there on x86-64, where every CPU has SSE2 (~30% slower encoding).
X264_REPRODUCIBLE = {"x264-params": "asm=MMX2,SSE,SSE2"} if platform.machine().lower() in ("x86_64", "amd64") else {}
# the official scripts' save_video(quality=5): imageio-ffmpeg maps quality q to crf int((1 - q/10) * 51)
OFFICIAL_CRF = 25


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
                container.mux(
                    stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame, np.uint8), format="rgb24"))
                )
            container.mux(stream.encode())
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
