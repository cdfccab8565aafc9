"""What a model reads from the Hugging Face hub, declared by its adapter, so weights can be
fetched (or their absence reported) for every repository at once, before any load."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HubRepo:
    """One hub repository a model needs, and only the files of it that the model reads."""

    repo_id: str
    allow_patterns: tuple[str, ...] | None = None  # None: every file of the repository
    repo_type: str = "model"
    revision: str | None = None
    why: str = ""  # what it is for, as shown to the user: "Wan2.2 base (transformer, vae)"
