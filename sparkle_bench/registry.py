"""Lazy string registries: names map to ``"module:Attr"`` and import only when used.

Listing model names never imports an entry, so ``sparkle-bench ls`` stays free of torch. A registry
may instead *discover* its entries (metrics: every ``Metric`` class in the package's modules), once,
on the first listing or unknown name, so that adding a built-in is adding one file.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any, Callable


class UnknownNameError(KeyError):
    """A name that is not registered; the message carries "did you mean" hints."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry:
    """A table of ``name -> "pkg.module:Attr"`` entries of one kind (models, metrics, ...)."""

    def __init__(
        self, kind: str, entries: dict[str, str], discover: Callable[[], dict[str, str]] | None = None
    ) -> None:
        self.kind = kind
        self._entries = dict(entries)
        self._discover = discover

    def _discovered(self) -> None:
        if self._discover is not None:
            found, self._discover = self._discover(), None
            self._entries = {**found, **self._entries}

    def names(self) -> list[str]:
        self._discovered()
        return sorted(self._entries)

    def add(self, name: str, target: str) -> None:
        """Make ``name`` resolve to ``target`` (``module:Attr``) unless it already names something."""
        self._entries.setdefault(name, target)

    def get(self, name: str) -> str | None:
        """The ``module:Attr`` string registered for ``name``, or None (no hints, no error)."""
        if name not in self._entries:
            self._discovered()
        return self._entries.get(name)

    def target(self, name: str) -> str:
        """The ``module:Attr`` string for ``name``; a dotted ``module:Attr`` passes through."""
        if (found := self.get(name)) is not None:
            return found
        module, _, attr = name.partition(":")
        if attr and "." in module and attr.isidentifier():
            return name
        hints = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())} (or give 'package.module:Class')."
        )

    def load(self, name: str) -> Any:
        module, _, attr = self.target(name).partition(":")
        return getattr(importlib.import_module(module), attr)
