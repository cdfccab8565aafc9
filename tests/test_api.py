"""The Python API is the CLI: ``sparkle_bench.evaluate`` from another folder writes the files
``sparkle-bench eval`` writes, byte for byte where nothing is a clock or a path; an adapter instance
is accepted wherever a model name is; the stages run one by one give the same files; a judge's API
key never reaches the run folder."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import sparkle_bench
from sparkle_bench.api import RunSettings, ScoreSettings, Selection, infer, judge, score, summarize
from sparkle_bench.cli import main
from sparkle_bench.judge.setup import JudgeOptions
from sparkle_bench.models import EditedVideo, ModelAdapter
from sparkle_bench.models.baselines import Identity
from sparkle_bench.video import probe, read_frames

ROOT = Path(__file__).resolve().parents[1]
CLOCKS = ("seconds", "peak_gpu_mb")  # timing fields: differ between any two runs


def lines(path: Path, run_dir: Path) -> list[dict]:
    """A records file without its timings, edited paths relative to their run folder."""
    out = []
    for line in path.read_text().splitlines():
        record = {k: v for k, v in json.loads(line).items() if k not in CLOCKS}
        if record.get("edited"):
            record["edited"] = str(Path(record["edited"]).resolve().relative_to(run_dir.resolve()))
        out.append(record)
    return sorted(out, key=lambda r: r["id"])


def provenance(run_dir: Path) -> dict:
    """What a run records, less when it was written and where its runs folder is."""
    data = json.loads((run_dir / "provenance.json").read_text())
    data.pop("updated")
    data["arguments"].pop("runs_dir")
    return data


def same_run(a: Path, b: Path) -> None:
    assert (a / "summary.csv").read_bytes() == (b / "summary.csv").read_bytes()
    for name in ("samples.jsonl", "inference.jsonl"):
        assert lines(a / name, a) == lines(b / name, b)
    assert provenance(a) == provenance(b)


@pytest.fixture(scope="module")
def cli_run(demo_root, tmp_path_factory) -> Path:
    runs = tmp_path_factory.mktemp("cli")
    assert (
        main(
            [
                "eval",
                "--bench",
                "demo",
                "--model",
                "identity",
                "--limit",
                "2",
                "--workers",
                "1",
                "--runs-dir",
                str(runs),
            ]
        )
        == 0
    )
    return runs / "demo-identity"


def test_evaluate_from_another_folder_equals_the_cli(cli_run, tmp_path, monkeypatch):
    elsewhere = tmp_path / "notebook"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = sparkle_bench.evaluate(bench="demo", model="identity", limit=2, workers=1, runs_dir="api-runs")
    assert result.exit_code == 0 and result.run_dir == Path("api-runs/demo-identity")
    assert (elsewhere / "api-runs/demo-identity/summary.csv").is_file()
    same_run(result.run_dir, cli_run)
    pd.testing.assert_frame_equal(pd.read_csv(result.run_dir / "summary.csv"), pd.read_csv(cli_run / "summary.csv"))
    assert {k: r["metrics"] for k, r in result.records.items()} == {
        r["id"]: r["metrics"] for r in lines(cli_run / "samples.jsonl", cli_run)
    }
    # the identity edit keeps the subject and leaves the static demo background as it was
    assert result.macro["fg_psnr"] > 35 and result.macro["bg_change"] < 0.01 and result.macro["bg_static"] == 1.0
    assert result.summary.loc[result.summary["theme"] == "MACRO", "n_scored"].item() == 2


class Frozen(ModelAdapter):
    """An adapter no registry knows, as a notebook would write one: the first frame, held."""

    name = "frozen-test"

    def edit(self, sample) -> EditedVideo:
        frames = read_frames(sample.source)
        return EditedVideo(np.repeat(frames[:1], len(frames), axis=0), probe(sample.source).fps)


def test_an_adapter_instance_is_accepted_wherever_a_model_name_is(cli_run, tmp_path):
    result = sparkle_bench.evaluate(bench="demo", model=Identity(), limit=2, workers=1, runs_dir=tmp_path)
    same_run(result.run_dir, cli_run)  # the instance is recorded by its spec, as the name would be

    frozen = sparkle_bench.evaluate(
        bench="demo", model=Frozen(), limit=2, workers=1, runs_dir=tmp_path, label="held still"
    )
    recorded = json.loads((frozen.run_dir / "provenance.json").read_text())
    assert (
        frozen.run_dir.name == "demo-frozen-test"
        and recorded["model"] == recorded["arguments"]["model"] == "frozen-test"
    )
    assert frozen.summary["model"].eq("held still").all()
    assert (
        frozen.macro["bg_static"] == 1 and frozen.macro["fg_motion"] > 10 * result.macro["fg_motion"]
    )  # the subject held too


def test_the_stages_run_alone_give_the_same_files(cli_run, tmp_path):
    run = RunSettings("identity", Selection("demo", limit=2), runs_dir=tmp_path)
    inferred = infer(run)
    assert inferred.exit_code == 0 and inferred.inference.generated == 2 and inferred.summary is None
    scored = score(run, ScoreSettings(workers=1))
    assert scored.scoring == {"ok": 2, "failed": 0, "missing": 0, "reused": 0}
    assert (scored.run_dir / "summary.csv").read_bytes() == (cli_run / "summary.csv").read_bytes()
    (scored.run_dir / "summary.csv").unlink()
    table = summarize(scored.run_dir)
    assert (table.run_dir / "summary.csv").read_bytes() == (cli_run / "summary.csv").read_bytes()
    assert lines(table.run_dir / "samples.jsonl", table.run_dir) == lines(cli_run / "samples.jsonl", cli_run)
    assert table.records == scored.records and table.exit_code == 0


def test_strict_and_a_failed_inference_give_the_cli_exit_codes(demo_root, tmp_path):
    """A sample without its edited video: 3 with strict (as `--strict`), 0 without."""
    run = RunSettings("identity", Selection("demo", limit=2), runs_dir=tmp_path)
    infer(run)
    next((tmp_path / "demo-identity/outputs").rglob("*.mp4")).unlink()
    lenient = score(
        RunSettings(
            "precomputed:" + str(tmp_path / "demo-identity/outputs"),
            Selection("demo", limit=2),
            runs_dir=tmp_path,
            run_name="pre",
        ),
        ScoreSettings(workers=1),
    )
    assert lenient.exit_code == 0 and lenient.scoring["missing"] == 1
    strict = summarize(lenient.run_dir, strict=True)
    assert strict.exit_code == 3


def test_the_judge_stage_takes_settings_and_never_writes_the_key(demo_root, tmp_path, capsys):
    run = RunSettings("identity", Selection("demo", limit=2), runs_dir=tmp_path)
    infer(run)
    secret = "sk-test-do-not-write-0123456789"
    result = judge(
        run,
        JudgeOptions(backend="openai", judge_model="m", base_url="http://127.0.0.1:9/v1", api_key=secret, dry_run=True),
    )
    assert result.exit_code == 0 and result.summary is None
    assert "2 requests to send" in capsys.readouterr().err
    written = (tmp_path / "demo-identity/provenance.json").read_text()
    assert secret not in written and json.loads(written)["arguments"]["judge_model"] == "m"
    assert all(
        secret not in p.read_text(errors="ignore") for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".mp4"
    )


def test_importing_the_package_imports_no_api_and_no_torch():
    code = (
        "import sys, sparkle_bench; assert 'sparkle_bench.api' not in sys.modules and 'torch' not in sys.modules; "
        "assert callable(sparkle_bench.evaluate) and 'sparkle_bench.api' in sys.modules and 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
