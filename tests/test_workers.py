"""Scoring on several processes: the same records as one process, and a killed run resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sparkle_bench.cli import main
from sparkle_bench.tables import run_records


@pytest.fixture()
def outputs(demo_root, tmp_path):
    """The demo's good edits in a flat folder, one of them corrupt (a failure must cross processes too)."""
    out = tmp_path / "outputs"
    out.mkdir()
    for path in (demo_root / "reference").rglob("*_edited.mp4"):
        shutil.copy(path, out / path.name)
    (out / "Demo_style_001_edited.mp4").write_bytes(b"\x00" * 1000)
    return out


def _without_timing(records: dict[str, dict]) -> dict[str, dict]:
    return {k: {f: v for f, v in r.items() if f != "seconds"} for k, r in records.items()}


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment holds ``marker`` (Linux /proc; none elsewhere)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if marker.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:
            continue
    return found


def test_one_and_two_workers_write_identical_records(outputs, tmp_path):
    runs = tmp_path / "runs"
    for workers in ("1", "2"):
        assert (
            main(
                [
                    "score",
                    "--bench",
                    "demo",
                    "--model",
                    f"precomputed:{outputs}",
                    "--runs-dir",
                    str(runs),
                    "--run-name",
                    f"w{workers}",
                    "--workers",
                    workers,
                ]
            )
            == 0
        )
    one, two = run_records(runs / "w1"), run_records(runs / "w2")
    assert _without_timing(one) == _without_timing(two)
    assert len(one) == 12 and [r["status"] for r in one.values()].count("ok") == 11
    assert one["Demo_style_001"]["status"] == "failed" and one["Demo_time_000"]["metrics"]["fg_psnr"] > 30
    assert (runs / "w1/summary.csv").read_text() == (runs / "w2/summary.csv").read_text()


def test_kill_with_two_workers_then_resume_matches_uninterrupted(outputs, tmp_path):
    args = [
        "--bench",
        "demo",
        "--model",
        f"precomputed:{outputs}",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--workers",
        "2",
    ]
    assert main(["eval", *args, "--run-name", "clean"]) == 0
    tag = f"{os.getpid()}-{time.time_ns()}"  # in the environment of the run and of its workers
    proc = subprocess.Popen(
        [sys.executable, "-m", "sparkle_bench.cli", "eval", *args, "--run-name", "killed"],
        env={**os.environ, "SPARKLE_TEST_RUN": tag},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    records = tmp_path / "runs/killed/samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not records.exists() or records.read_text().count("\n") < 3):
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = records.read_text().count("\n")
    assert 3 <= done_before < 12, "the kill must land mid-run"
    deadline = time.monotonic() + 15
    while _processes_with(f"SPARKLE_TEST_RUN={tag}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_with(f"SPARKLE_TEST_RUN={tag}") == [], "workers outlived their killed parent"
    assert main(["eval", *args, "--run-name", "killed"]) == 0
    lines = records.read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(
        run_records(tmp_path / "runs/clean")
    )  # none twice
    assert (tmp_path / "runs/killed/summary.csv").read_text() == (tmp_path / "runs/clean/summary.csv").read_text()
