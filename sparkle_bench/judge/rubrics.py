"""Judge rubrics as versioned data: dimensions in protocol order, the cap, and the prompt text.

Built-in rubrics live in ``rubrics/*.toml`` (sparkle-bench's own wording). ``--rubric-from PATH``
swaps in the prompt text of a user's copy of an official evaluation script (read with ``ast``,
never executed) or of a plain text file, keeping the built-in dimensions, order and cap.
"""

from __future__ import annotations

import ast
import hashlib
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

RUBRIC_DIR = Path(__file__).parent / "rubrics"
INSTRUCTION_PLACEHOLDERS = ("instruction", "prompt", "edit_instruction", "edit_prompt", "text", "caption")


class RubricError(ValueError):
    """A rubric that cannot be used (unknown name, unreadable file, no usable prompt text)."""


@dataclass(frozen=True)
class Dimension:
    key: str  # column suffix: judge_<key>
    title: str
    guide: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def column(self) -> str:
        return f"judge_{self.key}"


@dataclass(frozen=True)
class Rubric:
    name: str
    version: str
    dimensions: tuple[Dimension, ...]
    intro: str
    cap_to_first: bool = True
    custom_text: str | None = None  # prompt text from --rubric-from, used instead of intro + guides
    strict: bool = True  # built-in wording asks for score lines only; anything else is re-asked

    def prompt(self, instruction: str) -> str:
        """The text the judge reads, with the instruction filled in."""
        if self.custom_text is not None:
            return fill_instruction(self.custom_text, instruction)
        lines = [
            self.intro.strip().replace("{instruction}", instruction),
            "",
            "Score each dimension with an integer from 1 (worst) to 5 (best):",
            "",
        ]
        lines += [f"{i}. {d.title}: {d.guide}" for i, d in enumerate(self.dimensions, 1)]
        lines += ["", self.answer_format()]
        return "\n".join(lines)

    def answer_format(self) -> str:
        """What a readable answer looks like (also the re-ask text)."""
        body = "\n".join(f"{d.title}: <1-5>" for d in self.dimensions)
        return f"Reply with exactly these {len(self.dimensions)} lines, in this order, and nothing else:\n{body}"

    @property
    def columns(self) -> list[str]:
        return ["judge_overall"] + [d.column for d in self.dimensions]


def builtin_names() -> list[str]:
    return sorted(p.stem for p in RUBRIC_DIR.glob("*.toml"))


def load_rubric(name: str) -> Rubric:
    """A built-in rubric by file stem (``sparkle_v1``), rubric name (``sparkle``) or version."""
    for path in sorted(RUBRIC_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        if name in (path.stem, data["name"], data["version"]):
            dims = tuple(
                Dimension(d["key"], d["title"], d.get("guide", ""), tuple(d.get("aliases", ())))
                for d in data["dimensions"]
            )
            return Rubric(data["name"], data["version"], dims, data["intro"], data.get("cap_to_first", True))
    raise RubricError(f"unknown rubric {name!r}; built-in: {', '.join(builtin_names())}")


def rubric_for_bench(bench_name: str) -> Rubric:
    """OpenVE-Bench's rubric for its CSV, Sparkle-Bench's for everything else (the demo included)."""
    return load_rubric("openve" if bench_name == "openve" else "sparkle")


def with_text_from(rubric: Rubric, path: Path) -> Rubric:
    """The rubric with its prompt text replaced by the one in ``path`` (a Python script or text).

    The version becomes ``custom-<hash of the text>``, so cached answers of the built-in wording
    are never reused for it. Parsing becomes lenient: official prompts often ask for reasons too.
    """
    path = Path(path)
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RubricError(f"cannot read rubric text {path}: {exc}") from exc
    text = prompt_from_script(source, rubric) if path.suffix == ".py" else source.strip()
    if not text:
        raise RubricError(f"{path}: no prompt text")
    digest = hashlib.sha1(text.encode()).hexdigest()[:12]
    return replace(rubric, version=f"custom-{digest}", custom_text=text, strict=False)


def prompt_from_script(source: str, rubric: Rubric) -> str:
    """The string literal (or f-string, with its fields kept as ``{name}``) of a script that names
    the most rubric dimensions; ties go to the longer text. The script is parsed, never run."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise RubricError(f"rubric script does not parse: {exc}") from exc
    candidates = []
    for node in ast.walk(tree):
        text = _literal_text(node)
        if text:
            hits = sum(_mentions(text, d) for d in rubric.dimensions)
            candidates.append((hits, len(text), text))
    best = max(candidates, default=(0, 0, ""))
    if best[0] < max(1, len(rubric.dimensions) // 2):
        raise RubricError(
            f"no string in the script names the {rubric.name} rubric's dimensions "
            f"({', '.join(d.title for d in rubric.dimensions)})"
        )
    return best[2].strip()


def _literal_text(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            elif isinstance(value, ast.FormattedValue):
                parts.append("{" + ast.unparse(value.value) + "}")
        return "".join(parts)
    return None


def _mentions(text: str, dim: Dimension) -> bool:
    lowered = text.lower()
    return any(name.lower() in lowered for name in (dim.title, *dim.aliases))


def fill_instruction(text: str, instruction: str) -> str:
    """Put the instruction into a custom prompt: at its ``{instruction}``-like field, else appended."""
    fields = set(re.findall(r"\{([A-Za-z_][A-Za-z0-9_.\[\]'\"]*)\}", text))
    names = [f for f in fields if f.split(".")[-1].split("[")[0].lower() in INSTRUCTION_PLACEHOLDERS]
    if not names:
        return f"{text}\n\nInstruction: {instruction}"
    for name in names:
        text = text.replace("{" + name + "}", instruction)
    return text
