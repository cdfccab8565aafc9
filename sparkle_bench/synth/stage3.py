"""Stage 3, background plate: the VLM grounds the foreground objects looking at the source's and the
edited first frames together, boxes on the source's (round 1: ``round1_labels``, ``round1_objects``,
0-1000; what both frames show is foreground, as Sparkle grounds); FLUX.2-klein removes them from the
edited first frame; EditScore ``overall`` under the (stricter) threshold rejects (removal_score);
Wan image-to-video animates the clean plate into the background video, as long as the clip."""

from __future__ import annotations

from types import SimpleNamespace

from ..video import write_video
from .answers import grounded_objects
from .config import SynthConfig
from .generators import sample_seed
from .layout import Layout, read_image, write_image
from .ledger import ACCEPTED, Outcome
from .models import load_roles

STAGE = 3


def settings(cfg: SynthConfig) -> dict:
    return {
        "prompts": {
            k: cfg.prompts[k]
            for k in ("ground", "remove", "background", "relative_coordinates", "absolute_coordinates")
        },
        "vlm": cfg.identity(3, "vlm"),
        "editor": cfg.identity(3, "editor"),
        "scorer": cfg.identity(3, "scorer"),
        "animator": cfg.identity(3, "animator"),
        "thresholds": cfg.thresholds["stage3"],
        "seed": cfg.settings["seed"],
    }


def load(cfg: SynthConfig) -> SimpleNamespace:
    return load_roles(cfg, STAGE, "vlm", "editor", "scorer", "animator")


def spoken_list(labels: list[str]) -> str:
    return labels[0] if len(labels) == 1 else f"{', '.join(labels[:-1])} and {labels[-1]}"


def run(record: dict, models: SimpleNamespace, cfg: SynthConfig, layout: Layout) -> Outcome:
    theme, sample_id, seed = record["theme"], record["id"], cfg.settings["seed"]
    frame0 = read_image(layout.artifact(theme, "source_frame0", sample_id))
    edited = read_image(layout.artifact(theme, "edited_frame0", sample_id))
    asked, size = models.vlm.coordinates(cfg.prompts, frame0)
    objects = grounded_objects(
        models.vlm.ask(cfg.prompts["ground"].format(coordinates=asked), [frame0, edited]), models.vlm.boxes, size
    )
    if not objects:
        return Outcome.reject(
            "no_foreground", "the grounding answer has no usable box", round1_labels=[], round1_objects=[]
        )
    labels = [o["label"] for o in objects]
    removal = cfg.prompts["remove"].format(labels=spoken_list(labels))
    plate = models.editor.edit(edited, removal, sample_seed(seed, sample_id, "remove"))
    write_image(layout.artifact(theme, "edited_frame0_foreground_removed", sample_id), plate)
    score = models.scorer.image(edited, plate, removal)
    data = {"round1_labels": labels, "round1_objects": objects, "removal_prompt": removal, "removal_editscore": score}
    least = cfg.thresholds["stage3"]["min_overall"]
    if score["overall"] < least:
        return Outcome.reject("removal_score", f"EditScore overall {score['overall']:.2f} < {least}", **data)
    scene = (
        record["chosen_keyword"].partition(": ")[2] or record["prompt"]
    )  # an open theme has no keyword: the instruction
    background = cfg.prompts["background"].format(scene=scene)
    frames = models.animator.animate(
        plate, background, int(record["clip"]["frames"]), sample_seed(seed, sample_id, "animate")
    )
    write_video(layout.artifact(theme, "edited_background_video", sample_id), frames, float(record["clip"]["fps"]))
    return Outcome(ACCEPTED, data={**data, "background_prompt": background})
