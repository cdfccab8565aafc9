"""Uncertainty on every figure: bootstrap intervals (per theme, MACRO resampled within themes) in
summary.csv and JSON, ``±`` with ``--ci``, one column order everywhere, no ``nan`` in Markdown, and a
leaderboard that says when runs rest on different samples (``--common`` compares the shared ones)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparkle_bench.bench import Bench, Sample, open_bench
from sparkle_bench.cli import main
from sparkle_bench.tables import summarize

from .crafted import ok, write_run


def bench_of(sizes: dict[str, int]) -> Bench:
    samples = tuple(
        Sample(f"Ci_{t}_{i:03d}", t, "p", Path(f"/nonexistent/{t}{i}.mp4")) for t, n in sizes.items() for i in range(n)
    )
    return Bench("ci", Path("/nonexistent"), samples, checksum="c1")


def test_theme_interval_matches_the_normal_approximation_and_is_deterministic():
    bench = bench_of({"location": 400})
    rng = np.random.default_rng(1)
    values = rng.normal(10, 2, 400)
    records = {s.id: ok(fg_psnr=float(v)) for s, v in zip(bench.samples, values)}
    row = summarize(bench, records, "m").set_index("theme").loc["location"]
    half = (row["fg_psnr_ci_hi"] - row["fg_psnr_ci_lo"]) / 2
    assert half == pytest.approx(1.96 * values.std(ddof=1) / np.sqrt(400), rel=0.12)
    assert row["fg_psnr_ci_lo"] < row["fg_psnr"] < row["fg_psnr_ci_hi"]
    again = summarize(bench, records, "m").set_index("theme").loc["location"]
    assert (again["fg_psnr_ci_lo"], again["fg_psnr_ci_hi"]) == (row["fg_psnr_ci_lo"], row["fg_psnr_ci_hi"])


def test_macro_resamples_within_themes_and_one_sample_has_no_interval():
    bench = bench_of({"location": 6, "season": 6, "style": 1})
    low = [0.0, 0.1, -0.1, 0.05, -0.05, 0.0]  # theme means 0 and 10: pooled resampling would swing by several units
    records = {
        s.id: ok(bg_dynamics=(low[int(s.id[-3:])] + (10 if s.theme == "season" else 0)) if s.theme != "style" else 5.0)
        for s in bench.samples
    }
    table = summarize(bench, records, "m").set_index("theme")
    assert np.isnan(table.loc["style", "bg_dynamics_ci_lo"])  # one sample: no interval
    macro = table.loc["MACRO"]
    assert macro["bg_dynamics"] == pytest.approx(5.0, abs=1e-4)
    # within-theme spread is 0.07, so the MACRO (mean of 3 theme means) moves by at most ~0.05
    assert 0 < macro["bg_dynamics_ci_hi"] - macro["bg_dynamics_ci_lo"] < 0.15


@pytest.fixture()
def demo(demo_root):
    return open_bench("demo")


def records_for(demo: Bench, shift: float = 0.0, skip: tuple[str, ...] = ()) -> dict[str, dict]:
    return {
        s.id: ok(fg_psnr=30.0 + i + shift, bg_static=float(i % 2), bg_dynamics=0.5 + 0.01 * i)
        for i, s in enumerate(demo.samples)
        if s.id not in skip
    }


def test_intervals_in_every_format_in_one_column_order(demo, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    run = write_run(tmp_path / "run", demo, records_for(demo))
    assert main(["table", str(run), "--format", "csv"]) == 0
    csv_out = capsys.readouterr().out
    order = [
        "fg_psnr",
        "fg_psnr_ci_lo",
        "fg_psnr_ci_hi",
        "bg_dynamics",
        "bg_dynamics_ci_lo",
        "bg_dynamics_ci_hi",
        "bg_static",
        "bg_static_ci_lo",
        "bg_static_ci_hi",
    ]
    file_columns = pd.read_csv(run / "summary.csv").columns.tolist()
    assert [c for c in file_columns if c in order] == order  # subject before background, each with its interval
    assert pd.read_csv(io.StringIO(csv_out)).columns.tolist() == file_columns
    assert main(["table", str(run), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert (
        list(rows[-1]) == file_columns and rows[-1]["fg_psnr_ci_lo"] < rows[-1]["fg_psnr"] < rows[-1]["fg_psnr_ci_hi"]
    )
    assert main(["table", str(run), "--format", "md"]) == 0
    md = capsys.readouterr().out
    header = [c.strip() for c in md.splitlines()[0].strip("|").split("|")]
    assert [c for c in header if c in order] == ["fg_psnr", "bg_dynamics", "bg_static"] and "nan" not in md
    assert main(["table", str(run), "--format", "md", "--ci"]) == 0
    macro = capsys.readouterr().out.splitlines()
    assert "±" in next(line for line in macro if "| MACRO |" in line) and any(line.startswith("±:") for line in macro)
    assert main(["table", str(run), "--ci"]) == 0
    terminal = capsys.readouterr().out
    heads = next(line for line in terminal.splitlines() if "fPSNR" in line).split()
    assert heads.index("fPSNR↑") < heads.index("bDyn↑") < heads.index("frozen↓")
    macro_line = next(line for line in terminal.splitlines() if line.startswith("MACRO") and "±" in line)
    assert macro_line.count("±") == 3


def test_leaderboard_warns_on_other_samples_and_common_compares_the_shared(demo, tmp_path, capsys):
    full = write_run(tmp_path / "a" / "run", demo, records_for(demo), model="identity", label="same")
    dropped = ("Demo_location_000", "Demo_season_001")
    part = write_run(
        tmp_path / "b" / "run", demo, records_for(demo, shift=1.0, skip=dropped), model="identity", label="same"
    )
    for run in (full, part):
        assert main(["table", str(run), "--format", "csv"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", str(full), str(part), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "scores rest on different samples (same (a/run) 12, same (b/run) 10; 10 shared)" in err.replace("\n", " ")
    board = pd.read_csv(io.StringIO(out)).set_index("model")
    assert sorted(board.index) == ["same (a/run)", "same (b/run)"]  # one label, one folder name: told apart by path
    assert main(["leaderboard", str(full), str(part), "--format", "csv", "--common"]) == 0
    out, err = capsys.readouterr()
    assert "different samples" not in err
    common = pd.read_csv(io.StringIO(out)).set_index("model")
    assert common.loc["same (a/run)", "n_scored"] == 10
    # on the shared samples the two runs differ by exactly the shift
    assert common.loc["same (b/run)", "fg_psnr"] - common.loc["same (a/run)", "fg_psnr"] == pytest.approx(1.0, abs=1e-4)
    assert board.loc["same (b/run)", "fg_psnr"] - board.loc["same (a/run)", "fg_psnr"] != pytest.approx(1.0, abs=1e-3)
