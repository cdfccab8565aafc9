"""Append-only JSONL with fsync: a run killed at any point loses at most the line being written."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterator


def append_jsonl(path: Path, record: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = (json.dumps(record, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")
    with open(path, "ab") as handle:
        _heal_torn_tail(path, handle)
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())


def _heal_torn_tail(path: Path, handle) -> None:
    """Cut a last line left half-written by a killed process, so the next record starts clean."""
    size = path.stat().st_size
    if size == 0:
        return
    with open(path, "rb") as reader:
        reader.seek(max(0, size - 65536))
        tail = reader.read()
    if tail.endswith(b"\n"):
        return
    cut = tail.rfind(b"\n")
    handle.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)


def read_jsonl(path: Path) -> Iterator[dict]:
    """Records of a JSONL file, skipping a torn or unparsable line."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, "rb") as handle:
        for line in handle:
            try:
                record = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if isinstance(record, dict):
                yield record


def file_digest(path: Path) -> str:
    """Content hash of a file (sha1, first 16 hex digits): what a cached result is tied to."""
    digest = hashlib.sha1()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
