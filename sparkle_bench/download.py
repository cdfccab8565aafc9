"""``sparkle-bench download``: a bench into a local root (whole, or some themes), or a model's hub
weights into the Hugging Face cache (every repository it reads, only the files it reads)."""

from __future__ import annotations

from pathlib import Path

from .log import console
from .models.hub import HubRepo

HUB = {
    "sparkle": "stdKonjac/Sparkle-Bench",
    "openve": "Lewandofski/OpenVE-Bench",
}


def bench_repo(bench: str, themes: list[str] | None = None) -> HubRepo:
    """The dataset repository of a bench, limited to ``themes`` (Sparkle-Bench's layout: per-theme
    CSV and metadata, ``source_videos/{theme}/``, ``ref_images/{theme}/``)."""
    if bench not in HUB:
        raise ValueError(f"unknown bench {bench!r}; known: {', '.join(HUB)}")
    patterns = None
    if themes and bench == "sparkle":
        patterns = tuple(
            p
            for t in themes
            for p in (f"{t}_bench.csv", f"{t}_metadata.jsonl", f"source_videos/{t}/*", f"ref_images/{t}/*")
        )
    return HubRepo(
        HUB[bench],
        patterns,
        repo_type="dataset",
        why=f"{bench} bench" + (f" ({', '.join(themes)})" if patterns else ""),
    )


def download_bench(bench: str, root: Path, themes: list[str] | None = None) -> Path:
    from .models.weights import fetch

    fetch([bench_repo(bench, themes)], local_dir=Path(root))
    return Path(root)


def download_model(spec: str, options: dict[str, str]) -> list[Path]:
    """Fetch what ``--model spec`` with these ``--model-option``s reads from the hub (nothing for a
    model whose weights are local folders or that has none)."""
    from .models import load_model
    from .models.weights import fetch

    adapter = load_model(spec, options)
    repos = adapter.hub_repos()
    if not repos:
        console.print(f"{adapter.spec} reads nothing from the Hugging Face hub; nothing to download")
        return []
    console.print(
        f"{adapter.spec} reads {len(repos)} hub repositor{'y' if len(repos) == 1 else 'ies'} (only the files it uses):"
    )
    return fetch(repos)
