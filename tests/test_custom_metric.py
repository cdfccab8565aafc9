"""Adding a metric is one file: a class defined here, with its own header, direction, order and
tolerance, scored with ``--metrics fg_psnr,fg_ssim,tests.test_custom_metric:EditLuma``, appears in
summary.csv, the ``md`` and terminal tables, the HTML report and the gate, which uses its tolerance;
all of that in fresh processes, where only the run's provenance says where the class is."""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from sparkle_bench.cli import main
from sparkle_bench.metrics import METRICS, Metric, remember
from sparkle_bench.pair import VideoPair
from sparkle_bench.registry import UnknownNameError
from sparkle_bench.regress import Scores, compare, untested_columns

ROOT = Path(__file__).resolve().parents[1]
SPEC = "tests.test_custom_metric:EditLuma"


class EditLuma(Metric):
    """Mean grey level of the edited video (0-255): a stand-in for a user's metric."""

    name, higher_is_better, range, needs_mask = "edit_luma", True, (0.0, 255.0), False
    header, order, tolerance, noise_sd = "eLuma", 15, 0.5, 0.1  # between fg_psnr (10) and fg_ssim (20)

    def compute(self, pair: VideoPair) -> float:
        return float(pair.edited.mean())


class Untolerated(EditLuma):
    """The same metric with no tolerance declared."""

    name, header, tolerance = "edit_luma_untolerated", "eLumaU", None


