"""``--model-option KEY=VALUE`` strings turned into an adapter's typed settings (a dataclass)."""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, TypeVar

from .base import AdapterError

T = TypeVar("T")
TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _convert(text: str, kind: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        return None if text.lower() in ("", "none") else _convert(text, options[0])
    if kind is bool:
        if text.lower() not in TRUE + FALSE:
            raise ValueError(f"expected true or false, got {text!r}")
        return text.lower() in TRUE
    return kind(text)


def parse_options(defaults: T, options: dict[str, str], model: str) -> T:
    """``defaults`` with the given options applied; unknown keys and bad values raise AdapterError."""
    hints = typing.get_type_hints(type(defaults))
    names = [f.name for f in dataclasses.fields(defaults)]
    values = {}
    for key, text in options.items():
        if key not in names:
            close = difflib.get_close_matches(key, names, n=2)
            hint = f" Did you mean {' or '.join(close)}?" if close else ""
            raise AdapterError(f"model {model!r} has no option {key!r}.{hint} Options: {', '.join(names)}")
        try:
            values[key] = _convert(text, hints[key])
        except ValueError as exc:
            raise AdapterError(f"model {model!r}: option {key}={text!r}: {exc}") from exc
    return dataclasses.replace(defaults, **values)
