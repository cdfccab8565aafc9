"""The synthesis models' glue on known answers: EditScore's passes each checked, and still images
read the same whatever was imported first."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sparkle_bench.synth.scorer import EditScorer, ScorerError, _editscore


def scripted_scorer(answers: dict[int, str], num_pass: int) -> EditScorer:
    """An EditScorer over the real ``editscore`` package whose backbone answers by seed (pass i has seed 42 + i)."""
    editscore, parse = _editscore()
    scorer = EditScorer.__new__(EditScorer)
    scorer.scorer = editscore.EditScore(backbone="openai", key="unused", score_range=10, num_pass=1, seed=42)
    tool = scorer.scorer.model
    tool.prepare_input = lambda images, text: text
    tool.inference = lambda prompt, seed=None: answers[seed]
    tool.batch_inference = lambda prompts, seed=None: [answers[seed]] * len(prompts)
    scorer._parse, scorer.num_pass, scorer.seed, scorer.score_range = parse, num_pass, 42, 10
    return scorer


def test_every_editscore_pass_is_checked_and_averaged():
    source, edited = np.zeros((16, 16, 3), np.uint8), np.full((16, 16, 3), 200, np.uint8)
    agreed = scripted_scorer({42: "[9, 8]", 43: "[7, 6]", 44: "[9, 8]", 45: "[7, 6]"}, 4)
    image = agreed.image(source, edited, "Put the subject on a beach.")
    assert image["prompt_following"] == pytest.approx(8.0) and image["consistency"] == pytest.approx(7.0)
    assert image["overall"] == pytest.approx((np.sqrt(8 * 8) + np.sqrt(6 * 6)) / 2)  # sqrt(min(SC) * min(PQ)) per pass
    frames = agreed.frames([(source, edited)] * 2, "Put the subject on a beach.")
    assert [f["O_score"] for f in frames] == pytest.approx([7.0, 7.0])
    assert frames[0]["SC_raw_output"] == "[9, 8]"  # the first pass's raw answer, as Sparkle publishes

    late = {42: "[9, 8]", 43: "[9, 8]", 44: "the edit looks fine", 45: "[9, 8]"}  # pass 3 of 4 has no score
    with pytest.raises(ScorerError, match="pass 3 of 4"):
        scripted_scorer(late, 4).image(source, edited, "Put the subject on a beach.")
    with pytest.raises(ScorerError, match="pass 3 of 4"):
        scripted_scorer(late, 4).frames([(source, edited)], "Put the subject on a beach.")
    with pytest.raises(ScorerError, match="pass 2 of 2"):  # out of range: the package would score it mid-range
        scripted_scorer({42: "[9, 8]", 43: "[90, 80]"}, 2).frames([(source, edited)], "Put the subject on a beach.")
    assert scripted_scorer(late, 2).image(source, edited, "x")["overall"] == pytest.approx(8.0)  # passes 1-2 only


def test_still_images_read_back_after_decord_was_imported_first(tmp_path):
    """decord before cv2 breaks ``cv2.imread`` on PNGs here; our reads must not care."""
    script = textwrap.dedent(f"""
        import decord  # first, before anything imports cv2
        import cv2
        import numpy as np
        from sparkle_bench.synth.layout import read_image, write_image
        from sparkle_bench.images import read_rgb

        image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
        path = r"{tmp_path / "frame.png"}"
        write_image(path, image)
        assert np.array_equal(read_image(path), image)
        assert np.array_equal(read_rgb(path), image)
        print("cv2.imread broken:", cv2.imread(path) is None)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "cv2.imread broken:" in done.stdout


class FakeVLM:
    """Answers from a function of the prompt; records what it was asked and shown."""

    boxes = "relative"

    def __init__(self, reply):
        self.reply, self.asked = reply, []

    def coordinates(self, prompts: dict, image: np.ndarray) -> tuple[str, tuple[int, int]]:
        return prompts["relative_coordinates"], (image.shape[1], image.shape[0])

    def ask(self, prompt: str, images: list[np.ndarray]) -> str:
        self.asked.append((prompt, [np.array(i) for i in images]))
        return self.reply(prompt)


def stage_setup(tmp_path, theme: str):
    from types import SimpleNamespace

    from sparkle_bench.synth.config import load_config
    from sparkle_bench.synth.layout import Layout, write_image

    config = tmp_path / "synth.toml"
    config.write_text(f'out = "out"\nthemes = ["{theme}"]\n[corpus]\npath = "clips"\n')
    cfg, layout = load_config(config), Layout(tmp_path / "out")
    record = {"id": f"Sparkle_{theme}_000000", "theme": theme}
    frame = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    write_image(layout.artifact(theme, "source_frame0", record["id"]), frame)
    score = {
        "prompt_following": 9.0,
        "consistency": 9.0,
        "perceptual_quality": 9.0,
        "overall": 9.0,
        "SC_reasoning": "",
        "PQ_reasoning": "",
    }
    models = SimpleNamespace(
        editor=SimpleNamespace(edit=lambda image, prompt, seed: 255 - image),
        scorer=SimpleNamespace(image=lambda source, edited, prompt: score),
    )
    return cfg, layout, record, frame, models


