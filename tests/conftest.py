"""Shared fixtures: one demo bench per session, small benches made from arbitrary clips."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from sparkle_bench.demo import build_demo_bench

REAL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "real"
# Ray in tests stays on loopback: with cluster mode off, Ray takes 127.0.0.1 as this node's address
# instead of the routed interface's (single-node clusters only, which is all the tests start).
# Set before anything imports ray; `ray start` and drivers started by tests inherit it.
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("home")
    os.environ["SPARKLE_BENCH_HOME"] = str(home)  # `--bench demo` finds the same copy
    from sparkle_bench.demo import demo_home

    return build_demo_bench(demo_home())


@pytest.fixture(scope="session")
def real_dir() -> Path:
    if not (REAL / "pairs").is_dir():
        pytest.skip(f"real clips not found at {REAL} (shared data is not checked out here)")
    return REAL


def make_sparkle_bench(root: Path, clips: dict[str, Path], masks: dict[str, Path] | None = None) -> Path:
    """A Sparkle-layout bench whose ids are the keys of ``clips`` (theme = second '_' field)."""
    by_theme: dict[str, list[str]] = {}
    for sample_id, clip in clips.items():
        theme = sample_id.split("_")[1]
        by_theme.setdefault(theme, []).append(sample_id)
        target = root / "source_videos" / theme / f"{sample_id}.mp4"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(clip, target)
        if masks and sample_id in masks:
            (root / "masks" / theme).mkdir(parents=True, exist_ok=True)
            shutil.copy(masks[sample_id], root / "masks" / theme / f"{sample_id}.npz")
    for theme, ids in by_theme.items():
        rows = ["edited_type,prompt,original_video"] + [
            f'{theme},"Put the subject on a windy beach.",source_videos/{theme}/{i}.mp4' for i in ids
        ]
        (root / f"{theme}_bench.csv").write_text("\n".join(rows) + "\n")
        meta = [
            json.dumps(
                {
                    "id": i,
                    "prompt": "Put the subject on a windy beach.",
                    "metadata": {"edit_type": theme, "chosen_keyword": "coast: windy beach", "original_scene": "x"},
                }
            )
            for i in ids
        ]
        (root / f"{theme}_metadata.jsonl").write_text("\n".join(meta) + "\n")
    return root
