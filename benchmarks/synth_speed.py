"""Seconds per sample per stage of the synthesis pipeline, and the wall time of whole runs.

With tiny random models on CPU (the tests' models, demo clips at 96x64, 9 frames): the local loop
against local Ray (two CPUs: actor start-up is most of a short run). With ``--real``: stage 1 alone
over the real clips at Sparkle's 1280x720, 81 frames (decode, flow, cuts, encode).

    python benchmarks/synth_speed.py [--clips 4] [--real ../shared/data/real]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # tiny models: thread hand-offs cost more than the work

from sparkle_bench.cli import main as cli  # noqa: E402
from sparkle_bench.demo import demo_clips, render_source  # noqa: E402
from sparkle_bench.synth.config import load_config  # noqa: E402
from sparkle_bench.synth.status import funnel  # noqa: E402
from sparkle_bench.testing.tiny_synth_models import ScriptedVLM, build_tiny_models, config_text  # noqa: E402
from sparkle_bench.video import write_video  # noqa: E402


def timed_run(config: Path, *flags: str) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        assert cli(["synth", "run", str(config), *flags]) == 0
    return time.perf_counter() - started


def per_stage(config: Path) -> str:
    rows = [r for r in funnel(load_config(config))[0] if r["theme"] == "all" and r["in"]]
    return "  ".join(f"stage {r['stage']} {r['seconds_per_sample']:.2f}s ({r['accepted']}/{r['in']})" for r in rows)


def tiny_runs(clips: int, root: Path) -> None:
    tiny = build_tiny_models(root / "models")
    corpus = root / "clips"
    corpus.mkdir()
    for clip in demo_clips()[:clips]:
        write_video(corpus / f"{clip.id}.mp4", render_source(clip)[0], 16)
    server = ScriptedVLM()
    try:
        for name, flags in (("local loop", ("--no-ray",)), ("local Ray, 2 CPUs", ())):
            config = root / f"{name.split()[1]}.toml"
            config.write_text(config_text(tiny, corpus, server.url, root / name.replace(" ", "-").replace(",", "")))
            wall = timed_run(config, *flags)
            print(f"{name:18s} {clips} clips: {wall:6.1f}s wall  |  {per_stage(config)}")
    finally:
        server.close()


def real_stage1(real: Path, root: Path) -> None:
    config = root / "real.toml"
    config.write_text(f'out = "{root / "real-out"}"\n[corpus]\npath = "{real}"\n[stage1]\nvlm_check = false\n')
    clips = len(list(real.rglob("*.mp4")))
    wall = timed_run(config, "--stages", "1", "--no-ray")
    print(f"stage 1, {clips} real clips at 1280x720: {wall:6.1f}s wall  |  {per_stage(config)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument(
        "--real", type=Path, help="folder of real clips (e.g. ../shared/data/real) for stage 1 at full size"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        tiny_runs(args.clips, Path(folder))
        if args.real:
            real_stage1(args.real.resolve(), Path(folder))


if __name__ == "__main__":
    main()