def test_the_vlm_chooses_the_scene_from_the_drawn_subthemes_list(tmp_path):
    from sparkle_bench.synth import stage2
    from sparkle_bench.synth.answers import AnswerError, chosen_scene

    cfg, layout, record, frame, models = stage_setup(tmp_path, "location")
    assert cfg.taxonomy["version"] == "taxonomy-v2"
    subtheme = stage2.draw_subtheme(cfg.taxonomy, "location", cfg.settings["seed"], record["id"])
    scenes = cfg.taxonomy["themes"]["location"][subtheme]

    def reply(prompt: str) -> str:
        if "Choose the one scene" in prompt:
            return f"I would pick the third one.\n\nScene: {scenes[2].upper()}"
        return "Replace the background with the chosen place." if "instruction" in prompt else "A plain room."

    models.vlm = FakeVLM(reply)
    outcome = stage2.run(record, models, cfg, layout)
    assert outcome.status == "accepted" and outcome.data["chosen_keyword"] == f"{subtheme}: {scenes[2]}"
    question, shown = next(a for a in models.vlm.asked if "Choose the one scene" in a[0])
    assert all(f"- {scene}\n" in question + "\n" for scene in scenes) and np.array_equal(shown[0], frame)
    assert any(scenes[2] in prompt for prompt, _ in models.vlm.asked if "Write one instruction" in prompt)

    assert chosen_scene("2.", scenes) == scenes[1] and chosen_scene(f'"{scenes[0]}"', scenes) == scenes[0]
    models.vlm = FakeVLM(lambda prompt: "Somewhere nice, maybe a beach or a city." if "Choose" in prompt else "A room.")
    with pytest.raises(AnswerError, match=f"names none of the {len(scenes)} listed scenes") as failure:
        stage2.run(record, models, cfg, layout)
    assert "\n" not in str(failure.value)  # the sample fails with one line
    with pytest.raises(AnswerError, match="several"):
        chosen_scene(f"{scenes[0]} or {scenes[1]}", scenes)


def test_the_openve3m_theme_has_no_scene_list_and_no_keyword(tmp_path):
    from sparkle_bench.synth import stage2

    cfg, layout, record, _, models = stage_setup(tmp_path, "openve3m")
    models.vlm = FakeVLM(
        lambda prompt: "Replace the background with a windy pier." if "instruction" in prompt else "A plain room."
    )
    outcome = stage2.run(record, models, cfg, layout)
    assert outcome.status == "accepted" and outcome.data["chosen_keyword"] == ""
    assert outcome.data["prompt"] == "Replace the background with a windy pier."
    assert not any("Choose the one scene" in prompt for prompt, _ in models.vlm.asked)
    assert any("a new scene of your choice" in prompt for prompt, _ in models.vlm.asked)


def test_round_one_grounding_sees_the_source_and_the_edited_first_frames(tmp_path):
    from sparkle_bench.synth import stage3
    from sparkle_bench.synth.layout import write_image

    cfg, layout, record, frame, models = stage_setup(tmp_path, "location")
    edited = 255 - frame
    write_image(layout.artifact("location", "edited_frame0", record["id"]), edited)
    models.vlm = FakeVLM(lambda prompt: "[]")
    outcome = stage3.run(
        {**record, "chosen_keyword": "urban: rooftop overlooking skyline", "prompt": "x"}, models, cfg, layout
    )
    assert (outcome.status, outcome.reason) == ("rejected", "no_foreground")
    question, shown = models.vlm.asked[0]
    assert "first image is the original frame" in question
    assert len(shown) == 2 and np.array_equal(shown[0], frame) and np.array_equal(shown[1], edited)


def test_taxonomy_v2_has_sparkle_benchs_size_and_v1_is_kept():
    from sparkle_bench.synth.config import load_data

    themes = load_data("taxonomy", "taxonomy-v2")["themes"]
    listed = {theme: subthemes for theme, subthemes in themes.items() if not subthemes.get("open")}
    assert sorted(listed) == ["location", "season", "style", "time"] and themes["openve3m"] == {"open": True}
    assert sum(len(s) for s in listed.values()) == 21
    assert sum(len(scenes) for s in listed.values() for scenes in s.values()) == 97
    assert {"spring", "summer", "autumn", "winter"} <= set(listed["season"]) and {"era", "mood", "cinematic"} <= set(
        listed["style"]
    )
    assert "rooftop overlooking skyline" in listed["location"]["urban"]  # Sparkle's published keywords
    assert "ancient stone ruins with wind-swept grass" in listed["location"]["landmark"]
    assert load_data("taxonomy", "taxonomy-v1")["version"] == "taxonomy-v1"


def test_published_metadata_names_the_open_theme_as_sparkle_does():
    from sparkle_bench.synth.publish import _metadata

    merged = {"prompt": "p", "chosen_keyword": "", "original_scene": "a street"}
    assert _metadata("Sparkle_openve3m_1", "openve3m", merged)["metadata"]["edit_type"] == "openve3m_background_change"
    assert _metadata("Sparkle_time_1", "time", merged)["metadata"]["edit_type"] == "time"
