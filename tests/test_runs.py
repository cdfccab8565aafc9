"""End to end through the CLI: demo table separates edits; bad outputs are counted; resume after SIGKILL."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from sparkle_bench.cli import main
from sparkle_bench.demo import demo_clips, render_source
from sparkle_bench.records import read_jsonl
from sparkle_bench.video import read_frames, write_video


def summary(run_dir):
    return pd.read_csv(run_dir / "summary.csv").set_index("theme")


def test_demo_table_separates_no_edit_frozen_and_living(demo_root, tmp_path):
    runs = tmp_path / "runs"
    for model in ("identity", "still-composite", "reference"):
        assert main(["eval", "--bench", "demo", "--model", model, "--runs-dir", str(runs)]) == 0
    ident, still, ref = (summary(runs / f"demo-{m}").loc["MACRO"] for m in ("identity", "still-composite", "reference"))
    assert ident["n_scored"] == still["n_scored"] == ref["n_scored"] == 12
    assert ident["bg_change"] < 0.01 < 0.15 < still["bg_change"]  # no edit vs replaced background
    assert still["bg_static"] == 1.0  # frozen
    # alive, but for the one blind spot the bg_dynamics card names: 1-px rain streaks moving 12-24 px per
    # flow step, which no flow tracks ("rainy noir alley"); every other reference edit reads living
    records = {r["id"]: r for r in read_jsonl(runs / "demo-reference/samples.jsonl")}
    assert [i for i, r in records.items() if r["metrics"]["bg_static"]] == ["Demo_style_000"]
    assert ref["bg_dynamics"] > 10 * still["bg_dynamics"]
    assert min(still["fg_psnr"], ref["fg_psnr"]) > 35  # the subject is kept in both


def test_ls_models_imports_no_torch():
    code = (
        "import sys; from sparkle_bench.cli import main; main(['ls', 'models']); main(['ls', 'metrics']); "
        "assert 'torch' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "precomputed" in out.stdout and "bg_dynamics" in out.stdout


def test_unknown_model_suggests(capsys):
    assert main(["eval", "--model", "kiwi-edt"]) == 2
    assert "Did you mean 'kiwi-edit'" in capsys.readouterr().err


@pytest.fixture
def messy_outputs(demo_root, tmp_path):
    """Flat precomputed folder: cropped, shortened, corrupt, missing, and a stray file."""
    out = tmp_path / "outputs"
    out.mkdir()
    refs = {p.name[: -len("_edited.mp4")]: p for p in (demo_root / "reference").rglob("*_edited.mp4")}
    for path in refs.values():
        shutil.copy(path, out / path.name)
    small = read_frames(refs["Demo_time_000"])[:30, 8:248]  # centre-cropped to 448x240 (as Kiwi crops), shorter
    write_video(out / "Demo_time_000_edited.mp4", small, 16)
    (out / "Demo_style_001_edited.mp4").write_bytes(b"\x00" * 1000)  # corrupt
    (out / "Demo_season_002_edited.mp4").unlink()  # missing
    (out / "notes.txt").write_text("stray")
    return out


def test_precomputed_with_bad_outputs_counts_every_problem(messy_outputs, tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(
        [
            "eval",
            "--bench",
            "demo",
            "--model",
            f"precomputed:{messy_outputs}",
            "--runs-dir",
            str(runs),
            "--run-name",
            "messy",
            "--strict",
        ]
    )
    assert code == 3  # --strict: failures present
    err = capsys.readouterr().err
    assert "failed style/Demo_style_001" in err and "missing season/Demo_season_002" in err and "ignoring 1 file" in err
    table = summary(runs / "messy")
    assert table.loc["style", "n_failed"] == 1 and table.loc["season", "n_missing"] == 1
    assert table.loc["MACRO", ["n_total", "n_scored", "n_failed", "n_missing"]].tolist() == [12, 10, 1, 1]
    records = {r["id"]: r for r in pd.read_json(runs / "messy" / "samples.jsonl", lines=True).to_dict("records")}
    assert any("truncated to 30" in n for n in records["Demo_time_000"]["alignment"])
    assert any("448x240" in n for n in records["Demo_time_000"]["alignment"])
    assert records["Demo_time_000"]["metrics"]["fg_psnr"] > 25


def test_mask_of_wrong_shape_fails_only_that_sample(demo_root, tmp_path):
    bench = tmp_path / "bench"
    shutil.copytree(demo_root, bench)
    clip = next(c for c in demo_clips() if c.id == "Demo_time_001")
    _, masks = render_source(clip)
    from sparkle_bench.masks import save_mask

    save_mask(bench / "masks/time/Demo_time_001.npz", masks[:-3])
    assert main(["eval", "--bench", str(bench), "--model", "reference", "--runs-dir", str(tmp_path / "runs")]) == 0
    table = summary(tmp_path / "runs/sparkle-reference")
    assert table.loc["time", "n_failed"] == 1 and table.loc["MACRO", "n_scored"] == 11


def test_sigkill_midway_then_resume_matches_uninterrupted(messy_outputs, tmp_path):
    args = ["--bench", "demo", "--model", f"precomputed:{messy_outputs}", "--runs-dir", str(tmp_path / "runs")]
    assert main(["eval", *args, "--run-name", "clean"]) == 0
    env = dict(os.environ)
    cmd = [sys.executable, "-m", "sparkle_bench.cli", "eval", *args, "--run-name", "killed"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    records = tmp_path / "runs/killed/samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not records.exists() or records.read_text().count("\n") < 4):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = records.read_text().count("\n")
    assert 4 <= done_before < 12, "the kill must land mid-run"
    assert main(["eval", *args, "--run-name", "killed"]) == 0
    lines = records.read_text().splitlines()
    assert len({__import__("json").loads(line)["id"] for line in lines}) == 12
    assert len(lines) == 12  # nothing scored twice
    assert (tmp_path / "runs/killed/summary.csv").read_text() == (tmp_path / "runs/clean/summary.csv").read_text()
