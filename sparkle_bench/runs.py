"""A run folder: ``runs/<name>/`` with provenance, outputs, per-sample records and the summary."""

from __future__ import annotations

import hashlib
import json
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

from . import __version__
from .bench import Bench, open_bench, select

PROVENANCE_FILE = "provenance.json"


class RunMismatchError(RuntimeError):
    """An existing run folder made with another bench or model."""


def default_run_name(bench: Bench, model_spec: str, suffix: str = "") -> str:
    if model_spec.startswith("command:"):  # a whole command line: named by its hash
        model_spec = f"command-{hashlib.sha1(model_spec.encode()).hexdigest()[:8]}"
    slug = re.sub(
        r"[^A-Za-z0-9._-]+", "-", model_spec.split("/")[-1] if model_spec.startswith("precomputed:") else model_spec
    )
    return f"{bench.name}-{slug.strip('-')}{suffix}"


def default_label(model_spec: str, suffix: str = "") -> str:
    """What tables call a run unless told (``--label``): the adapter's name, the folder's name
    for ``precomputed:DIR``, the class for ``package.module:Class``; never a long path."""
    name, _, arg = model_spec.partition(":")
    if name == "precomputed" and arg:
        return Path(arg).name + suffix
    if "." in name and arg.isidentifier():
        return arg + suffix
    return name + suffix


def run_label(provenance: dict) -> str:
    return provenance.get("label") or default_label(provenance["model"])


def harness_git_hash() -> str:
    """The checkout's commit when the package runs from one; "unknown" when installed (its folder may sit inside
    another repository, e.g. a project's .venv, whose commit says nothing about the harness)."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return "unknown"
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
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


def open_run(
    run_dir: Path,
    bench: Bench,
    model_spec: str,
    arguments: dict,
    label: str | None = None,
    suffix: str = "",
    metrics: dict[str, str] | None = None,
) -> dict:
    """Create or re-open a run; refuse to mix benches or models in one folder. The display
    ``label`` is kept from an earlier call unless a new one is given (``suffix`` as in the run name);
    ``metrics`` (name -> ``module:Class`` of each metric scored) adds to those recorded before."""
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / PROVENANCE_FILE
    old: dict = {}
    if path.is_file():
        old = json.loads(path.read_text())
        for key, new in (("model", model_spec), ("bench_checksum", bench.checksum)):
            if old.get(key) != new:
                raise RunMismatchError(
                    f"run {run_dir} was made with {key} {old.get(key)!r}, not {new!r}; "
                    f"pick another --run-name or remove the folder"
                )
    provenance = {
        "harness_version": __version__,
        "git_hash": harness_git_hash(),
        "bench": bench.name,
        "bench_root": str(bench.root),
        "bench_checksum": bench.checksum,
        "selection": bench.selection,
        "sample_ids": [s.id for s in bench.samples],
        "model": model_spec,
        "label": label or old.get("label") or default_label(model_spec, suffix),
        "arguments": {k: v for k, v in arguments.items() if f"--{k.replace('_', '-')}" not in SECRET_FLAGS},
        "metrics": {**old.get("metrics", {}), **(metrics or {})},
        "python": platform.python_version(),
        "command": " ".join(redacted_argv(sys.argv[1:])),
        "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_provenance(run_dir, provenance)
    return provenance


def read_provenance(run_dir: Path) -> dict:
    """A run's provenance; the metrics it recorded become known by name in this process, so every
    view of the run finds their declarations (header, direction, order, tolerance)."""
    from .metrics import remember

    path = Path(run_dir) / PROVENANCE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no {PROVENANCE_FILE})")
    provenance = json.loads(path.read_text())
    remember(provenance.get("metrics") or {})
    return provenance


def bench_of_run(run_dir: Path):
    """The bench selection a run was made on, from its provenance."""
    provenance = read_provenance(run_dir)
    spec = "demo" if provenance["bench"] == "demo" else provenance["bench_root"]
    if provenance["bench"] == "openve":
        spec = provenance["arguments"]["bench"]
    return select(open_bench(spec), ids=provenance["sample_ids"]), provenance


def write_provenance(run_dir: Path, provenance: dict) -> None:
    path = Path(run_dir) / PROVENANCE_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(provenance, indent=2) + "\n")
    tmp.replace(path)
