"""What probing costs: :func:`sparkle_bench.video.probe` (PyAV demux of every packet's timestamp plus
one decoded frame) against decord's open-and-decode-frame-0 it replaced, and against loading the
whole pair, per real clip (median of ``--repeat`` interleaved rounds).

    python benchmarks/probe_speed.py [--real ../shared/data/real] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import decord

from sparkle_bench.pair import load_pair
from sparkle_bench.video import probe


def _decord_probe(path: Path) -> None:
    reader = decord.VideoReader(str(path), ctx=decord.cpu(0))
    reader[0]
    reader.get_avg_fps()


def _seconds(call, *args) -> float:
    started = time.perf_counter()
    call(*args)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/real")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    files = sorted((args.real / "pairs").glob("*.mp4"))
    new, old = [], []
    for _ in range(args.repeat):
        new.append(sum(_seconds(probe, f) for f in files) / len(files))
        old.append(sum(_seconds(_decord_probe, f) for f in files) / len(files))
    source = files[1] if files[1].name.endswith("_source.mp4") else files[0]
    pair = statistics.median(
        _seconds(load_pair, source, source.with_name(source.name.replace("_source", "_edited")), None)
        for _ in range(max(1, args.repeat // 2))
    )
    print(
        f"{len(files)} files, 1280x720, 81 frames: probe {statistics.median(new) * 1000:.1f} ms per file "
        f"(decord open + frame 0: {statistics.median(old) * 1000:.1f} ms); "
        f"load_pair at height 288: {pair * 1000:.0f} ms, "
        f"so two probes are {2 * statistics.median(new) / pair:.1%} of loading a pair"
    )


if __name__ == "__main__":
    main()
