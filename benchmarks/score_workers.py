"""Scoring throughput (samples/s) on 1, 2 and N worker processes, and the projected time for the
whole Sparkle-Bench (458 samples).

Goal (issue 8): the whole bench scored in under 2 minutes on a 16-core machine. The shared real
pairs (81 frames, 1280x720, with masks) are each scored ``--repeat`` times under distinct ids,
through ``run_scoring`` as ``sparkle-bench score`` runs it (pool start-up included), so every
worker count does the same work; the records of every worker count must be identical.

    python benchmarks/score_workers.py [--real ../shared/data/real] [--repeat 2] [--workers 1,2,16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from sparkle_bench.bench import Bench, Sample
from sparkle_bench.metrics import DEFAULT_METRICS, load_metrics
from sparkle_bench.models.precomputed import Precomputed
from sparkle_bench.runner import default_workers, run_scoring
from sparkle_bench.tables import run_records

WHOLE_BENCH = 458


def replicated_bench(real: Path, repeat: int, root: Path) -> Bench:
    """Each real pair ``repeat`` times under ids ``<stem>_r<k>``: links to sources, edits and masks."""
    samples = []
    for source in sorted((real / "pairs").glob("*_source.mp4")):
        stem = source.name[: -len("_source.mp4")]
        for k in range(repeat):
            sample_id = f"{stem}_r{k}"
            links = {
                root / "sources" / f"{sample_id}.mp4": source,
                root / "outputs" / f"{sample_id}_edited.mp4": real / "pairs" / f"{stem}_edited.mp4",
                root / "masks" / f"{sample_id}.npz": real / "masks" / f"{stem}_source.npz",
            }
            for link, target in links.items():
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(target.resolve())
            samples.append(Sample(sample_id, stem.split("_")[1], "", root / "sources" / f"{sample_id}.mp4"))
    return Bench("bench", root, tuple(samples), checksum="benchmark", masks_dir=root / "masks")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/real")
    parser.add_argument("--repeat", type=int, default=2, help="times each pair is scored (default 2)")
    parser.add_argument("--workers", help=f"comma-separated worker counts (default: 1,2,{default_workers()})")
    parser.add_argument("--work-height", type=int, default=288)
    args = parser.parse_args()
    counts = sorted({int(w) for w in (args.workers or f"1,2,{default_workers()}").split(",")})
    metrics = load_metrics(DEFAULT_METRICS)
    rates: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bench = replicated_bench(args.real, args.repeat, Path(tmp) / "bench")
        adapter = Precomputed(str(bench.root / "outputs"))
        adapter.setup(bench)
        reference = None
        for workers in counts:
            run_dir = Path(tmp) / f"run-{workers}"
            start = time.perf_counter()
            done = run_scoring(
                bench, adapter, bench.root / "outputs", run_dir, metrics, args.work_height, workers=workers
            )
            elapsed = time.perf_counter() - start
            values = {k: r["metrics"] for k, r in run_records(run_dir).items()}
            same = (
                ""
                if reference is None
                else ("  records identical to 1 worker" if values == reference else "  RECORDS DIFFER")
            )
            reference = reference or values
            rates[workers] = done["ok"] / elapsed
            print(
                f"{workers:3d} worker(s): {done['ok']} samples in {elapsed:6.1f} s = {rates[workers]:.3f} samples/s"
                f" ({rates[workers] / rates[counts[0]]:.2f}x){same}"
            )
    cores, most = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(), max(counts)
    print(
        f"whole bench ({WHOLE_BENCH} samples) with {most} worker(s) on this {cores}-core machine: "
        f"{WHOLE_BENCH / rates[most] / 60:.1f} min"
    )
    per_worker = rates[most] / most
    print(
        f"projected on 16 cores at the per-worker rate measured with {most}: "
        f"{WHOLE_BENCH / (16 * per_worker) / 60:.1f} min "
        f"(goal < 2 min; assumes the scaling seen here holds to 16 workers)"
    )


if __name__ == "__main__":
    main()
