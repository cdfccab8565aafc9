"""Training pairs in the Sparkle/Kiwi layout, decoded in worker processes, in a resumable order.

``{root}/prompts/{theme}_train.csv`` has ``prompt, src_video, tgt_video, task`` with paths relative to
the root (a root need not hold every theme, but every theme must be somewhere); images
(.png/.jpg) train as 1-frame videos. Each pair is decoded at the target's size in the pixel budget
(aspect kept, sides multiples of 32), fitted by upstream's bilinear resize-to-cover and centre crop
(``resize = "resize-crop"``) or the eval protocol's crop then bicubic resize (``"crop-resize"``), at
most ``num_frames`` frames trimmed to 4k+1. A pair that cannot be used (corrupt file, lengths that differ under
``length_mismatch = "skip"``) comes back as a skip record with its reason; the loop counts it and
takes the next pair, so no step is ever lost to bad data.

The order is a fixed function of (seed, epoch, rank, processes): images and videos alternate, each
kind a seeded permutation per epoch shared out over the processes; a position into that order is
all a resume needs, and a job with another number of processes continues from each kind's
earliest unread pair.
"""

from __future__ import annotations

import csv
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from PIL import Image

from ..models.kiwi.frames import crop_resize, frame_count, protocol_size
from ..models.kiwi.qwen_inputs import MAX_VIDEO_FRAMES
from ..video import VideoError, probe, read_frames

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
CSV_COLUMNS = ("prompt", "src_video", "tgt_video", "task")


@dataclass(frozen=True)
class Pair:
    id: str
    prompt: str
    source: Path
    target: Path

    @property
    def kind(self) -> str:
        return "image" if self.target.suffix.lower() in IMAGE_SUFFIXES else "video"


def read_pairs(roots: list[str], themes: list[str]) -> list[Pair]:
    """Every pair of the given themes under the given roots (a theme found under no root is an error)."""
    pairs: list[Pair] = []
    missing = [t for t in themes if not any((Path(r) / "prompts" / f"{t}_train.csv").is_file() for r in roots)]
    if missing:
        raise FileNotFoundError(
            f"no training CSV for theme(s) {', '.join(missing)} under {', '.join(roots)} "
            f"(want prompts/{{theme}}_train.csv)"
        )
    for root in map(Path, roots):
        for theme in themes:
            path = root / "prompts" / f"{theme}_train.csv"
            if not path.is_file():
                continue
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
                pairs += [
                    Pair(row["task"], row["prompt"], root / row["src_video"], root / row["tgt_video"]) for row in reader
                ]
    if not pairs:
        raise ValueError(f"no training pairs in {', '.join(roots)} for themes {', '.join(themes)}")
    return pairs


