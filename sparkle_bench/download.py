"""Fetch a bench from the Hugging Face hub into a local root (whole, or some themes)."""

from __future__ import annotations

from pathlib import Path

HUB = {
    "sparkle": "stdKonjac/Sparkle-Bench",
    "openve": "Lewandofski/OpenVE-Bench",
}


def download_bench(bench: str, root: Path, themes: list[str] | None = None) -> Path:
    from huggingface_hub import snapshot_download

    if bench not in HUB:
        raise ValueError(f"unknown bench {bench!r}; known: {', '.join(HUB)}")
    patterns = None
    if themes and bench == "sparkle":
        patterns = [p for t in themes for p in (f"{t}_bench.csv", f"{t}_metadata.jsonl", f"source_videos/{t}/*", f"ref_images/{t}/*")]
    snapshot_download(repo_id=HUB[bench], repo_type="dataset", local_dir=str(root), allow_patterns=patterns)
    return Path(root)
