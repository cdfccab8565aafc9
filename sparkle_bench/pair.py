"""A source/edited pair decoded at one working size, aligned in time, with its mask.

Edited videos often differ from their source (Kiwi-style models write 1280x704 at 15 fps for a
1280x720, 16 fps source). :func:`match_frames` decides which frames correspond and
:func:`match_geometry` which source region the edit shows; both say what they did, so every
record shows how its numbers were obtained. An edit that breaks the protocol but can still be
scored (shorter than the protocol's frames, another orientation) is scored and flagged
(:func:`protocol_flags`), never passed off as complete; docs/outputs.md states the policy.

An edit of another aspect is almost always a centre crop of the source (the official protocol and
both Kiwi models crop 1280x720 to 1280x704); stretching it back to the source's aspect would move
the subject by up to 8 source rows at the top and bottom of the frame, so by default the source and
its mask are cropped to the edit's aspect instead (``align="crop"``; ``"resize"`` stretches).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .masks import MaskError, load_mask, resize_mask
from .models.kiwi.frames import centre_crop, frame_count
from .video import VideoInfo, probe, read_frames

FLOW_RATE = 8.0  # flow is measured between frames 1/8 s apart, whatever the fps
ALIGNMENTS = ("crop", "resize")  # how an edit of another aspect is registered to its source
ASPECT_TOLERANCE = 0.002  # relative aspect difference below which two sizes count as one aspect
DECODE_CHUNK = 16  # frames decoded at full size at a time when cropping (bounds memory)


def work_size(info: VideoInfo, work_height: int) -> tuple[int, int]:
    """(W, H) with the aspect of ``info`` (the source, or the region of it the edit shows), height at
    most ``work_height``, both even."""
    height = min(work_height, info.height)
    width = int(round(info.width * height / info.height / 2)) * 2
    return max(width, 2), max(height - height % 2, 2)


def match_geometry(src: VideoInfo, edt: VideoInfo, align: str = "crop") -> tuple[tuple[slice, slice] | None, list[str]]:
    """The (rows, columns) of the source the edit shows, or None for the whole frame, and notes.

    Same aspect: the whole frame, both resized. Another aspect: with ``crop``, the centred region
    of the source with the edit's aspect (what a model that crops before editing saw); with
    ``resize``, the whole frame, the edit stretched to the source's aspect.
    """
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {', '.join(ALIGNMENTS)}, not {align!r}")
    if (edt.width, edt.height) == (src.width, src.height):
        return None, []
    sizes = f"edited {edt.width}x{edt.height} vs source {src.width}x{src.height}"
    if abs(edt.width / edt.height - src.width / src.height) <= ASPECT_TOLERANCE * src.width / src.height:
        return None, [f"size: {sizes}, same aspect, both resized to the working size"]
    if align == "resize":
        return None, [
            f"size: {sizes}, other aspect, both resized to the working size (--align resize: the edit is stretched)"
        ]
    rows, cols = centre_crop(src.width, src.height, (edt.width, edt.height))
    region = f"rows {rows.start}-{rows.stop}, columns {cols.start}-{cols.stop}"
    return (rows, cols), [
        f"size: {sizes}, other aspect: source and mask centre-cropped to {cols.stop - cols.start}x"
        f"{rows.stop - rows.start} ({region}), then both resized to the working size (--align crop)"
    ]


def read_region(
    path: Path,
    size: tuple[int, int],
    indices: np.ndarray,
    region: tuple[slice, slice] | None,
    info: VideoInfo | None = None,
) -> np.ndarray:
    """Frames ``indices`` of a video, cropped to ``region`` (None: whole frame) at full size, then
    resized to ``size`` (W, H) with area averaging; decoded a chunk at a time."""
    out = np.empty((len(indices), size[1], size[0], 3), np.uint8)
    rows, cols = region or (slice(None), slice(None))
    for start in range(0, len(indices), DECODE_CHUNK):
        for i, frame in enumerate(read_frames(path, None, indices[start : start + DECODE_CHUNK], info), start):
            out[i] = cv2.resize(np.ascontiguousarray(frame[rows, cols]), size, interpolation=cv2.INTER_AREA)
    return out


def _rate(info: VideoInfo) -> str:
    return f"{info.fps:.4g} fps" + (" (variable frame rate)" if info.times is not None else "")


def match_frames(src: VideoInfo, edt: VideoInfo) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Source and edited frame indices that show the same moment, and notes on what was done.

    Equal frame counts, or an edit of exactly the protocol's frame count (:func:`frame_count` of
    the source), are matched one to one (a model that relabels fps still edits frame by frame);
    equal constant rates with other counts are cut to the shorter; otherwise each source frame
    takes the edited frame nearest in time (presentation timestamps, so a variable-frame-rate file
    is timed as a player shows it), within the edited video's duration.
    """
    notes: list[str] = []
    protocol = frame_count(src.num_frames)
    if edt.num_frames == src.num_frames or (edt.num_frames == protocol and edt.num_frames < src.num_frames):
        idx = np.arange(edt.num_frames)
        if abs(edt.fps - src.fps) > 0.01 or edt.times is not None:
            notes.append(
                f"fps: edited {_rate(edt)} vs source {_rate(src)}, "
                f"{'same frame count' if edt.num_frames == src.num_frames else 'the protocol frame count'}, "
                f"frames matched by index"
            )
        elif edt.num_frames < src.num_frames:
            notes.append(f"frames: edited {edt.num_frames} vs source {src.num_frames}, the protocol's first {protocol}")
        return idx, idx, notes
    if abs(edt.fps - src.fps) <= 0.01 and edt.times is None and src.times is None:
        n = min(src.num_frames, edt.num_frames)
        notes.append(f"frames: edited {edt.num_frames} vs source {src.num_frames}, truncated to {n}")
        return np.arange(n), np.arange(n), notes
    src_t, edt_t = src.frame_times(), edt.frame_times()
    if edt.num_frames > 1:
        after = np.clip(np.searchsorted(edt_t, src_t), 1, edt.num_frames - 1)
    else:
        after = np.zeros(len(src_t), int)
    before = np.maximum(after - 1, 0)
    edt_idx = np.where(np.abs(edt_t[after] - src_t) < np.abs(src_t - edt_t[before]) - 1e-9, after, before)
    keep = src_t < edt.duration - 0.5 / edt.fps + 1e-9  # within half an edited frame of its last one
    keep[0] = True
    notes.append(
        f"frames: edited {edt.num_frames} at {_rate(edt)} vs source {src.num_frames} at {_rate(src)}, "
        f"resampled by timestamp to {int(keep.sum())}"
    )
    src_idx = np.arange(src.num_frames)
    return src_idx[keep], edt_idx[keep], notes


