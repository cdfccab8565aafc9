"""Training pairs in the Sparkle/Kiwi layout, decoded in worker processes, in a resumable order.

``{root}/prompts/{theme}_train.csv`` has ``prompt, src_video, tgt_video, task`` with paths relative to
the root; images (.png/.jpg) train as 1-frame videos. Each pair is decoded at the target's protocol
size (aspect kept in the pixel budget, sides multiples of 32, centre crop), at most ``num_frames``
frames trimmed to 4k+1. A pair that cannot be used (corrupt file, lengths that differ under
``length_mismatch = "skip"``) comes back as a skip record with its reason; the loop counts it and
takes the next pair, so no step is ever lost to bad data.

The order is a fixed function of (seed, epoch, rank): images and videos alternate, each stream a
seeded permutation per epoch, and a position into that stream is all a resume needs.
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
    """Every pair of the given themes under the given roots (a missing theme file is an error)."""
    pairs: list[Pair] = []
    for root in map(Path, roots):
        for theme in themes:
            path = root / "prompts" / f"{theme}_train.csv"
            if not path.is_file():
                raise FileNotFoundError(f"no training CSV for theme {theme!r}: {path}")
            with open(path, newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                missing = [c for c in CSV_COLUMNS if c not in (reader.fieldnames or [])]
                if missing:
                    raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
                pairs += [Pair(row["task"], row["prompt"], root / row["src_video"], root / row["tgt_video"]) for row in reader]
    if not pairs:
        raise ValueError(f"no training pairs in {', '.join(roots)} for themes {', '.join(themes)}")
    return pairs


def _load(path: Path, size: tuple[int, int] | None, count: int) -> np.ndarray:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        try:
            frames = np.asarray(Image.open(path).convert("RGB"))[None]
        except OSError as exc:
            raise VideoError(f"cannot read image {path.name}: {exc}") from exc
    else:
        frames = read_frames(path, indices=range(min(count, probe(path).num_frames)))
    if size is None:
        return frames
    return np.stack([crop_resize(f, size) for f in frames])


class PairDataset(torch.utils.data.Dataset):
    """Decoded pairs: ``{"id", "prompt", "source", "target"}`` (uint8 T,H,W,3) or ``{"id", "skip"}``."""

    def __init__(self, pairs: list[Pair], num_frames: int, pixel_budget: int, multiple: int, length_mismatch: str):
        self.pairs, self.num_frames, self.budget, self.multiple = pairs, num_frames, pixel_budget, multiple
        self.length_mismatch = length_mismatch

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        pair = self.pairs[index]
        try:
            target = _load(pair.target, None, self.num_frames)
            size = protocol_size(target.shape[2], target.shape[1], self.budget, self.multiple)
            target = np.stack([crop_resize(f, size) for f in target])
            source = _load(pair.source, size, self.num_frames)
        except (VideoError, ValueError, OSError) as exc:
            return {"id": pair.id, "skip": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
        if len(source) != len(target):
            if self.length_mismatch == "skip":
                return {"id": pair.id, "skip": f"source has {len(source)} frames, target {len(target)}"}
        count = frame_count(min(len(source), len(target)), self.num_frames)
        return {"id": pair.id, "prompt": pair.prompt, "source": source[:count], "target": target[:count],
                "source_path": str(pair.source), "target_path": str(pair.target)}


class PairStream(torch.utils.data.Sampler):
    """An endless, seeded order of dataset indices for one rank, starting at ``position``."""

    def __init__(self, pairs: list[Pair], seed: int, rank: int, world: int, position: int = 0):
        kinds = sorted({p.kind for p in pairs})  # "image" before "video": images and videos alternate
        self.streams = [[i for i, p in enumerate(pairs) if p.kind == kind] for kind in kinds]
        self.seed, self.rank, self.world, self.position = seed, rank, world, position

    @functools.lru_cache(maxsize=4)
    def _epoch(self, stream: int, epoch: int) -> list[int]:
        """This rank's share of one epoch of one stream, in its seeded order."""
        members = self.streams[stream]
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + stream * 7_919 + epoch)
        order = [members[i] for i in torch.randperm(len(members), generator=generator).tolist()]
        return order[self.rank :: self.world] or order

    def _item(self, stream: int, k: int) -> int:
        share = len(self._epoch(stream, 0))
        epoch, offset = divmod(k, share)
        return self._epoch(stream, epoch)[offset]

    def __iter__(self) -> Iterator[int]:
        position = self.position
        while True:
            stream, k = position % len(self.streams), position // len(self.streams)
            yield self._item(stream, k)
            position += 1

    def __len__(self) -> int:  # endless; a large number keeps DataLoader happy
        return 2**62


def file_key(path: str, *settings) -> str:
    """A cache key: the file's content hash and the settings that shaped what was computed from it."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(repr(settings).encode())
    return digest.hexdigest()


def keep_as_is(sample: dict) -> dict:
    """No collation: samples differ in size, and the encoder reads the frames as uint8 arrays."""
    return sample
