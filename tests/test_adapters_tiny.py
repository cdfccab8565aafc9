"""Diffusers adapters through their real loading and calling code, with tiny random pipelines saved
in diffusers format; the real checkpoints are only tried where they are already cached."""

from __future__ import annotations

import pytest

from sparkle_bench.bench import open_bench, select
from sparkle_bench.models import load_model
from sparkle_bench.records import read_jsonl
from sparkle_bench.runner import run_inference
from sparkle_bench.testing.tiny_models import tiny_lucy_edit, tiny_wan_vace
from sparkle_bench.video import probe


@pytest.mark.parametrize("name, build", [("vace", tiny_wan_vace), ("lucy-edit", tiny_lucy_edit)])
def test_tiny_pipeline_writes_canonical_outputs(demo_root, tmp_path, name, build):
    pytest.importorskip("diffusers")
    folder = build(tmp_path / name)
    options = {"pixel_budget": str(64 * 48), "max_frames": "7", "steps": "2"}  # CPU-sized
    adapter = load_model(f"{name}:{folder}", options)
    assert adapter.spec == f"{name}:{folder}"
    bench = select(open_bench("demo"), ids=[open_bench("demo").samples[0].id])
    adapter.setup(bench)
    assert adapter.pipe is None  # weights load on the first sample that needs generating
    report = run_inference(bench, adapter, tmp_path / "outputs", tmp_path / "inference.jsonl")
    assert (report.generated, report.failed) == (1, 0)
    info = probe(tmp_path / "outputs" / bench.samples[0].output_relpath)
    assert (info.width, info.height, info.num_frames) == (64, 32, 5)  # aspect kept in the budget, 4k+1 frames
    assert [r["status"] for r in read_jsonl(tmp_path / "inference.jsonl")] == ["ok"]
    again = run_inference(
        bench, load_model(f"{name}:{folder}", options), tmp_path / "outputs", tmp_path / "inference.jsonl"
    )
    assert (again.generated, again.cached) == (0, 1)  # an existing output is a cache hit, no weights loaded


def test_missing_weights_stop_inference_with_a_hint(demo_root, tmp_path, capsys):
    pytest.importorskip("diffusers")
    from sparkle_bench.cli import main

    code = main(
        ["infer", "--bench", "demo", "--model", f"vace:{tmp_path / 'not-there'}", "--runs-dir", str(tmp_path / "runs")]
    )
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "cannot load weights" in err and "no such folder" in err