def orientation(width: int, height: int) -> str:
    return "landscape" if width > height else "portrait" if width < height else "square"


def protocol_flags(src: VideoInfo, edt: VideoInfo, src_idx: np.ndarray) -> dict[str, str]:
    """How an edit breaks the protocol while still being scorable: ``short`` when the source frames
    it covers (matched in time) are fewer than the protocol's :func:`frame_count` (at most 81,
    trimmed to 4k+1), ``orientation`` when it is portrait for a landscape source or the reverse."""
    flags = {}
    covered, wanted = len(src_idx), frame_count(src.num_frames)
    if covered < wanted:
        flags["short"] = (
            f"covers {covered} of the protocol's {wanted} source frames "
            f"({covered / src.fps:.2f} s of {wanted / src.fps:.2f} s)"
        )
    shapes = orientation(*src.size), orientation(*edt.size)
    if "square" not in shapes and shapes[0] != shapes[1]:
        flags["orientation"] = (
            f"{shapes[1]} {edt.width}x{edt.height} output for a {shapes[0]} {src.width}x{src.height} source"
        )
    return flags


@dataclass
class VideoPair:
    source: np.ndarray  # (T, H, W, 3) uint8
    edited: np.ndarray  # (T, H, W, 3) uint8, aligned to ``source``
    mask: np.ndarray | None  # (T, H, W) bool foreground of the source, or None
    fps: float
    prompt: str = ""
    notes: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)  # protocol violations (:func:`protocol_flags`)
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def flow_step(self) -> int:
        return max(1, int(round(self.fps / FLOW_RATE)))

    @property
    def diagonal(self) -> float:
        height, width = self.source.shape[1:3]
        return float(np.hypot(height, width))

    def gray(self, which: str) -> np.ndarray:
        key = ("gray", which)
        if key not in self._cache:
            video = getattr(self, which)
            self._cache[key] = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in video])
        return self._cache[key]

    def flows(self, which: str, backward: bool = False) -> np.ndarray:
        """(N, H, W, 2) DIS flow from frame ``k*step`` to ``k*step + step`` (or back), computed once."""
        key = ("flow", which, backward)
        if key not in self._cache:
            gray, step = self.gray(which), self.flow_step
            dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
            starts = range(0, len(gray) - step, step)
            pairs = [(gray[i + step], gray[i]) if backward else (gray[i], gray[i + step]) for i in starts]
            self._cache[key] = (
                np.stack([dis.calc(a, b, None) for a, b in pairs])
                if pairs
                else np.zeros((0,) + gray.shape[1:] + (2,), np.float32)
            )
        return self._cache[key]

    def flow_starts(self) -> np.ndarray:
        return np.arange(0, len(self.source) - self.flow_step, self.flow_step)