def fresh(*argv: str) -> subprocess.CompletedProcess:
    """``sparkle-bench ARGV`` in a new interpreter: nothing of this test module is loaded there."""
    return subprocess.run(
        [sys.executable, "-m", "sparkle_bench.cli", *argv], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def run(demo_root, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    assert (
        main(
            [
                "eval",
                "--bench",
                "demo",
                "--model",
                "identity",
                "--limit",
                "5",
                "--workers",
                "1",
                "--runs-dir",
                str(runs),
                "--metrics",
                f"fg_psnr,fg_ssim,{SPEC}",
            ]
        )
        == 0
    )
    return runs / "demo-identity"


def test_its_column_is_in_summary_in_its_declared_place(run):
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["metrics"]["edit_luma"] == SPEC
    columns = [c for c in pd.read_csv(run / "summary.csv").columns if not c.endswith(("_ci_lo", "_ci_hi"))]
    assert columns[columns.index("fg_psnr") : columns.index("fg_ssim") + 1] == ["fg_psnr", "edit_luma", "fg_ssim"]
    summary = pd.read_csv(run / "summary.csv").set_index("theme")
    assert 0 < summary.loc["MACRO", "edit_luma"] < 255 and summary.loc["MACRO", "n_scored"] == 5


def test_tables_in_a_fresh_process_show_its_header_and_order(run):
    md = fresh("table", str(run), "--format", "md")
    assert md.returncode == 0, md.stderr
    header = md.stdout.splitlines()[0]
    assert header.index("| fg_psnr |") < header.index("| edit_luma |") < header.index("| fg_ssim |")
    terminal = fresh("table", str(run))
    assert terminal.returncode == 0, terminal.stderr
    assert re.search(r"fPSNR↑\s+eLuma↑\s+fSSIM↑", terminal.stdout), terminal.stdout  # its header, arrow and place
    assert "eLuma=edit_luma" in terminal.stdout  # in the legend
    board = fresh("leaderboard", str(run), "--format", "table")
    assert re.search(r"fPSNR↑\s+eLuma↑\s+fSSIM↑", board.stdout), board.stdout


def test_the_report_shows_it_among_the_objective_metrics(run, tmp_path):
    done = fresh("report", str(run), "--out", str(tmp_path / "site"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "site/index.html").read_text()
    heads = re.findall(r'<th title="([^"]*)">([^<]*)</th>', page)
    assert ("edit_luma", "eLuma↑") in heads
    first = [h for _, h in heads]
    assert first.index("fPSNR↑") < first.index("eLuma↑") < first.index("fSSIM↑")


def shifted(run: Path, out: Path, by: float) -> Path:
    """A copy of the run with every sample's edit_luma lowered (worsened) by ``by``."""
    shutil.copytree(run, out, ignore=shutil.ignore_patterns("outputs"))
    records = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    for record in records:
        record["metrics"]["edit_luma"] = round(record["metrics"]["edit_luma"] - by, 6)
    (out / "samples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def test_the_gate_uses_its_tolerance_in_a_fresh_process(run, tmp_path):
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(run), "--out", str(baseline)]) == 0
    under = fresh(
        "regress", str(shifted(run, tmp_path / "under", 0.45)), "--baseline", str(baseline), "--format", "csv"
    )
    over = fresh("regress", str(shifted(run, tmp_path / "over", 0.55)), "--baseline", str(baseline), "--format", "csv")
    assert under.returncode == 0, under.stdout + under.stderr
    assert over.returncode == 1, over.stdout + over.stderr
    assert "edit_luma" in over.stderr and "regression" in over.stderr
    table = pd.read_csv(io.StringIO(under.stdout))
    row = table[(table["metric"] == "edit_luma") & (table["theme"] == "all")].iloc[0]
    assert row["tolerance"] == 0.5 and row["tested"] and not row["regressed"]
    assert math.isclose(row["change"], -0.45, abs_tol=1e-6)
    # the run folder against the run folder (provenance on both sides) decides the same
    assert fresh("regress", str(tmp_path / "over"), "--baseline", str(run)).returncode == 1


def scores(values: dict[str, float]) -> Scores:
    return Scores(
        "demo",
        "x",
        "run",
        None,
        {f"s{i}": {"theme": "t", "status": "ok", "judge_status": None, "values": dict(values)} for i in range(6)},
    )


def test_a_metric_without_a_tolerance_is_reported_untested_never_zero():
    remember({"edit_luma_untolerated": "tests.test_custom_metric:Untolerated"})
    baseline = scores({"edit_luma_untolerated": 120.0, "fg_psnr": 30.0, "mystery": 1.0})
    worse = scores({"edit_luma_untolerated": 20.0, "fg_psnr": 30.0, "mystery": 0.0})
    table = compare(worse, baseline, {})
    row = table[table["metric"] == "edit_luma_untolerated"].iloc[0]
    assert not row["tested"] and not row["regressed"] and math.isnan(row["tolerance"])
    assert "mystery" not in set(table["metric"])  # no class, no direction: not compared...
    lines = untested_columns(baseline, {})
    assert lines[0].startswith("edit_luma_untolerated: not tested: Untolerated declares no tolerance")
    assert lines[1].startswith("mystery: not compared: no metric class declares it") and len(lines) == 2  # ...but said
    assert compare(worse, baseline, {"edit_luma_untolerated": 1.0})["regressed"].any()  # given one, it is tested


def test_built_ins_are_found_from_their_files_and_typos_get_hints():
    builtin = [n for n in METRICS.names() if METRICS.target(n).startswith("sparkle_bench.metrics.")]
    assert builtin == sorted(
        [
            "fg_psnr",
            "fg_ssim",
            "fg_motion",
            "fg_lpips",
            "bg_change",
            "bg_dynamics",
            "bg_camera",
            "bg_static",
            "bg_flicker",
            "clip_text",
            "clip_consistency",
        ]
    )
    orders = sorted(builtin, key=lambda n: METRICS.load(n).order)
    assert orders[:4] == ["fg_psnr", "fg_ssim", "fg_motion", "fg_lpips"] and orders[-2:] == [
        "clip_text",
        "clip_consistency",
    ]
    assert all(METRICS.load(n).header for n in builtin)
    # every metric with a direction is gated; bg_camera is informational (no direction, never gated)
    gated = [n for n in builtin if METRICS.load(n).higher_is_better is not None]
    assert gated == [n for n in builtin if n != "bg_camera"] and all(METRICS.load(n).tolerance > 0 for n in gated)
    assert METRICS.load("bg_camera").tolerance is None
    with pytest.raises(UnknownNameError, match="Did you mean 'fg_psnr'"):
        METRICS.target("fg_psnn")
