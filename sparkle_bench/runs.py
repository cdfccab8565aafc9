"""A run folder: ``runs/<name>/`` with provenance, outputs, per-sample records and the summary."""

from __future__ import annotations

import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from . import __version__
from .bench import Bench

PROVENANCE_FILE = "provenance.json"


class RunMismatchError(RuntimeError):
    """An existing run folder made with another bench or model."""


def default_run_name(bench: Bench, model_spec: str, suffix: str = "") -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_spec.split("/")[-1] if model_spec.startswith("precomputed:") else model_spec)
    return f"{bench.name}-{slug.strip('-')}{suffix}"


def harness_git_hash() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


SECRET_FLAGS = ("--api-key",)


def redacted_argv(argv: list[str]) -> list[str]:
    """The command line with the values of secret flags replaced (``--api-key X``, ``--api-key=X``)."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in SECRET_FLAGS:
            out.append("<redacted>")
        elif arg.startswith(tuple(f"{flag}=" for flag in SECRET_FLAGS)):
            out.append(arg.split("=", 1)[0] + "=<redacted>")
        else:
            out.append(arg)
    return out


def open_run(run_dir: Path, bench: Bench, model_spec: str, arguments: dict) -> dict:
    """Create or re-open a run; refuse to mix benches or models in one folder."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / PROVENANCE_FILE
    if path.is_file():
        old = json.loads(path.read_text())
        for key, new in (("model", model_spec), ("bench_checksum", bench.checksum)):
            if old.get(key) != new:
                raise RunMismatchError(
                    f"run {run_dir} was made with {key} {old.get(key)!r}, not {new!r}; "
                    f"pick another --run-name or remove the folder"
                )
    provenance = {
        "harness_version": __version__, "git_hash": harness_git_hash(), "bench": bench.name,
        "bench_root": str(bench.root), "bench_checksum": bench.checksum, "selection": bench.selection,
        "sample_ids": [s.id for s in bench.samples], "model": model_spec,
        "arguments": {k: v for k, v in arguments.items() if f"--{k.replace('_', '-')}" not in SECRET_FLAGS},
        "python": platform.python_version(), "command": " ".join(redacted_argv(sys.argv[1:])),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(provenance, indent=2) + "\n")
    tmp.replace(path)
    return provenance
