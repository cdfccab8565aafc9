"""Named subsets stored as JSON under ``data_manifests/subsets/`` (e.g. ``smoke`` for users' CI).

A subset names ids per bench, or a rule (``per_theme``) that picks the same samples of a given
bench every time; the resolved ids are written into each run's provenance.
"""

from __future__ import annotations

import json
from pathlib import Path

from .bench import Bench, BenchError, select
from .registry import UnknownNameError

SUBSETS_DIR = Path(__file__).resolve().parent.parent / "data_manifests" / "subsets"


def subset_names() -> list[str]:
    return sorted(p.stem for p in SUBSETS_DIR.glob("*.json"))


def apply_subset(bench: Bench, name: str) -> Bench:
    path = Path(name) if name.endswith(".json") else SUBSETS_DIR / f"{name}.json"
    if not path.is_file():
        import difflib

        hints = difflib.get_close_matches(name, subset_names(), n=3)
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise UnknownNameError(f"unknown subset {name!r}.{hint} Known: {', '.join(subset_names()) or 'none'}")
    spec = json.loads(path.read_text())
    ids = spec.get("ids", {}).get(bench.name)
    if ids is not None:
        chosen = select(bench, ids=ids)
    elif "per_theme" in spec:
        chosen = select(bench, per_theme=int(spec["per_theme"]))
    else:
        raise BenchError(str(path), [f"subset {name!r} has no ids for bench {bench.name!r} and no per_theme rule"])
    return chosen.with_samples(list(chosen.samples), subset=path.stem)
