"""VLM answers -> values: the camera verdict, a plain sentence, a scene chosen from a list, grounding boxes.

Boxes are kept as Sparkle publishes them: ``{"bbox_2d": [x1, y1, x2, y2], "label": ...}`` in
Qwen's 0-1000 normalised coordinates, whatever format the model answered in.
"""

from __future__ import annotations

import json
import re
from collections import Counter


class AnswerError(ValueError):
    """An answer the pipeline cannot use; the message says why in one line."""


def _short(text: str) -> str:
    line = " ".join(text.split())
    return repr(line[:120] + ("..." if len(line) > 120 else ""))


def camera_verdict(text: str) -> bool:
    """True for a static camera: the last ``Camera: static|moving`` line of a reasoned answer."""
    found = re.findall(r"camera\W{0,3}\s*[:=\-]\s*\**\s*(static|fixed|moving)", text, flags=re.IGNORECASE)
    if not found:
        raise AnswerError(f"no 'Camera: static|moving' line in {_short(text)}")
    return found[-1].lower() in ("static", "fixed")


def sentence(text: str) -> str:
    """The first paragraph, without quotes or a leading label (``Instruction:``)."""
    body = re.sub(r"^\s*(?:\*\*)?[A-Za-z ]{2,20}:(?:\*\*)?\s*", "", text.strip())
    body = body.strip().split("\n\n")[0].strip().strip("\"\u201c\u201d'` ")
    body = " ".join(body.split())
    if len(body) < 3:
        raise AnswerError(f"empty answer {_short(text)}")
    return body


def _plain_words(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s'-]", " ", text.lower()).split())


def chosen_scene(text: str, scenes: list[str]) -> str:
    """The scene of ``scenes`` the answer names: the whole answer (quotes, a ``Scene:`` label, a list
    marker and case aside), its number in the list, or the only listed scene the answer contains."""
    body = re.sub(r"^\s*(?:\*\*)?(?:scene|answer|choice)\s*:?(?:\*\*)?\s*", "", text.strip(), flags=re.IGNORECASE)
    body = re.sub(r"^\s*(?:[-*]|\d+[.)])\s+", "", body.strip().strip("\"\u201c\u201d'`* ."))
    wanted = {_plain_words(scene): scene for scene in scenes}
    if _plain_words(body) in wanted:
        return wanted[_plain_words(body)]
    if body.isdigit() and 1 <= int(body) <= len(scenes):
        return scenes[int(body) - 1]
    inside = [scene for key, scene in wanted.items() if key and key in _plain_words(text)]
    if len(inside) == 1:
        return inside[0]
    raise AnswerError(
        f"the scene answer {_short(text)} names {'several' if inside else 'none'} of the {len(scenes)} listed scenes"
    )


def _json_list(text: str) -> list:
    body = re.sub(r"```(?:json)?", "", text)
    start = body.find("[")
    while start >= 0:
        depth = 0
        for end in range(start, len(body)):
            depth += {"[": 1, "]": -1}.get(body[end], 0)
            if depth == 0:
                try:
                    value = json.loads(body[start : end + 1])
                except json.JSONDecodeError:
                    break
                if isinstance(value, list) and all(isinstance(v, dict) for v in value):
                    return value
                break
        start = body.find("[", start + 1)
    raise AnswerError(f"no JSON list of objects in {_short(text)}")


def _normalised(box: list, boxes: str, size: tuple[int, int]) -> list[int] | None:
    """``boxes``: relative (0-1000 already) or absolute (pixels of the ``size=(W, H)`` image sent)."""
    if not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, (int, float)) for v in box):
        return None
    x1, y1, x2, y2 = (float(v) for v in box)
    if boxes == "absolute":
        width, height = size
        x1, x2, y1, y2 = x1 / width * 1000, x2 / width * 1000, y1 / height * 1000, y2 / height * 1000
    x1, x2 = sorted((min(max(x1, 0.0), 1000.0), min(max(x2, 0.0), 1000.0)))
    y1, y2 = sorted((min(max(y1, 0.0), 1000.0), min(max(y2, 0.0), 1000.0)))
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return [int(round(v)) for v in (x1, y1, x2, y2)]


def grounded_objects(text: str, boxes: str, size: tuple[int, int]) -> list[dict]:
    """Every ``{"bbox_2d", "label"}`` with a usable box (an answer with none is an empty list).

    Labels are made unique (a second "person" becomes "person 2"), so that round 2 can ask for
    each object by its label.
    """
    found, seen = [], Counter()
    for item in _json_list(text):
        box = _normalised(item.get("bbox_2d", item.get("bbox")), boxes, size)
        label = " ".join(str(item.get("label", "")).split())
        if box is not None and label:
            seen[label] += 1
            found.append({"bbox_2d": box, "label": label if seen[label] == 1 else f"{label} {seen[label]}"})
    return found


def relocated(text: str, labels: list[str], boxes: str, size: tuple[int, int]) -> list[dict]:
    """One item per round-1 label, in order; ``bbox_2d`` is ``[]`` where the label was not found.

    Items match labels by name, or by position when the answer has exactly one item per label.
    An unreadable answer finds nothing on that frame (the vote relies on the other anchors).
    """
    try:
        items = _json_list(text)
    except AnswerError:
        items = []
    wanted = [label.lower() for label in labels]
    found: dict[str, list[int]] = {}
    for position, item in enumerate(items):
        box = _normalised(item.get("bbox_2d", item.get("bbox")), boxes, size)
        name = " ".join(str(item.get("label", "")).split()).lower()
        key = name if name in wanted else (wanted[position] if len(items) == len(labels) else None)
        if box is not None and key is not None:
            found.setdefault(key, box)
    return [{"bbox_2d": found.get(label.lower(), []), "label": label} for label in labels]


def to_pixels(box: list[int], width: int, height: int) -> tuple[int, int, int, int]:
    """A 0-1000 box in pixels of a ``width`` x ``height`` frame, truncated and clamped inside it
    (the conversion Sparkle publishes for its boxes)."""
    xs = sorted(int(box[i] / 1000.0 * width) for i in (0, 2))
    ys = sorted(int(box[i] / 1000.0 * height) for i in (1, 3))
    return (
        max(0, min(xs[0], width - 1)),
        max(0, min(ys[0], height - 1)),
        max(0, min(xs[1], width - 1)),
        max(0, min(ys[1], height - 1)),
    )
