"""Judge answers -> scores: one parser and one cap for every backend.

Readable answers: one ``<dimension>: <1-5>`` line per dimension (markdown, numbering and ``/5``
tolerated), a JSON object keyed by dimension, or just the integers in protocol order. A strict
rubric also rejects any other text, so a chatty answer is re-asked instead of guessed at.
"""

from __future__ import annotations

import json
import re

from .rubrics import Dimension, Rubric


class AnswerError(ValueError):
    """An answer that does not give exactly one 1-5 integer per dimension; the message says why."""


_NUMBER = r"(-?\d+(?:\.\d+)?)"
_LINE = re.compile(
    r"^[\s>*_#`-]*(?:\d+[.)]\s*)?(?P<name>[^:=\d][^:=\-\u2013\u2014]*?)[\s*_`]*(?:[:=]|\s[-\u2013\u2014])\s*[*_`]*\s*"
    + _NUMBER
    + r"\s*(?:/\s*5)?[\s*_`.]*(?P<rest>.*)$"
)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower().replace("&", "and"))


def _dimension_named(name: str, rubric: Rubric) -> Dimension | None:
    """Exact name (title, key or alias); a lenient rubric also takes a name that contains one."""
    wanted = _norm(name)
    for dim in rubric.dimensions:
        if wanted in {_norm(n) for n in (dim.title, dim.key, *dim.aliases)}:
            return dim
    if not rubric.strict:
        inside = [d for d in rubric.dimensions if any(_norm(n) in wanted for n in (d.title, *d.aliases))]
        return inside[0] if len(inside) == 1 else None
    return None


def _score(value: object, dim: Dimension) -> int:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise AnswerError(f"{dim.title}: {value!r} is not a number") from None
    if number != int(number):
        raise AnswerError(f"{dim.title}: {value} is not an integer")
    if not 1 <= number <= 5:
        raise AnswerError(f"{dim.title}: score {int(number)} is outside 1-5")
    return int(number)


def parse_answer(text: str, rubric: Rubric) -> list[int]:
    """Raw scores in the rubric's dimension order, or :class:`AnswerError`."""
    body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    if body.startswith(("{", "[")):
        return _from_json(body, rubric)
    if re.fullmatch(r"[\d\s,;]+", body):  # bare scores in protocol order
        return _positional(re.findall(r"\d+", body), rubric)
    return _from_lines(body, rubric)


def _positional(values: list, rubric: Rubric) -> list[int]:
    if len(values) != len(rubric.dimensions):
        raise AnswerError(f"{len(values)} scores, not {len(rubric.dimensions)}")
    return [_score(v, d) for v, d in zip(values, rubric.dimensions)]


def _from_json(body: str, rubric: Rubric) -> list[int]:
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"answer looks like JSON but does not parse ({exc.msg})") from None
    if isinstance(data, list):
        return _positional(data, rubric)
    if not isinstance(data, dict):
        raise AnswerError("JSON answer is not an object")
    nested = [v for v in data.values() if isinstance(v, dict) and any(_dimension_named(str(k), rubric) for k in v)]
    if len(data) == 1 and nested:  # {"scores": {...}}
        data = nested[0]
    found: dict[str, int] = {}
    for name, value in data.items():
        dim = _dimension_named(str(name), rubric)
        if dim is None:
            if rubric.strict:
                raise AnswerError(f"unexpected field {name!r}")
            continue
        found[dim.key] = _score(value.get("score") if isinstance(value, dict) else value, dim)
    return _complete(found, rubric)


def _from_lines(body: str, rubric: Rubric) -> list[int]:
    found: dict[str, int] = {}
    for line in body.splitlines():
        if not line.strip(" \t*_#`-"):
            continue
        match = _LINE.match(line)
        dim = _dimension_named(match["name"], rubric) if match else None
        if dim is None or (rubric.strict and match["rest"].strip()):
            if rubric.strict:
                raise AnswerError(f"extra text: {line.strip()[:80]!r}")
            continue
        score = _score(match.group(2), dim)
        if dim.key in found and found[dim.key] != score:
            raise AnswerError(f"{dim.title} scored twice ({found[dim.key]} and {score})")
        found[dim.key] = score
    return _complete(found, rubric)


def _complete(found: dict[str, int], rubric: Rubric) -> list[int]:
    missing = [d.title for d in rubric.dimensions if d.key not in found]
    if missing:
        raise AnswerError(f"no score for {', '.join(missing)}")
    return [found[d.key] for d in rubric.dimensions]


def capped(scores: list[int], rubric: Rubric) -> list[int]:
    """The protocol's cap: no later dimension scores above the first (Instruction Compliance)."""
    if not rubric.cap_to_first:
        return list(scores)
    return [scores[0]] + [min(s, scores[0]) for s in scores[1:]]


def score_columns(scores: list[int], rubric: Rubric) -> dict[str, float]:
    """Capped scores as table columns plus ``judge_overall`` (their mean)."""
    final = capped(scores, rubric)
    columns: dict[str, float] = {d.column: float(s) for d, s in zip(rubric.dimensions, final)}
    columns["judge_overall"] = round(sum(final) / len(final), 6)
    return columns
