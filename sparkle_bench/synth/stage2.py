"""Stage 2, instruction and first-frame edit: the VLM describes the source's first frame
(``original_scene``) and writes an instruction for a scene drawn from the theme's taxonomy
(``chosen_keyword`` = "subtheme: scene"); FLUX.2-klein edits the frame; EditScore judges the edit
and ``overall`` under the threshold rejects (edit_score)."""

from __future__ import annotations

import random
from types import SimpleNamespace

from .answers import sentence
from .config import SynthConfig
from .generators import sample_seed
from .layout import Layout, read_image, write_image
from .ledger import ACCEPTED, Outcome
from .models import load_roles

STAGE = 2


def settings(cfg: SynthConfig) -> dict:
    return {"taxonomy": cfg.taxonomy["themes"], "prompts": {k: cfg.prompts[k] for k in ("describe", "instruction")},
            "vlm": cfg.identity(2, "vlm"), "editor": cfg.identity(2, "editor"), "scorer": cfg.identity(2, "scorer"),
            "thresholds": cfg.thresholds["stage2"], "seed": cfg.settings["seed"]}


def load(cfg: SynthConfig) -> SimpleNamespace:
    return load_roles(cfg, STAGE, "vlm", "editor", "scorer")


def draw_scene(taxonomy: dict, theme: str, seed: int, sample_id: str) -> tuple[str, str]:
    """The sample's (subtheme, scene): uniform over subthemes, then scenes, from its own seed."""
    rng = random.Random(f"{seed}:{sample_id}:scene")
    subthemes = taxonomy["themes"][theme]
    subtheme = rng.choice(sorted(subthemes))
    return subtheme, rng.choice(subthemes[subtheme])


def run(record: dict, models: SimpleNamespace, cfg: SynthConfig, layout: Layout) -> Outcome:
    theme, sample_id = record["theme"], record["id"]
    frame0 = read_image(layout.artifact(theme, "source_frame0", sample_id))
    original_scene = sentence(models.vlm.ask(cfg.prompts["describe"], [frame0]))
    subtheme, scene = draw_scene(cfg.taxonomy, theme, cfg.settings["seed"], sample_id)
    asked = cfg.prompts["instruction"].format(original_scene=original_scene, scene=scene, theme=theme, subtheme=subtheme)
    prompt = sentence(models.vlm.ask(asked, [frame0]))
    edited = models.editor.edit(frame0, prompt, sample_seed(cfg.settings["seed"], sample_id, "edit"))
    write_image(layout.artifact(theme, "edited_frame0", sample_id), edited)
    score = models.scorer.image(frame0, edited, prompt)
    data = {"prompt": prompt, "chosen_keyword": f"{subtheme}: {scene}", "original_scene": original_scene, "frame0_editscore": score}
    least = cfg.thresholds["stage2"]["min_overall"]
    if score["overall"] < least:
        return Outcome.reject("edit_score", f"EditScore overall {score['overall']:.2f} < {least}", **data)
    return Outcome(ACCEPTED, data=data)
