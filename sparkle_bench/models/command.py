"""``--model "command:TEMPLATE"``: a model that lives in its own environment, run once per sample.

The template is split like a shell line (no shell runs it, so prompts need no quoting) and each
word is filled in: ``{source}``, ``{prompt}``, ``{output}`` (where the command must write its mp4),
and optionally ``{mask}`` and ``{ref_image}``, ``{id}``, ``{theme}``. The command gets
``--model-option timeout=SECONDS`` (default 3600) per sample; a non-zero exit, a timeout or an
unreadable output fails that sample with the command's last words, and the run goes on.
"""

from __future__ import annotations

import os
import shlex
import string
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..bench import Bench, Sample
from ..masks import find_mask
from ..video import VideoError, probe
from .base import AdapterError, EditedVideo, ModelAdapter
from .options import parse_options

FIELDS = {"source", "prompt", "output", "mask", "ref_image", "id", "theme"}


@dataclass(frozen=True)
class CommandSettings:
    timeout: float = 3600.0


class Command(ModelAdapter):
    name = "command"

    def __init__(self, arg: str | None = None) -> None:
        if not arg:
            raise AdapterError('command needs a template: --model "command:python edit.py {source} {prompt} {output}"')
        self.template = arg
        self.words = shlex.split(arg)
        used = {name for word in self.words for _, name, _, _ in string.Formatter().parse(word) if name is not None}
        unknown = sorted(used - FIELDS)
        if unknown or "output" not in used:
            raise AdapterError(
                f"command template: {'unknown field(s) ' + ', '.join(unknown) if unknown else 'no {output}'}; "
                f"fields: {', '.join(sorted(FIELDS))}"
            )
        self.used = used
        self.settings = CommandSettings()

    @property
    def spec(self) -> str:
        return f"command:{self.template}"

    def configure(self, options: dict[str, str]) -> None:
        self.settings = parse_options(self.settings, options, self.name)

    def setup(self, bench: Bench) -> None:
        self.masks_dir = bench.masks_dir

    def edit(self, sample: Sample) -> EditedVideo:
        raise AdapterError("the command adapter writes files; it has no in-memory edit")

    def _values(self, sample: Sample, output: Path) -> dict[str, str]:
        values = {
            "source": str(sample.source),
            "prompt": sample.prompt,
            "output": str(output),
            "id": sample.id,
            "theme": sample.theme,
            "mask": "",
            "ref_image": "",
        }
        if "mask" in self.used:
            mask = find_mask(self.masks_dir, sample.theme, sample.id)
            if mask is None:
                raise AdapterError("the command wants {mask} but the sample has no foreground mask")
            values["mask"] = str(mask)
        if "ref_image" in self.used:
            if sample.ref_image is None:
                raise AdapterError("the command wants {ref_image} but the sample has none")
            values["ref_image"] = str(sample.ref_image)
        return values

    def write(self, sample: Sample, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.{os.getpid()}.tmp.mp4")
        values = self._values(sample, tmp)
        argv = [word.format(**values) for word in self.words]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=self.settings.timeout)
            if done.returncode != 0:
                words = (done.stderr or done.stdout).strip().splitlines()
                raise AdapterError(
                    f"command exited with {done.returncode}: {words[-1][:200] if words else 'no output'}"
                )
            if not tmp.is_file():
                raise AdapterError(f"command exited with 0 but wrote nothing at {{output}} ({tmp.name})")
            try:
                probe(tmp)
            except VideoError as exc:
                raise AdapterError(f"command wrote an unreadable video: {exc}") from exc
            os.replace(tmp, target)
        except subprocess.TimeoutExpired as exc:
            raise AdapterError(f"command timed out after {self.settings.timeout:g} s") from exc
        except FileNotFoundError as exc:
            raise AdapterError(f"command not found: {argv[0]}") from exc
        finally:
            tmp.unlink(missing_ok=True)
