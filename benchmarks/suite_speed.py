"""Decode-only vs the whole objective suite (CLIP excluded) on the same files, per video.

Target (issue 4): on a 2-core machine the suite costs at most 2x the decode time of the pair it
reads, and peak memory stays under 2 GB for an 81-frame 1280x720 pair.

    python benchmarks/suite_speed.py [--real ../shared/data/real] [--work-height 288]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

from sparkle_bench.masks import find_mask
from sparkle_bench.metrics import DEFAULT_METRICS, load_metrics
from sparkle_bench.pair import load_pair


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/real")
    parser.add_argument("--work-height", type=int, default=288)
    args = parser.parse_args()
    metrics = load_metrics(DEFAULT_METRICS)
    rows = []
    for source in sorted((args.real / "pairs").glob("*_source.mp4")):
        stem = source.name[: -len("_source.mp4")]
        edited, mask = source.with_name(f"{stem}_edited.mp4"), find_mask(args.real / "masks", "", stem)
        start = time.perf_counter()
        pair = load_pair(source, edited, mask, args.work_height)
        decode = time.perf_counter() - start
        start = time.perf_counter()
        for metric in metrics:
            metric(pair)
        suite = time.perf_counter() - start
        rows.append((stem, decode, suite))
        print(f"{stem:28s} decode {decode:6.3f}s  metrics {suite:6.3f}s  ratio {suite / decode:5.2f}x")
    decode_total, suite_total = sum(r[1] for r in rows), sum(r[2] for r in rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"TOTAL {len(rows)} pairs: decode {decode_total:.2f}s, metrics {suite_total:.2f}s, "
        f"ratio {suite_total / decode_total:.2f}x (target <= 2x); peak RSS {peak_mb:.0f} MB (target < 2048)"
    )


if __name__ == "__main__":
    main()
