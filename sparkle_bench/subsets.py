"""Named subsets shipped as package data under ``sparkle_bench/data/subsets/`` (e.g. ``smoke`` for
users' CI), read through ``importlib.resources`` so they are found wherever the package is installed.

A subset names ids per bench, or a rule (``per_theme``) that picks the same samples of a given
bench every time; the resolved ids are written into each run's provenance.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .bench import Bench, BenchError, select
from .registry import UnknownNameError

SUBSETS_DIR = resources.files("sparkle_bench") / "data" / "subsets"


def subset_names() -> list[str]:
    return sorted(p.name.removesuffix(".json") for p in SUBSETS_DIR.iterdir() if p.name.endswith(".json"))


def apply_subset(bench: Bench, name: str) -> Bench:
    """``name``: a shipped subset's name, or the path of a ``.json`` file of the same form."""
    path = Path(name) if name.endswith(".json") else SUBSETS_DIR / f"{name}.json"
    if not path.is_file():
        import difflib

        hints = difflib.get_close_matches(name, subset_names(), n=3)
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise UnknownNameError(f"unknown subset {name!r}.{hint} Known: {', '.join(subset_names()) or 'none'}")
    spec = json.loads(path.read_text(encoding="utf-8"))
    ids = spec.get("ids", {}).get(bench.name)
    if ids is not None:
        chosen = select(bench, ids=ids)
    elif "per_theme" in spec:
        chosen = select(bench, per_theme=int(spec["per_theme"]))
    else:
        raise BenchError(str(path), [f"subset {name!r} has no ids for bench {bench.name!r} and no per_theme rule"])
    return chosen.with_samples(list(chosen.samples), subset=path.name.removesuffix(".json"))
