"""Sparkle's published files, rebuilt from the stage records after every run (atomically, sorted by id).

Per theme, under ``intermediate_data/{theme}/``: ``edited_frame0_score.jsonl``,
``edited_frame0_foreground_removed_score.jsonl``, ``foreground_grounding_r1.jsonl``,
``foreground_grounding_r2.jsonl`` and ``edited_video_score.jsonl``, with exactly Sparkle's fields,
for every sample scored or grounded under the current settings (accepted or rejected: the
scores are there to re-filter). Accepted samples form the training set
(``prompts/{theme}_train.csv`` + ``{theme}_train_metadata.jsonl``); samples rejected at the last
check are bench candidates in Sparkle-Bench's layout under ``bench/`` (source video, clean plate as
reference image), which is how Sparkle-Bench was drawn.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from pathlib import Path

from ..log import warn
from .config import STAGES, SynthConfig
from .corpus import read_plan
from .layout import SCORE_FILES, Layout, write_atomic
from .ledger import ACCEPTED, REJECTED, latest_decisions

TRAIN_COLUMNS = ("prompt", "src_video", "tgt_video", "task")
BENCH_COLUMNS = ("edited_type", "prompt", "original_video")


def _jsonl(records: list[dict]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def _csv(columns: tuple[str, ...], rows: list[dict]) -> bytes:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _metadata(sample_id: str, theme: str, merged: dict) -> dict:
    # Sparkle's training metadata names the open theme's edits "openve3m_background_change"
    edit_type = "openve3m_background_change" if theme == "openve3m" else theme
    return {
        "id": sample_id,
        "prompt": merged["prompt"],
        "metadata": {
            "edit_type": edit_type,
            "chosen_keyword": merged["chosen_keyword"],
            "original_scene": merged["original_scene"],
        },
    }


def _merged(decisions: dict[int, dict]) -> dict:
    """What the sample's stages found, later stages last."""
    return {k: v for number in sorted(decisions) for k, v in decisions[number]["data"].items()}


def sparkle_records(sample_id: str, theme: str, decisions: dict[int, dict]) -> dict[str, dict]:
    """The sample's line in each of Sparkle's five jsonl files it belongs to, field for field."""
    merged = _merged(decisions)
    data = {number: decision["data"] for number, decision in decisions.items()}
    out = {}
    if "frame0_editscore" in data.get(2, {}):
        out["edited_frame0_score"] = {
            "id": sample_id,
            "prompt": data[2]["prompt"],
            "editscore": data[2]["frame0_editscore"],
        }
    if data.get(3, {}).get("round1_objects"):
        out["foreground_grounding_r1"] = {
            "id": sample_id,
            "prompt": merged["prompt"],
            "edit_type": theme,
            "round1_labels": data[3]["round1_labels"],
            "round1_objects": data[3]["round1_objects"],
        }
    if "removal_editscore" in data.get(3, {}):
        out["edited_frame0_foreground_removed_score"] = {
            "id": sample_id,
            "prompt": data[3]["removal_prompt"],
            "editscore": data[3]["removal_editscore"],
        }
    if "frame_objects" in data.get(4, {}):
        out["foreground_grounding_r2"] = {**out["foreground_grounding_r1"], "frame_objects": data[4]["frame_objects"]}
    if "video_editscore" in data.get(5, {}):
        out["edited_video_score"] = {
            "id": sample_id,
            "prompt": merged["prompt"],
            "frame_indices": data[5]["frame_indices"],
            "editscore": data[5]["video_editscore"],
        }
    return out


def _link(source: Path, target: Path) -> None:
    """Hard link (a copy across file systems), replacing what is there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copy2(source, tmp)
    os.replace(tmp, target)


def _prune(folder: Path, keep: set[str]) -> None:
    for path in folder.glob("*") if folder.is_dir() else []:
        if path.stem not in keep:
            path.unlink()


def publish(cfg: SynthConfig, layout: Layout, digests: dict[int, str]) -> dict[str, int]:
    """Rewrite every published file; returns the number of training pairs and bench candidates."""
    current = {
        number: {i: d for i, d in latest_decisions(layout, number).items() if d["settings"] == digests[number]}
        for number in STAGES
    }
    themes = {entry["id"]: entry["theme"] for entry in read_plan(layout).values()}
    names = sorted(set(cfg.themes) | set(themes.values()))
    files = {(theme, name): [] for theme in names for name in SCORE_FILES}
    train = {theme: ([], []) for theme in names}
    bench = {theme: ([], []) for theme in names}
    for sample_id in sorted({i for decided in current.values() for i in decided}):
        theme = themes[sample_id]
        decisions = {number: current[number][sample_id] for number in STAGES if sample_id in current[number]}
        for name, record in sparkle_records(sample_id, theme, decisions).items():
            files[(theme, name)].append(record)
        final = decisions.get(5)
        if final is None:
            continue
        merged = _merged(decisions)
        if final["status"] == ACCEPTED:
            train[theme][0].append(
                {
                    "prompt": merged["prompt"],
                    "src_video": layout.relative(layout.video(theme, "source_video", sample_id)),
                    "tgt_video": layout.relative(layout.video(theme, "edited_video", sample_id)),
                    "task": sample_id,
                }
            )
            train[theme][1].append(_metadata(sample_id, theme, merged))
        elif final["status"] == REJECTED:
            try:
                _link(
                    layout.video(theme, "source_video", sample_id),
                    layout.bench / "source_videos" / theme / f"{sample_id}.mp4",
                )
                _link(
                    layout.artifact(theme, "edited_frame0_foreground_removed", sample_id),
                    layout.bench / "ref_images" / theme / f"{sample_id}.png",
                )
            except OSError as exc:
                warn(f"bench candidate {sample_id} left out: {exc}")
                continue
            bench[theme][0].append(
                {
                    "edited_type": theme,
                    "prompt": merged["prompt"],
                    "original_video": f"source_videos/{theme}/{sample_id}.mp4",
                }
            )
            bench[theme][1].append(_metadata(sample_id, theme, merged))
    for (theme, name), records in files.items():
        if records or layout.score_file(theme, name).exists():
            write_atomic(layout.score_file(theme, name), _jsonl(records))
    for theme in names:
        rows, meta = train[theme]
        if rows or (layout.prompts / f"{theme}_train.csv").exists():
            write_atomic(layout.prompts / f"{theme}_train.csv", _csv(TRAIN_COLUMNS, rows))
            write_atomic(layout.prompts / f"{theme}_train_metadata.jsonl", _jsonl(meta))
        rows, meta = bench[theme]
        if rows or (layout.bench / f"{theme}_bench.csv").exists():
            write_atomic(layout.bench / f"{theme}_bench.csv", _csv(BENCH_COLUMNS, rows))
            write_atomic(layout.bench / f"{theme}_metadata.jsonl", _jsonl(meta))
        keep = {m["id"] for m in meta}
        _prune(layout.bench / "source_videos" / theme, keep)
        _prune(layout.bench / "ref_images" / theme, keep)
    return {"train": sum(len(t[0]) for t in train.values()), "bench": sum(len(b[0]) for b in bench.values())}
