"""Poster frames: a small JPEG of each video's first frame, so a page that has not played (or
cannot play) anything, a static screenshot or a printout, still shows every video's picture."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2

from ..video import VideoError, read_frames

POSTER_WIDTH = 480


def poster(video: Path, folder: Path) -> Path | None:
    """The poster of ``video`` under ``folder`` (made once per video content: named by its path,
    size and modification time); None when the video cannot be decoded."""
    stat = video.stat()
    key = hashlib.sha1(f"{video.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = folder / f"{key}.jpg"
    if target.is_file():
        return target
    try:
        frame = read_frames(video, None, [0])[0]
    except VideoError:
        return None
    height = max(2, round(frame.shape[0] * POSTER_WIDTH / frame.shape[1]))
    small = cv2.resize(frame, (POSTER_WIDTH, height), interpolation=cv2.INTER_AREA)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.jpg")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(small, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 80]):
        return None
    tmp.replace(target)
    return target
