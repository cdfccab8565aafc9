"""Lazy string registries: names map to ``"module:Attr"`` and import only when used.

Listing names never imports an entry, so ``sparkle-bench ls`` stays free of torch.
"""

from __future__ import annotations

import difflib
import importlib
from typing import Any


class UnknownNameError(KeyError):
    """A name that is not registered; the message carries "did you mean" hints."""

    def __str__(self) -> str:  # KeyError quotes its message; we want it plain
        return str(self.args[0])


class Registry:
    """A table of ``name -> "pkg.module:Attr"`` entries of one kind (models, metrics, ...)."""

    def __init__(self, kind: str, entries: dict[str, str]) -> None:
        self.kind = kind
        self._entries = dict(entries)

    def names(self) -> list[str]:
        return sorted(self._entries)

    def target(self, name: str) -> str:
        """The ``module:Attr`` string for ``name``; a dotted ``module:Attr`` passes through."""
        if name in self._entries:
            return self._entries[name]
        module, _, attr = name.partition(":")
        if attr and "." in module and attr.isidentifier():
            return name
        hints = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(h) for h in hints)}?" if hints else ""
        raise UnknownNameError(
            f"unknown {self.kind} {name!r}.{hint} Known: {', '.join(self.names())} "
            f"(or give 'package.module:Class')."
        )

    def load(self, name: str) -> Any:
        module, _, attr = self.target(name).partition(":")
        return getattr(importlib.import_module(module), attr)
