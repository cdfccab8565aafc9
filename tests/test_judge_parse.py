"""The answer parser, the cap and the rubrics, on crafted text."""

from __future__ import annotations

import dataclasses

import pytest

from sparkle_bench.judge.parse import AnswerError, capped, parse_answer, score_columns
from sparkle_bench.judge.rubrics import RubricError, load_rubric, prompt_from_script, with_text_from

SPARKLE = load_rubric("sparkle")
OPENVE = load_rubric("openve")
LINES = (
    "Instruction Compliance: 4\nOverall Visual Quality: 3\nForeground Integrity: 5\n"
    "Foreground Motion Consistency: 5\nBackground Dynamics: 2\nBackground Visual Quality: 4"
)


@pytest.mark.parametrize(
    "text",
    [
        LINES,
        "**Instruction Compliance**: 4/5\n**Overall Visual Quality:** 3\n- Foreground Integrity: 5\n"
        "4. Foreground Motion Consistency: 5\nBackground Dynamics = 2\nBackground Visual Quality: 4.",
        '```json\n{"Instruction Compliance": 4, "Overall Visual Quality": 3, "fg_integrity": 5, '
        '"Foreground Motion Consistency": {"score": 5}, "Background Dynamics": 2, "Background Visual Quality": 4}\n```',
        "4 3 5 5 2 4",
        "4, 3, 5, 5, 2, 4",
        "\n".join(reversed(LINES.splitlines())),  # named lines may come in any order
        LINES.replace(": ", " - "),
        '{"scores": {"Instruction Compliance": 4, "Overall Visual Quality": 3, "Foreground Integrity": 5, '
        '"Foreground Motion Consistency": 5, "Background Dynamics": 2, "Background Visual Quality": 4}}',
        "[4, 3, 5, 5, 2, 4]",
    ],
)
def test_readable_answers(text):
    assert parse_answer(text, SPARKLE) == [4, 3, 5, 5, 2, 4]


@pytest.mark.parametrize(
    "text, why",
    [
        ("\n".join(LINES.splitlines()[:5]), "no score for Background Visual Quality"),
        ("Here are my scores:\n" + LINES, "extra text"),
        (LINES.replace("Dynamics: 2", "Dynamics: 2 (the sky is frozen)"), "extra text"),
        (LINES.replace("Compliance: 4", "Compliance: 0"), "score 0 is outside 1-5"),
        (LINES.replace("Quality: 4", "Quality: 7"), "score 7 is outside 1-5"),
        (LINES.replace("Compliance: 4", "Compliance: 3.5"), "not an integer"),
        (LINES + "\nBackground Dynamics: 3", "scored twice"),
        ("4 3 5 5 2", "5 scores, not 6"),
        ("45 3 5 5 2 4", "score 45 is outside 1-5"),
        ('{"Instruction Compliance": 4', "does not parse"),
        ("", "no score for Instruction Compliance"),
        ("[4, 3, 5]", "3 scores, not 6"),
    ],
)
def test_unreadable_answers_say_why(text, why):
    with pytest.raises(AnswerError, match=why):
        parse_answer(text, SPARKLE)


def test_lenient_rubric_reads_score_lines_among_reasons():
    lenient = dataclasses.replace(SPARKLE, strict=False)
    text = (
        "Evaluation:\n" + LINES.replace("Compliance: 4", "Compliance Score: 4 - the scene matches") + "\nOverall, fine."
    )
    assert parse_answer(text, lenient) == [4, 3, 5, 5, 2, 4]


def test_cap_and_overall():
    assert capped([2, 5, 4, 1, 3, 2], SPARKLE) == [2, 2, 2, 1, 2, 2]
    columns = score_columns([3, 5, 1, 4, 5, 3], SPARKLE)
    assert columns["judge_bg_dynamics"] == 3 and columns["judge_fg_integrity"] == 1
    assert columns["judge_overall"] == pytest.approx((3 + 3 + 1 + 3 + 3 + 3) / 6)


def test_openve_rubric_has_three_capped_dimensions():
    assert [d.title for d in OPENVE.dimensions] == [
        "Instruction Compliance",
        "Consistency & Detail Fidelity",
        "Visual Quality & Stability",
    ]
    scores = parse_answer(
        "Instruction Compliance: 2\nConsistency and Detail Fidelity: 4\nVisual Quality & Stability: 1", OPENVE
    )
    assert score_columns(scores, OPENVE) == {
        "judge_instruction": 2,
        "judge_consistency": 2,
        "judge_visual_quality": 1,
        "judge_overall": pytest.approx(5 / 3),
    }
    assert OPENVE.columns == ["judge_overall", "judge_instruction", "judge_consistency", "judge_visual_quality"]


def test_prompt_names_every_dimension_in_order_with_the_instruction():
    text = SPARKLE.prompt("Put the dog on a snowy street at night.")
    positions = [text.index(f"{d.title}:") for d in SPARKLE.dimensions]
    assert positions == sorted(positions)
    assert "Instruction: Put the dog on a snowy street at night." in text
    assert text.rstrip().endswith("Background Visual Quality: <1-5>")


def test_rubric_text_from_script_and_plain_file(tmp_path):
    script = (
        "import os\nos.remove('/definitely/not/here')\n"
        "SHORT = 'Instruction Compliance only'\n"
        "TEMPLATE = '''Score the edit. Edit: {prompt}\n"
        "Instruction Compliance, Overall Visual Quality, Foreground Integrity, Foreground Motion Consistency,\n"
        "Background Dynamics, Background Visual Quality.'''\n"
    )
    text = prompt_from_script(script, SPARKLE)
    assert text.startswith("Score the edit.") and "{prompt}" in text
    (tmp_path / "eval.py").write_text(script)
    custom = with_text_from(SPARKLE, tmp_path / "eval.py")
    assert custom.version.startswith("custom-") and not custom.strict
    assert "Edit: make it snow" in custom.prompt("make it snow")
    (tmp_path / "rubric.txt").write_text("Rate the edit on the six dimensions.\n")
    assert custom.version != with_text_from(SPARKLE, tmp_path / "rubric.txt").version
    assert with_text_from(SPARKLE, tmp_path / "rubric.txt").prompt("make it snow").endswith("Instruction: make it snow")
    with pytest.raises(RubricError, match="names the sparkle rubric"):
        prompt_from_script("X = 'hello'\n", SPARKLE)
