"""One console for the whole harness: progress on stderr, one line per problem."""

from __future__ import annotations

from rich.console import Console

console = Console(stderr=True, highlight=False)


def warn(message: str) -> None:
    console.print(f"[yellow]warning[/]: {message}", soft_wrap=True)


def problem(kind: str, where: str, cause: str) -> None:
    """One line per sample-level problem: what happened, which sample, why."""
    console.print(f"[red]{kind}[/] {where}: {cause}", soft_wrap=True)
