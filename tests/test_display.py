"""Tables people can read: hand-computed means, 100 columns, integer counts, labels, loud missing masks."""

from __future__ import annotations

import json
import re
import shutil

import pandas as pd
import pytest

from sparkle_bench.bench import open_bench
from sparkle_bench.cli import main

from .conftest import make_sparkle_bench
from .crafted import ok, write_run


@pytest.fixture()
def demo(demo_root):
    return open_bench("demo")


def crafted_records() -> dict[str, dict]:
    """Demo ids, 3 per theme: failures, never-scored and missing samples, an unavailable value."""
    unavailable = {
        "status": "ok",
        "metrics": {"fg_psnr": None, "bg_static": 0.0},
        "unavailable": {"fg_psnr": "foreground mask is empty: no subject to measure"},
    }
    return {
        "Demo_location_000": ok(fg_psnr=30.0, bg_static=0.0),
        "Demo_location_001": ok(fg_psnr=33.0, bg_static=1.0),
        "Demo_location_002": ok(fg_psnr=36.0, bg_static=1.0),
        "Demo_season_000": ok(fg_psnr=20.0, bg_static=0.0),
        "Demo_season_001": ok(fg_psnr=25.0, bg_static=1.0),
        "Demo_season_002": {"status": "failed", "reason": "cannot open x.mp4"},
        "Demo_style_000": ok(fg_psnr=40.0, bg_static=0.0),
        "Demo_style_001": {"status": "missing", "reason": "no edited video"},
        # Demo_style_002: never scored, counted as missing
        "Demo_time_000": ok(fg_psnr=31.0, bg_static=0.0),
        "Demo_time_001": ok(fg_psnr=32.5, bg_static=0.0),
        "Demo_time_002": unavailable,
    }


def test_table_values_equal_hand_computed_means(demo, tmp_path, capsys):
    run = write_run(tmp_path / "run", demo, crafted_records())
    assert main(["table", str(run), "--format", "json"]) == 0
    rows = {r["theme"]: r for r in json.loads(capsys.readouterr().out)}
    theme_psnr = {"location": 33.0, "season": 22.5, "style": 40.0, "time": 31.75}
    theme_static = {"location": 2 / 3, "season": 0.5, "style": 0.0, "time": 0.0}
    for theme in theme_psnr:
        assert rows[theme]["fg_psnr"] == pytest.approx(theme_psnr[theme], abs=1e-4)
        assert rows[theme]["bg_static"] == pytest.approx(theme_static[theme], abs=1e-4)
    assert rows["MACRO"]["fg_psnr"] == pytest.approx(sum(theme_psnr.values()) / 4, abs=1e-4)  # mean of theme means
    assert rows["MACRO"]["bg_static"] == pytest.approx(sum(theme_static.values()) / 4, abs=1e-4)
    counts = {t: [rows[t][c] for c in ("n_total", "n_scored", "n_failed", "n_missing")] for t in rows}
    assert counts == {
        "location": [3, 3, 0, 0],
        "season": [3, 2, 1, 0],
        "style": [3, 1, 0, 2],
        "time": [3, 3, 0, 0],
        "MACRO": [12, 9, 1, 2],
    }
    assert rows["time"]["unavailable"] == "fg_psnr:1" and rows["MACRO"]["unavailable"] == "fg_psnr:1"
    # the file: integer counts, and MACRO last
    lines = (run / "summary.csv").read_text().splitlines()
    assert lines[-1].startswith("demo,identity,measured,MACRO,12,9,1,2,")
    assert lines[2].split(",")[3:8] == ["season", "3", "2", "1", "0"]


