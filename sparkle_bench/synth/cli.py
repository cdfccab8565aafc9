"""Placeholder: being built."""


def register(sub) -> None:
    """Add this package's commands to the CLI."""
