"""Stage 2, instruction and first-frame edit: the VLM describes the source's first frame
(``original_scene``); the sample's subtheme is drawn from its seed and the VLM chooses the scene
that suits the frame from that subtheme's list (``chosen_keyword`` = "subtheme: scene"; an answer
naming no listed scene fails the sample), then writes the instruction for it. An open theme
(openve3m) has no list: the VLM writes an instruction for a background of its own choosing and
``chosen_keyword`` is empty. FLUX.2-klein edits the frame; EditScore judges the edit and ``overall``
under the threshold rejects (edit_score)."""

from __future__ import annotations

import random
from types import SimpleNamespace

from .answers import chosen_scene, sentence
from .config import SynthConfig
from .generators import sample_seed
from .layout import Layout, read_image, write_image
from .ledger import ACCEPTED, Outcome
from .models import load_roles

STAGE = 2


def settings(cfg: SynthConfig) -> dict:
    return {
        "taxonomy": cfg.taxonomy["themes"],
        "prompts": {k: cfg.prompts[k] for k in ("describe", "choose_scene", "instruction", "instruction_open")},
        "vlm": cfg.identity(2, "vlm"),
        "editor": cfg.identity(2, "editor"),
        "scorer": cfg.identity(2, "scorer"),
        "thresholds": cfg.thresholds["stage2"],
        "seed": cfg.settings["seed"],
    }


def load(cfg: SynthConfig) -> SimpleNamespace:
    return load_roles(cfg, STAGE, "vlm", "editor", "scorer")


def draw_subtheme(taxonomy: dict, theme: str, seed: int, sample_id: str) -> str:
    """The sample's subtheme: uniform over the theme's subthemes, from the sample's own seed."""
    return random.Random(f"{seed}:{sample_id}:scene").choice(sorted(taxonomy["themes"][theme]))


def choose_scene(vlm, prompts: dict, taxonomy: dict, theme: str, seed: int, sample_id: str, frame0) -> tuple[str, str]:
    """(subtheme, scene): the subtheme drawn from the seed, the scene chosen by the VLM from its list."""
    subtheme = draw_subtheme(taxonomy, theme, seed, sample_id)
    scenes = taxonomy["themes"][theme][subtheme]
    asked = prompts["choose_scene"].format(
        theme=theme, subtheme=subtheme, scenes="\n".join(f"- {scene}" for scene in scenes)
    )
    return subtheme, chosen_scene(vlm.ask(asked, [frame0]), scenes)


def run(record: dict, models: SimpleNamespace, cfg: SynthConfig, layout: Layout) -> Outcome:
    theme, sample_id = record["theme"], record["id"]
    frame0 = read_image(layout.artifact(theme, "source_frame0", sample_id))
    original_scene = sentence(models.vlm.ask(cfg.prompts["describe"], [frame0]))
    if cfg.taxonomy["themes"][theme].get("open"):
        keyword, asked = "", cfg.prompts["instruction_open"].format(original_scene=original_scene)
    else:
        subtheme, scene = choose_scene(
            models.vlm, cfg.prompts, cfg.taxonomy, theme, cfg.settings["seed"], sample_id, frame0
        )
        keyword = f"{subtheme}: {scene}"
        asked = cfg.prompts["instruction"].format(
            original_scene=original_scene, scene=scene, theme=theme, subtheme=subtheme
        )
    prompt = sentence(models.vlm.ask(asked, [frame0]))
    edited = models.editor.edit(frame0, prompt, sample_seed(cfg.settings["seed"], sample_id, "edit"))
    write_image(layout.artifact(theme, "edited_frame0", sample_id), edited)
    score = models.scorer.image(frame0, edited, prompt)
    data = {"prompt": prompt, "chosen_keyword": keyword, "original_scene": original_scene, "frame0_editscore": score}
    least = cfg.thresholds["stage2"]["min_overall"]
    if score["overall"] < least:
        return Outcome.reject("edit_score", f"EditScore overall {score['overall']:.2f} < {least}", **data)
    return Outcome(ACCEPTED, data=data)
