"""Where sparkle-bench keeps what it builds or caches: ``$SPARKLE_BENCH_HOME`` or ``~/.cache/sparkle-bench``."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    return Path(os.environ.get("SPARKLE_BENCH_HOME") or Path.home() / ".cache" / "sparkle-bench")
