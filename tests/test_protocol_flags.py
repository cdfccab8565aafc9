"""Outputs that break the protocol are scored but counted, never passed off as complete: a 41-of-81
frame and a 1-frame output of real clips show as short in samples.jsonl, summary.csv, every table
format, the report and `regress`, and fail `--strict`; a complete run shows zeros. `eval` on
outputs no decoder reads exits 1 naming the first cause in one line."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from sparkle_bench.cli import main
from sparkle_bench.video import read_frames, write_video

from .conftest import make_sparkle_bench

IDS = ["Sparkle_time_000028", "Sparkle_location_000223", "Sparkle_season_000029"]


@pytest.fixture(scope="module")
def setup(real_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("flags")
    pairs = real_dir / "pairs"
    bench = make_sparkle_bench(
        root / "bench",
        {i: pairs / f"{i}_source.mp4" for i in IDS},
        {i: real_dir / "masks" / f"{i}_source.npz" for i in IDS},
    )
    complete, flagged, broken = root / "complete", root / "flagged", root / "broken"
    for folder in (complete, flagged, broken):
        folder.mkdir()
    for i in IDS:
        os.symlink(pairs / f"{i}_edited.mp4", complete / f"{i}_edited.mp4")
        (broken / f"{i}_edited.mp4").write_text("not a video")
    os.symlink(pairs / f"{IDS[0]}_edited.mp4", flagged / f"{IDS[0]}_edited.mp4")
    frames = read_frames(pairs / f"{IDS[1]}_edited.mp4", (320, 180), range(41))
    write_video(flagged / f"{IDS[1]}_edited.mp4", frames, 16)  # 41 of 81 frames, same rate: 2.56 of 5.06 s
    write_video(flagged / f"{IDS[2]}_edited.mp4", read_frames(pairs / f"{IDS[2]}_edited.mp4", (320, 180), [0]), 16)
    runs = root / "runs"
    common = ["--bench", str(bench), "--runs-dir", str(runs), "--work-height", "144", "--workers", "1"]
    assert main(["eval", *common, "--model", f"precomputed:{complete}", "--run-name", "complete", "--strict"]) == 0
    assert main(["eval", *common, "--model", f"precomputed:{flagged}", "--run-name", "flagged"]) == 0  # not --strict
    return {"root": root, "runs": runs, "common": common, "broken": broken, "flagged": flagged}


def test_short_outputs_are_flagged_in_records_and_every_table(setup, capsys):
    runs = setup["runs"]
    records = {r["id"]: r for r in map(json.loads, (runs / "flagged/samples.jsonl").read_text().splitlines())}
    assert [records[i]["status"] for i in IDS] == ["ok"] * 3
    assert records[IDS[0]]["flags"] == {}
    assert records[IDS[1]]["flags"]["short"] == "covers 41 of the protocol's 81 source frames (2.56 s of 5.06 s)"
    assert "too few to measure motion" in records[IDS[2]]["flags"]["short"]
    flagged, complete = (pd.read_csv(runs / n / "summary.csv").set_index("theme") for n in ("flagged", "complete"))
    assert flagged.loc["MACRO", ["n_scored", "n_short", "n_orientation"]].tolist() == [3, 2, 0]
    assert flagged.loc["location", "n_short"] == 1 and flagged.loc["time", "n_short"] == 0
    assert complete.loc["MACRO", ["n_scored", "n_short", "n_orientation"]].tolist() == [3, 0, 0]
    capsys.readouterr()
    assert main(["table", str(runs / "flagged"), "--format", "json"]) == 0
    macro = next(r for r in json.loads(capsys.readouterr().out) if r["theme"] == "MACRO")
    assert macro["n_short"] == 2 and macro["n_orientation"] == 0
    assert main(["table", str(runs / "flagged"), "--format", "md", "--columns", "counts"]) == 0
    header, _, *rows = capsys.readouterr().out.splitlines()
    assert "n_short" in header and rows[-1].split("|")[header.split("|").index(" n_short ")].strip() == "2"
    assert main(["table", str(runs / "flagged")]) == 0
    assert "short" in capsys.readouterr().out  # the terminal view's header


def test_strict_fails_on_short_and_a_complete_run_passes(setup):
    runs = setup["runs"]
    assert main(["table", str(runs / "flagged"), "--strict"]) == 3
    assert main(["table", str(runs / "complete"), "--strict"]) == 0
    # the 41-frame output alone has every metric: only its short flag fails --strict
    assert (
        main(
            [
                "eval",
                *setup["common"],
                "--model",
                f"precomputed:{setup['flagged']}",
                "--ids",
                f"{IDS[0]},{IDS[1]}",
                "--run-name",
                "short41",
                "--strict",
            ]
        )
        == 3
    )
    table = pd.read_csv(runs / "short41" / "summary.csv").set_index("theme")
    assert table.loc["MACRO", "n_short"] == 1 and table["unavailable"].isna().all()


def test_report_shows_the_count_and_the_flag(setup):
    from sparkle_bench.report import build_report

    page = build_report([setup["runs"] / "flagged"], setup["root"] / "report", [], "t", False).read_text()
    assert ">short<" in page  # the leaderboard's count header and the sample's tag
    assert "covers 41 of the protocol&#x27;s 81 source frames" in page  # the tag says why
    assert 'data-state="short"' in page and '<option value="short">' in page


def test_regress_fails_when_complete_samples_become_short(setup, capsys):
    runs = setup["runs"]
    assert main(["baseline", str(runs / "complete"), "--out", str(setup["root"] / "baseline.json")]) == 0
    capsys.readouterr()
    assert main(["regress", str(runs / "flagged"), "--baseline", str(setup["root"] / "baseline.json")]) == 1
    out = capsys.readouterr().out
    assert "samples complete" in out and IDS[1] in out and IDS[2] in out
    assert main(["regress", str(runs / "complete"), "--baseline", str(setup["root"] / "baseline.json")]) == 0


def test_eval_on_unreadable_outputs_exits_1_with_one_line(setup, capsys):
    code = main(["eval", *setup["common"], "--model", f"precomputed:{setup['broken']}", "--run-name", "broken"])
    assert code == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if "no sample could be scored" in line]
    assert len(lines) == 1 and "3 failed" in lines[0] and "corrupt or not a video" in lines[0], lines
