"""``benchmarks/gpu_check.py`` is ready for the first GPU: its whole path (inference rows resident
and offloaded, tiled and not, and the training step through the trainer's public functions) runs
at tiny size on the CPU and prints its one table."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"


def test_gpu_check_tiny_prints_every_row(capsys):
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--tiny", "--steps", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    lines = lines[
        next(i for i, line in enumerate(lines) if line.startswith("tiny random Kiwi")) :
    ]  # after library chatter
    assert lines[0].startswith("tiny random Kiwi, 9 frames at 128x64") and lines[1].split()[:3] == [
        "what",
        "time",
        "peak",
    ]
    rows = {re.split(r"\s{2,}", line.strip())[0]: line for line in lines[2:]}
    expected = [
        "condition encoder",
        "VAE encode, tiling=diffsynth",
        "VAE encode, tiling=off",
        "denoising step",
        "VAE decode, tiling=diffsynth",
        "VAE decode, tiling=off",
        "sample, 50 steps",
        "sample peak without VAE tiling",
        "sample, 2 steps, --offload",
        "training forward+backward",
        "training optimizer step",
    ]
    assert [next(name for name in rows if name.startswith(e)) for e in expected]
    assert len(rows) == len(expected) and "out of memory" not in "\n".join(lines)
    seconds = re.findall(r"\d+\.\d+ s\b", "\n".join(lines[2:]))
    assert len(seconds) == len(expected) - 1  # every timed row has its figure (values are not asserted)
    assert re.search(r"training forward\+backward \((\d[\d,]*)M trainable", "\n".join(lines))
