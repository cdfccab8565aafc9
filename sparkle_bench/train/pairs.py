"""``sparkle-bench train-data``: training pairs into the Sparkle/Kiwi training layout.

Inputs: the synthesis pipeline's accepted pairs (a folder with ``prompts/{theme}_train.csv``), or
any folder of ``{id}_source.mp4`` + ``{id}_edited.mp4`` with prompts (``--prompts`` CSV/JSONL with
``id, prompt``, or ``{id}.txt`` beside the videos). Output under ROOT: ``{theme}/source_video/{id}.mp4``,
``{theme}/edited_video/{id}.mp4`` (links by default, ``--copy`` to copy), ``prompts/{theme}_train.csv``
(``prompt, src_video, tgt_video, task``) and ``prompts/{theme}_train_metadata.jsonl``. A pair whose
video cannot be read is skipped with one line and counted; re-running merges (same id replaced).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..log import console, problem
from ..video import VideoError, probe
from .data import CSV_COLUMNS, IMAGE_SUFFIXES


@dataclass
class Candidate:
    id: str
    prompt: str
    source: Path
    target: Path
    metadata: dict = field(default_factory=dict)


def _prompts_file(path: Path) -> dict[str, str]:
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    missing = [i for i, row in enumerate(rows, 1) if "id" not in row or "prompt" not in row]
    if missing:
        raise ValueError(f"{path}: row(s) {missing[:5]} lack 'id' or 'prompt'")
    return {str(row["id"]): str(row["prompt"]) for row in rows}


def from_layout(folder: Path, theme: str) -> list[Candidate]:
    """Pairs already in the training layout (e.g. the synthesis pipeline's accepted ones)."""
    csv_path = folder / "prompts" / f"{theme}_train.csv"
    meta_path = folder / "prompts" / f"{theme}_train_metadata.jsonl"
    metadata = {}
    if meta_path.is_file():
        metadata = {r["id"]: r.get("metadata", {}) for r in map(json.loads, meta_path.read_text().splitlines()) if r}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return [
            Candidate(
                row["task"],
                row["prompt"],
                folder / row["src_video"],
                folder / row["tgt_video"],
                metadata.get(row["task"], {}),
            )
            for row in csv.DictReader(handle)
        ]


def from_pair_folder(folder: Path, prompts: Path | None) -> tuple[list[Candidate], int]:
    """``{id}_source.*`` + ``{id}_edited.*`` files, with prompts from a file or ``{id}.txt``; also
    the number of sources left out (no edited video, no prompt), each named in one line."""
    known = _prompts_file(prompts) if prompts else {}
    out, left_out = [], 0
    for source in sorted(folder.glob("*_source.*")):
        sample_id = source.name[: source.name.rindex("_source.")]
        target = next(iter(sorted(folder.glob(f"{sample_id}_edited.*"))), None)
        text = folder / f"{sample_id}.txt"
        prompt = known.get(sample_id) or (text.read_text(encoding="utf-8").strip() if text.is_file() else None)
        if target is None or not prompt:
            problem("skipped", sample_id, "no edited video" if target is None else "no prompt (--prompts or {id}.txt)")
            left_out += 1
            continue
        out.append(Candidate(sample_id, prompt, source, target))
    return out, left_out


def _place(path: Path, target: Path, copy: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.unlink(missing_ok=True)
    if copy:
        shutil.copyfile(path, target)
    else:
        os.symlink(path.resolve(), target)


def build(candidates: list[Candidate], root: Path, theme: str, copy: bool = False) -> tuple[int, int]:
    """Write the usable candidates into ``root``'s layout; returns (written, skipped)."""
    rows: dict[str, dict] = {}
    meta: dict[str, dict] = {}
    csv_path = root / "prompts" / f"{theme}_train.csv"
    meta_path = root / "prompts" / f"{theme}_train_metadata.jsonl"
    if csv_path.is_file():  # merge with what is there
        with open(csv_path, newline="", encoding="utf-8") as handle:
            rows = {row["task"]: row for row in csv.DictReader(handle)}
        meta = (
            {r["id"]: r for r in map(json.loads, meta_path.read_text().splitlines()) if r}
            if meta_path.is_file()
            else {}
        )
    written = skipped = 0
    for c in candidates:
        try:
            for path in (c.source, c.target):
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    probe(path)
        except VideoError as exc:
            problem("skipped", c.id, str(exc))
            skipped += 1
            continue
        src = Path(theme) / "source_video" / f"{c.id}{c.source.suffix}"
        tgt = Path(theme) / "edited_video" / f"{c.id}{c.target.suffix}"
        _place(c.source, root / src, copy)
        _place(c.target, root / tgt, copy)
        rows[c.id] = {"prompt": c.prompt, "src_video": src.as_posix(), "tgt_video": tgt.as_posix(), "task": c.id}
        meta[c.id] = {"id": c.id, "prompt": c.prompt, "metadata": {"edit_type": theme, **c.metadata}}
        written += 1
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CSV_COLUMNS))
        writer.writeheader()
        writer.writerows(rows[k] for k in sorted(rows))
    tmp.replace(csv_path)
    tmp = meta_path.with_name(f".{meta_path.name}.tmp")
    tmp.write_text("".join(json.dumps(meta[k], ensure_ascii=False) + "\n" for k in sorted(meta)), encoding="utf-8")
    tmp.replace(meta_path)
    console.print(f"train-data: {written} pairs written, {skipped} skipped -> {csv_path} ({len(rows)} pairs in all)")
    return written, skipped
