"""Judge response cache: one file per request, written atomically, shared across runs and machines.

A request's key hashes everything the judge sees (judge model, rubric version, prompt text, how
the videos are shown, both videos' content hashes, and any earlier turns of a re-ask), so an
answer once received is never requested again: not after a crash, a Ctrl-C, a re-run, or on
another machine that mounts the same folder. A per-sample lock keeps concurrent workers from
judging the same sample twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def request_key(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


class ResponseCache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        try:
            return json.loads(self._path(key).read_text())
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, key: str, entry: dict) -> None:
        """Write-then-rename with fsync: a reader sees the whole entry or none."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(entry, handle, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)

    @contextmanager
    def claim(self, sample_key: str) -> Iterator[None]:
        """Hold the sample's lock (waiting while another worker holds it); released on exit or death."""
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{sample_key[:32]}.lock", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