def test_terminal_table_fits_100_columns_with_short_headers_and_legend(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    judge = {
        s.id: {
            "judge_overall": 3.0,
            "judge_instruction": 4,
            "judge_visual_quality": 3,
            "judge_fg_integrity": 3,
            "judge_fg_motion": 3,
            "judge_bg_dynamics": 2,
            "judge_bg_quality": 3,
        }
        for s in demo.samples
    }
    every = [
        "fg_psnr",
        "fg_ssim",
        "fg_motion",
        "fg_lpips",
        "bg_change",
        "bg_dynamics",
        "bg_static",
        "bg_flicker",
        "clip_text",
        "clip_consistency",
    ]
    records = {s.id: ok(**{m: 0.123456 * (i + 1) for i, m in enumerate(every)}) for s in demo.samples}
    runs = []
    for name in ("a-model-with-a-rather-long-descriptive-label", "kiwi-edit", "still-composite"):
        runs.append(
            str(write_run(tmp_path / name, demo, records, model=f"precomputed:/data/outputs/{name}", judge=judge))
        )
        assert main(["table", runs[-1], "--format", "csv"]) == 0
    capsys.readouterr()
    summary = pd.read_csv(f"{runs[0]}/summary.csv")  # objective and judge tables merged: MACRO still last
    assert summary["theme"].tolist() == ["location", "season", "style", "time", "MACRO"]
    assert main(["leaderboard", *runs, "--published", "sparkle_bench", "--all-themes"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    assert "/data/outputs" not in out  # runs go by their label, the folder's name
    for header in ("fPSNR↑", "frozen↓", "clipTxt↑", "IC↑", "OVQ↑", "BD↑", "BVQ↑", "miss"):
        assert header in out
    assert "frozen=bg_static" in out and "OVQ=Overall Visual Quality" in out and "↑ higher is better" in out
    # models as rows, each model's MACRO after its themes, published rows after measured ones
    judge_table = out.split("judge, 1-5")[1].splitlines()  # the first judge table
    kiwi = [line for line in judge_table if line.startswith(("kiwi-edit", "Kiwi-Edit"))]
    assert [line.split()[:2] for line in kiwi] == [
        ["kiwi-edit", t] for t in ("location", "season", "style", "time", "MACRO")
    ] + [["Kiwi-Edit", "(paper)"]]
    paper = [i for i, line in enumerate(judge_table) if "(paper)" in line]
    measured = [i for i, line in enumerate(judge_table) if line.startswith(("kiwi-edit", "still-composite"))]
    assert len(paper) == 3 and min(paper) > max(measured)
    assert kiwi[-1].split()[2:5] == ["MACRO", "sparkle", "2.54"]


def test_leaderboard_csv_has_integer_counts_and_run_labels(demo, tmp_path, capsys):
    records = crafted_records()
    first = write_run(tmp_path / "one", demo, records, model=f"precomputed:{tmp_path}/outputs/kiwi-edit")
    second = write_run(tmp_path / "two", demo, records, model="identity", label="my baseline")
    for run in (first, second):
        assert main(["table", str(run)]) == 0
    capsys.readouterr()
    board = tmp_path / "board.csv"
    assert (
        main(
            [
                "leaderboard",
                str(first),
                str(second),
                "--published",
                "sparkle_bench",
                "--csv",
                str(board),
                "--format",
                "csv",
            ]
        )
        == 0
    )
    text = board.read_text()
    assert "12.0000" not in text and "458.0000" not in text
    frame = pd.read_csv(board)
    assert frame["model"].tolist() == ["kiwi-edit", "my baseline", "Kiwi-Edit", "Kiwi-Sparkle", "Lucy-Edit-1.1"]
    assert re.search(r"\nsparkle,Kiwi-Edit,paper,MACRO,,458,,,,", text)
    assert re.search(r"\ndemo,kiwi-edit,measured,MACRO,1-2,12,9,1,2,", text)
    assert capsys.readouterr().out.splitlines()[0].startswith("bench,model,source,theme,rank,n_total")


def test_columns_and_markdown(demo, tmp_path, capsys):
    run = write_run(tmp_path / "run", demo, crafted_records())
    assert main(["table", str(run), "--columns", "fPSNR,counts", "--format", "md"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        lines[0]
        == "| bench | model | source | theme | n_total | n_scored | n_failed | n_missing | n_short | n_orientation "
        "| fg_psnr |"
    )
    assert (
        lines[-1] == "| demo | identity | measured | MACRO | 12 | 9 | 1 | 2 | 0 | 0 | 31.8* |"
    )  # * : some samples lacked it
    assert main(["table", str(run), "--columns", "fg_psnr,nonsense"]) == 2
    assert "unknown column(s) nonsense" in capsys.readouterr().err


def test_missing_masks_are_loud_and_fail_strict(demo_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    bench = tmp_path / "bench"
    shutil.copytree(demo_root, bench, ignore=shutil.ignore_patterns("masks", "reference"))
    args = [
        "eval",
        "--bench",
        str(bench),
        "--model",
        "identity",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--ids",
        "Demo_time_000,Demo_style_001,Demo_season_002",
        "--workers",
        "1",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert captured.err.rstrip().splitlines()[-1] == (
        "warning: fg_psnr, fg_ssim, fg_motion, bg_change, bg_dynamics, bg_camera, bg_static, bg_flicker: no foreground "
        "mask for 3/3 samples: run `sparkle-bench masks` or pass --masks DIR"
    )
    macro = next(line for line in captured.out.splitlines() if line.startswith("MACRO") and "n/a" in line)
    assert macro.split()[1:] == ["n/a"] * 8  # marked, not blank
    assert "n/a: unavailable" in captured.out
    summary = pd.read_csv(tmp_path / "runs/sparkle-identity/summary.csv").set_index("theme")
    assert (
        summary.loc["MACRO", "unavailable"]
        == "bg_camera:3;bg_change:3;bg_dynamics:3;bg_flicker:3;bg_static:3;fg_motion:3;fg_psnr:3;fg_ssim:3"
    )
    assert main(["table", str(tmp_path / "runs/sparkle-identity"), "--strict"]) == 3


@pytest.mark.real_clips
def test_real_clips_without_masks_say_why_then_score_with_masks(real_dir, tmp_path, capsys, monkeypatch):
    """The published Sparkle-Bench ships no masks: the first thing most users see."""
    monkeypatch.setenv("COLUMNS", "100")
    ids = ["Sparkle_location_000598", "Sparkle_time_000367"]
    bench = make_sparkle_bench(tmp_path / "bench", {i: real_dir / f"pairs/{i}_source.mp4" for i in ids})
    args = [
        "eval",
        "--bench",
        str(bench),
        "--model",
        f"precomputed:{real_dir / 'pairs'}",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--strict",
    ]
    assert main([*args, "--run-name", "no-masks"]) == 3
    err = capsys.readouterr().err
    assert (
        "fg_psnr, fg_ssim, fg_motion, bg_change, bg_dynamics, bg_camera, bg_static, bg_flicker: no foreground mask for "
        "2/2 samples" in err
    )
    assert main([*args, "--run-name", "masks", "--masks", str(real_dir / "masks"), "--label", "sparkle-reference"]) == 0
    out = capsys.readouterr().out
    assert "sparkle-reference" in out and "n/a" not in out and max(len(line) for line in out.splitlines()) <= 100


def test_legend_lines_never_break_inside_an_entry():
    from sparkle_bench.display import legend_lines

    notes = ["OVQ=Overall Visual Quality", "FMC=Foreground Motion Consistency", "↑ higher is better, ↓ lower"]
    lines = legend_lines(notes, 40)
    assert lines == notes  # each too long to share a line: one a line, whole
    assert legend_lines(notes[:1] + ["N=n_total"], 40) == ["OVQ=Overall Visual Quality  N=n_total"]
    assert legend_lines(["a very long note that is wider than the line"], 10) == [
        "a very long note that is wider than the line"
    ]


def test_number_writes_infinite_values():
    """``regress`` reports ``inf`` as what a one-sample group could detect; ``--format md`` printed it by crashing."""
    from sparkle_bench.display import number

    assert [number(v) for v in (0.0, float("inf"), -float("inf"), 38.4045, 0.01184)] == [
        "0",
        "inf",
        "-inf",
        "38.4",
        "0.0118",
    ]
