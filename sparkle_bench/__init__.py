"""sparkle-bench: evaluation harness for instruction-guided video background replacement.

From Python: ``sparkle_bench.evaluate(bench="demo", model="still-composite", limit=8)`` returns a
:class:`~sparkle_bench.api.Result` (summary table, per-sample records, run folder); the stages and
their settings live in :mod:`sparkle_bench.api`. Importing the package imports none of it (nor
torch): the names below load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# ``judge`` stays in sparkle_bench.api: here the name is the sparkle_bench.judge package.
__all__ = [
    "__version__",
    "evaluate",
    "run_eval",
    "infer",
    "score",
    "summarize",
    "Result",
    "EvalSettings",
    "RunSettings",
    "ScoreSettings",
    "Selection",
]

if TYPE_CHECKING:
    from .api import (
        EvalSettings,
        Result,
        RunSettings,
        ScoreSettings,
        Selection,
        evaluate,
        infer,
        run_eval,
        score,
        summarize,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
