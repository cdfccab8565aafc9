"""Judge throughput against a loopback OpenAI-compatible server with a fixed reply latency.

Shows what concurrency buys when the endpoint is slow, and what a fully cached re-run costs
(no requests: hashing the videos and reading the cache). Uses the demo bench and the scripted
server of the tests.

    python benchmarks/judge_throughput.py [--latency 0.5] [--concurrency 1,4,8]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import tempfile
import time
from pathlib import Path

from sparkle_bench.cli import main as cli  # noqa: E402
from sparkle_bench.testing.judge_server import JudgeServer  # noqa: E402


def timed(args: list[str]) -> float:
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(args) == 0
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the server takes per answer")
    parser.add_argument("--concurrency", default="1,4,8")
    options = parser.parse_args()
    print(f"demo bench, 12 samples, server latency {options.latency} s")
    print(f"{'concurrency':>11} {'first run s':>12} {'req/s':>7} {'cached re-run s':>16}")
    for concurrency in [int(c) for c in options.concurrency.split(",")]:
        server = JudgeServer({}, default=("slow", options.latency, "good"))
        with tempfile.TemporaryDirectory() as tmp:
            args = [
                "judge",
                "--bench",
                "demo",
                "--model",
                "reference",
                "--runs-dir",
                f"{tmp}/runs",
                "--base-url",
                server.url,
                "--judge-cache",
                f"{tmp}/cache",
                "--concurrency",
                str(concurrency),
            ]
            first, again = timed(args), timed(args)
            (Path(tmp) / "runs" / "demo-reference" / "judge.jsonl").unlink()  # records gone, cache kept
            from_cache = timed(args)
        server.close()
        print(
            f"{concurrency:>11} {first:>12.2f} {len(server.log) / first:>7.2f} {from_cache:>16.2f}   "
            f"(records kept: {again:.2f} s)"
        )


if __name__ == "__main__":
    main()
