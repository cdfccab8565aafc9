"""The synthesis pipeline's own cost at corpus scale, with no model and no video work: planning a
corpus of N clip files (fingerprints, the source plan, the decision records), then a weight-free
two-stage pipeline over it on local Ray (stage 1 accepts, stage 2 rejects a third), so what is
measured is the per-row overhead of streaming, records and the ledger.

    python benchmarks/synth_scale.py [--rows 100000] [--cpus 2]

Targets (issue 15): planning 100K clips < 30 s, overhead < 1 ms per row.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
import uuid
from pathlib import Path

from sparkle_bench.synth.cluster import ray_session  # noqa: E402
from sparkle_bench.synth.config import load_config  # noqa: E402
from sparkle_bench.synth.corpus import list_corpus, plan_sources  # noqa: E402
from sparkle_bench.synth.layout import Layout  # noqa: E402
from sparkle_bench.synth.ledger import ACCEPTED, Outcome  # noqa: E402
from sparkle_bench.synth.pipeline import plan, run_local, run_ray  # noqa: E402
from sparkle_bench.synth.steps import RunContext, Step, stage_digests  # noqa: E402


def accept(record, models, cfg, layout) -> Outcome:
    return Outcome(ACCEPTED, data={"clip": {"frames": 81}})


def reject_a_third(record, models, cfg, layout) -> Outcome:
    if int(record["id"][-12:], 16) % 3 == 0:
        return Outcome.reject("edit_score", "a third of the samples")
    return Outcome(ACCEPTED, data={"prompt": "x"})


def make_corpus(folder: Path, rows: int) -> None:
    """``rows`` distinct small files (and 10 byte-identical copies of the first ones)."""
    for index in range(rows):
        (folder / f"{index // 1000:03d}").mkdir(exist_ok=True)
        (folder / f"{index // 1000:03d}" / f"clip{index:07d}.mp4").write_bytes(f"clip {index}".encode() * 8)
    for index in range(10):
        (folder / f"copy{index}.mp4").write_bytes(f"clip {index}".encode() * 8)


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--local-rows", type=int, default=5_000, help="rows for the in-process baseline")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        (root / "clips").mkdir()
        _, made = timed(lambda: make_corpus(root / "clips", args.rows))
        config = root / "synth.toml"
        config.write_text(f'out = "{root / "out"}"\n[corpus]\npath = "{root / "clips"}"\n[stage1]\nvlm_check = false\n')
        cfg = load_config(config)
        layout, digests = Layout(cfg.out), stage_digests(cfg)
        print(f"corpus: {args.rows:,} files (+10 copies), written in {made:.1f}s")

        def planning():
            clips = list_corpus(cfg.settings["corpus"]["path"], "src_video")
            sources = plan_sources(layout, clips, cfg.themes, "Sparkle")
            return sources, plan(layout, sources.samples, digests, 1, 2)[0]

        (sources, rows), first = timed(planning)
        (_, rows_again), again = timed(planning)
        print(
            f"planning, first time (fingerprints every file): {first:6.1f}s  ({first / args.rows * 1e3:.3f} ms/clip), "
            f"{len(rows):,} samples, {sources.duplicates} duplicates"
        )
        print(f"planning, again (fingerprints cached):          {again:6.1f}s  ({again / args.rows * 1e3:.3f} ms/clip)")

        steps = [
            Step("stage1", 1, accept, None, True, 0.5, 0, args.cpus),
            Step("stage2", 2, reject_a_third, None, True, 0.5, 0, args.cpus),
        ]
        ctx = RunContext(cfg, digests, uuid.uuid4().hex)
        layout.run_file.write_text(f'{{"run": "{ctx.run_id}"}}')
        local_rows = [dict(r, id=r["id"]) for r in rows[: args.local_rows]]
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            kept_local, local = timed(lambda: sum(1 for _ in run_local(local_rows, steps, ctx)))
        print(
            f"in-process loop, 2 steps, {len(local_rows):,} rows: {local:6.1f}s  "
            f"({local / len(local_rows) * 1e3:.3f} ms/row, "
            f"{kept_local:,} kept)"
        )
        with ray_session("", args.cpus), contextlib.redirect_stdout(io.StringIO()):
            kept, wall = timed(lambda: sum(1 for _ in run_ray(rows, steps, ctx)))
        print(
            f"local Ray ({args.cpus} CPUs), 2 steps, {len(rows):,} rows: {wall:6.1f}s  "
            f"({wall / len(rows) * 1e3:.3f} ms/row "
            f"all in, {len(rows) / wall:,.0f} rows/s, {kept:,} kept)"
        )
        _, replan = timed(lambda: plan(layout, sources.samples, digests, 1, 2))
        print(f"planning after the run ({2 * len(rows) - len(rows) // 3:,} decisions to read): {replan:6.1f}s")
        os.sync()


if __name__ == "__main__":
    main()