def load_pair(
    source: Path, edited: Path, mask_path: Path | None, work_height: int = 288, prompt: str = "", align: str = "crop"
) -> VideoPair:
    """Decode, register (:func:`match_geometry`), resize and time-align a pair, with its protocol
    flags (:func:`protocol_flags`; ``short`` too when too few frames are left to measure motion);
    raises VideoError or MaskError with a clear cause."""
    src_info, edt_info = probe(source), probe(edited)
    region, notes = match_geometry(src_info, edt_info, align)
    seen = (
        src_info
        if region is None
        else VideoInfo(
            region[1].stop - region[1].start, region[0].stop - region[0].start, src_info.num_frames, src_info.fps
        )
    )
    size = work_size(seen, work_height)
    src_idx, edt_idx, frame_notes = match_frames(src_info, edt_info)
    mask = None
    if mask_path is not None:
        full = load_mask(mask_path)
        expected = (src_info.num_frames, src_info.height, src_info.width)
        if full.shape != expected:
            raise MaskError(f"mask shape {tuple(full.shape)} does not match source video (T, H, W) = {expected}")
        mask = full[src_idx] if region is None else full[src_idx][:, region[0], region[1]]
        mask = resize_mask(mask, size)
    if region is None:
        frames = read_frames(source, size, src_idx, src_info), read_frames(edited, size, edt_idx, edt_info)
    else:  # one resize for both, so an exact crop of the source reads as an exact copy
        frames = (
            read_region(source, size, src_idx, region, src_info),
            read_region(edited, size, edt_idx, None, edt_info),
        )
    pair = VideoPair(
        source=frames[0],
        edited=frames[1],
        mask=mask,
        fps=src_info.fps,
        prompt=prompt,
        notes=notes + frame_notes,
        flags=protocol_flags(src_info, edt_info, src_idx),
    )
    if len(pair.flow_starts()) == 0:  # no motion metric can be computed: not a complete score either
        motion = f"{len(src_idx)} frame(s) aligned: too few to measure motion"
        pair.flags["short"] = f"{pair.flags['short']}; {motion}" if "short" in pair.flags else motion
    return pair