def resize_crop(frame: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Upstream's training fit: bilinear resize so ``size`` = (W, H) is covered, then centre crop."""
    width, height = size
    scale = max(width / frame.shape[1], height / frame.shape[0])
    image = Image.fromarray(np.ascontiguousarray(frame))
    resized = (round(frame.shape[1] * scale), round(frame.shape[0] * scale))
    if image.size != resized:
        image = image.resize(resized, Image.BILINEAR)
    top, left = int(round((resized[1] - height) / 2.0)), int(round((resized[0] - width) / 2.0))
    return np.asarray(image)[top : top + height, left : left + width]


FITS = {"resize-crop": resize_crop, "crop-resize": crop_resize}


def _load(path: Path, size: tuple[int, int] | None, count: int, fit=resize_crop) -> np.ndarray:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        try:
            frames = np.asarray(Image.open(path).convert("RGB"))[None]
        except OSError as exc:
            raise VideoError(f"cannot read image {path.name}: {exc}") from exc
    else:
        frames = read_frames(path, indices=range(min(count, probe(path).num_frames)))
    if size is None:
        return frames
    return np.stack([fit(f, size) for f in frames])


class PairDataset(torch.utils.data.Dataset):
    """Decoded pairs: ``{"id", "prompt", "source", "target"}`` (uint8 T,H,W,3) or ``{"id", "skip"}``."""

    def __init__(
        self,
        pairs: list[Pair],
        num_frames: int,
        pixel_budget: int,
        multiple: int,
        length_mismatch: str,
        resize: str = "resize-crop",
        cache: Path | None = None,
        cache_settings: tuple = (),
        encoder_reads: bool = True,
    ):
        self.pairs, self.num_frames, self.budget, self.multiple = pairs, num_frames, pixel_budget, multiple
        self.length_mismatch, self.fit = length_mismatch, FITS[resize]
        self.cache, self.cache_settings, self.encoder_reads = cache, cache_settings, encoder_reads

    def _encoder_frames(self, pair: Pair) -> np.ndarray:
        """Only the source frames the condition encoder reads (at most 16, picked as it picks them
        from the whole clip), for a cached pair whose encoder trains: no full decode."""
        if pair.kind == "image":
            target = _load(pair.target, None, 1)
            return _load(
                pair.source, protocol_size(target.shape[2], target.shape[1], self.budget, self.multiple), 1, self.fit
            )
        source, target = probe(pair.source), probe(pair.target)
        count = frame_count(min(source.num_frames, target.num_frames, self.num_frames), self.num_frames)
        picked = range(count)
        if count > MAX_VIDEO_FRAMES:
            picked = torch.linspace(0, count - 1, MAX_VIDEO_FRAMES).round().long().tolist()
        size = protocol_size(target.width, target.height, self.budget, self.multiple)
        return np.stack([self.fit(f, size) for f in read_frames(pair.source, indices=picked)])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        """A cached pair comes back undecoded: ``{"id", "prompt", "cached": path}``; an uncached one
        carries ``"cache_path"`` (where its encoding belongs) when a cache is in use."""
        pair = self.pairs[index]
        entry = None
        if self.cache is not None:
            try:
                entry = entry_path(self.cache, pair, self.cache_settings)
            except OSError as exc:
                return {"id": pair.id, "skip": str(exc).splitlines()[0]}
            if entry.is_file():
                hit = {"id": pair.id, "prompt": pair.prompt, "cached": str(entry)}
                if not self.encoder_reads:
                    return hit
                try:
                    return {**hit, "source": self._encoder_frames(pair)}
                except (VideoError, ValueError, OSError) as exc:
                    return {"id": pair.id, "skip": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        try:
            target = _load(pair.target, None, self.num_frames)
            size = protocol_size(target.shape[2], target.shape[1], self.budget, self.multiple)
            target = np.stack([self.fit(f, size) for f in target])
            source = _load(pair.source, size, self.num_frames, self.fit)
        except (VideoError, ValueError, OSError) as exc:
            return {"id": pair.id, "skip": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        if len(source) != len(target):
            if self.length_mismatch == "skip":
                return {"id": pair.id, "skip": f"source has {len(source)} frames, target {len(target)}"}
        count = frame_count(min(len(source), len(target)), self.num_frames)
        sample = {"id": pair.id, "prompt": pair.prompt, "source": source[:count], "target": target[:count]}
        return sample if entry is None else {**sample, "cache_path": str(entry)}


class PairStream(torch.utils.data.Sampler):
    """An endless, seeded order of dataset indices for one process, starting at ``position``.

    Each kind (images, videos) is one endless sequence: a seeded permutation per epoch, epoch after
    epoch. Process ``rank`` of ``world`` takes every ``world``-th item of it from ``starts[kind]``
    and alternates kinds; the number of items it took is all a resume with the same processes
    needs, and :func:`restart_points` turns every process's count into starts for another number."""

    def __init__(
        self, pairs: list[Pair], seed: int, rank: int, world: int, position: int = 0, starts: list[int] | None = None
    ):
        kinds = sorted({p.kind for p in pairs})  # "image" before "video": images and videos alternate
        self.streams = [[i for i, p in enumerate(pairs) if p.kind == kind] for kind in kinds]
        self.seed, self.rank, self.world, self.position = seed, rank, world, position
        self.starts = list(starts) if starts else [0] * len(self.streams)

    @functools.lru_cache(maxsize=8)
    def _epoch(self, stream: int, epoch: int) -> list[int]:
        """One epoch of one kind, in its seeded order."""
        members = self.streams[stream]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + stream * 7_919 + epoch)
        return [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]

    def _item(self, stream: int, k: int) -> int:
        epoch, offset = divmod(self.starts[stream] + k * self.world + self.rank, len(self.streams[stream]))
        return self._epoch(stream, epoch)[offset]

    def __iter__(self) -> Iterator[int]:
        position = self.position
        while True:
            stream, k = position % len(self.streams), position // len(self.streams)
            yield self._item(stream, k)
            position += 1

    def __len__(self) -> int:  # endless; a large number keeps DataLoader happy
        return 2**62


def restart_points(kinds: int, starts: list[int], positions: list[int]) -> list[int]:
    """Per kind, the earliest item some process had not yet taken (``positions``: items each of the
    ``len(positions)`` processes took): where a job with another number of processes continues, so
    no pair is left out and at most a few are seen twice."""
    world = len(positions)
    starts = list(starts) or [0] * kinds
    return [
        min(starts[s] + max(0, (p - s + kinds - 1) // kinds) * world + r for r, p in enumerate(positions))
        for s in range(kinds)
    ]


def entry_path(cache: Path, pair: Pair, settings: tuple) -> Path:
    """Where a pair's encoding lives in the cache: keyed by both files' content, the prompt and the
    settings that shaped the encoding, so a changed file or setting never reads a stale entry."""
    digest = hashlib.sha1()
    for path in (pair.source, pair.target):
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    digest.update(repr((pair.prompt, settings)).encode())
    key = digest.hexdigest()
    return cache / key[:2] / f"{key}.safetensors"


def keep_as_is(sample: dict) -> dict:
    """No collation: samples differ in size, and the encoder reads the frames as uint8 arrays."""
    return sample
