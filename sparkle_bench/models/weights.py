"""Weights as users of diffusers expect: every hub repository a model reads, and only the files it
reads, fetched into the normal Hugging Face cache with huggingface_hub's own progress bars and
resume, sizes printed first; and the check ``eval``/``infer`` make before anything loads (fetch
what is missing when the hub is reachable, else one line naming every missing repository)."""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..bench import Sample
from ..log import console
from .base import ModelAdapter, WeightsError
from .hub import HubRepo


class HubUnavailableError(OSError):
    """The hub could not list or serve a repository (unreachable, not found, refused, stopped): one line."""


@dataclass(frozen=True)
class RepoPlan:
    """What fetching one repository means: its selected files and their bytes, and of those what
    is not cached yet."""

    repo: HubRepo
    files: int
    size: int
    files_to_download: int
    to_download: int


def human_size(n: int) -> str:
    """Bytes in decimal units, as the hub shows them (``16.2 GB``)."""
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000:
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _snapshot(repo: HubRepo, **kwargs):
    from huggingface_hub import snapshot_download

    patterns = list(repo.allow_patterns) if repo.allow_patterns is not None else None
    return snapshot_download(
        repo.repo_id, repo_type=repo.repo_type, revision=repo.revision, allow_patterns=patterns, **kwargs
    )


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"


def _silent_bar() -> type:
    """A progress-bar class that shows nothing (the dry run that sizes a download is not progress)."""
    from tqdm.auto import tqdm

    class Silent(tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, "disable": True})

    return Silent


def cached_snapshot(repo: HubRepo) -> Path | None:
    """The repository's folder in the local cache when every file it selects is there, else None.
    Loaders should ask with the same ``allow_patterns``: huggingface_hub refuses a partial snapshot
    (one fetched with patterns) when asked for the whole repository."""
    try:
        return Path(_snapshot(repo, local_files_only=True))
    except (OSError, ValueError):  # not cached, partial (IncompleteSnapshotError), or an invalid id (HFValidationError)
        return None


def missing_repos(repos: Iterable[HubRepo]) -> list[HubRepo]:
    return [repo for repo in repos if cached_snapshot(repo) is None]


def plan(repos: Sequence[HubRepo], local_dir: Path | None = None) -> list[RepoPlan]:
    """Ask the hub what each repository's selected files weigh and which are not cached yet;
    :class:`HubUnavailableError` naming every repository it could not list or that has none of them."""
    plans, failures = [], []
    for repo in repos:
        try:
            files = _snapshot(
                repo, dry_run=True, local_dir=str(local_dir) if local_dir else None, tqdm_class=_silent_bar()
            )
        except OSError as exc:  # DryRunError (unreachable, not found, refused), RevisionNotFoundError
            failures.append(f"{repo.repo_id} ({_cause(exc.__cause__ or exc)})")
            continue
        if not files:
            failures.append(f"{repo.repo_id} (no file matches {', '.join(repo.allow_patterns or ())})")
            continue
        todo = [f for f in files if f.will_download]
        plans.append(
            RepoPlan(
                repo, len(files), sum(f.file_size or 0 for f in files), len(todo), sum(f.file_size or 0 for f in todo)
            )
        )
    if failures:
        from huggingface_hub import constants

        raise HubUnavailableError(f"the hub at {constants.ENDPOINT} could not list {', '.join(failures)}")
    return plans


def plan_lines(plans: Sequence[RepoPlan]) -> list[str]:
    """Per repository and in total: files, size, and how much of it is still to download."""
    width = max(len(p.repo.repo_id) for p in plans)
    lines = [
        f"  {p.repo.repo_id:{width}s}  {p.files:4d} files  {human_size(p.size):>9s}  "
        f"({human_size(p.to_download)} to download)  {p.repo.why}".rstrip()
        for p in plans
    ]
    files, size, todo = (sum(getattr(p, k) for p in plans) for k in ("files", "size", "to_download"))
    lines.append(f"total: {files} files, {human_size(size)}, {human_size(todo)} to download")
    return lines


def _say(line: str) -> None:
    console.print(line, soft_wrap=True, markup=False)


def fetch(repos: Sequence[HubRepo], local_dir: Path | None = None) -> list[Path]:
    """Print the sizes, then fetch every repository's selected files (huggingface_hub's progress
    bars; a re-run keeps finished files and a dropped connection resumes from its byte)."""
    import httpx2

    plans = plan(repos, local_dir)
    for line in plan_lines(plans):
        _say(line)
    folders = []
    for p in plans:
        where = str(local_dir) if local_dir else None
        try:
            folders.append(Path(_snapshot(p.repo, local_dir=where, local_files_only=not p.files_to_download)))
        except (OSError, httpx2.HTTPError) as exc:  # HfHubHTTPError is both
            raise HubUnavailableError(
                f"downloading {p.repo.repo_id} stopped ({_cause(exc)}); run the same command again to resume"
            ) from exc
    return folders


def download_command(spec: str, options: Iterable[tuple[str, str]] = ()) -> str:
    """The command that fetches a model's weights, with the options that choose them."""
    words = ["sparkle-bench", "download", "--model", spec]
    for key, value in options:
        words += ["--model-option", f"{key}={value}"]
    return shlex.join(words)


def ensure_weights(
    adapter: ModelAdapter, samples: Iterable[Sample], outputs: Path, model: str, options: Iterable[tuple[str, str]] = ()
) -> None:
    """Before a generating run loads anything: every hub repository the adapter reads is in the
    cache, fetched now when missing and the hub is reachable (and ``HF_HUB_OFFLINE`` is not set);
    otherwise :class:`WeightsError`, one line naming every missing repository and the command that
    fetches them (``model`` and ``options`` as given to eval). Nothing is checked when every output
    already exists."""
    if not adapter.generates:
        return
    repos = adapter.hub_repos()
    if not repos or all(adapter.locate(sample, outputs) is not None for sample in samples):
        return
    missing = missing_repos(repos)
    if not missing:
        return
    from huggingface_hub import constants

    names = ", ".join(r.repo_id for r in missing)
    command = download_command(model, options)
    if constants.is_offline_mode():
        raise WeightsError(
            f"{adapter.spec} needs {names}, not in the local Hugging Face cache, and HF_HUB_OFFLINE is set: "
            f"fetch them with `{command}` where the hub is reachable"
        )
    console.print(f"{adapter.spec}: fetching the weights not in the local Hugging Face cache")
    try:
        fetch(missing)
    except HubUnavailableError as exc:
        raise WeightsError(
            f"{adapter.spec} needs {names}, not in the local Hugging Face cache: {exc}; `{command}` fetches them"
        ) from exc
