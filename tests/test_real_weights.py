"""Real checkpoints, where they are already in the local Hugging Face cache (never downloaded by
the tests). Each test skips with the reason when its weights (or a GPU) are not there."""

from __future__ import annotations

import pytest

from sparkle_bench.bench import open_bench
from sparkle_bench.masks import load_mask, resize_mask

pytestmark = pytest.mark.real_weights


def cached(repo: str) -> str:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(repo, local_files_only=True)
    except (LocalEntryNotFoundError, OSError, ValueError):
        pytest.skip(f"{repo} is not in the local Hugging Face cache (no downloads here)")


def needs_gpu():
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")


def test_kiwi_sparkle_generates_720p(demo_root, tmp_path):
    needs_gpu()
    from sparkle_bench.models import load_model

    adapter = load_model(f"kiwi-sparkle:{cached('stdKonjac/Kiwi-Sparkle-720P-81F')}")
    sample = open_bench("demo").samples[0]
    video = adapter.edit(sample)
    assert video.frames.shape[1:] == (720, 1280, 3) and video.fps == 15.0


def test_local_qwen_judge_reads_its_own_answer(demo_root, tmp_path):
    needs_gpu()
    from sparkle_bench.cli import main
    from sparkle_bench.tables import run_records

    model = cached("Qwen/Qwen2.5-VL-7B-Instruct")
    sample = open_bench("demo").samples[0]
    assert (
        main(
            [
                "judge",
                "--bench",
                "demo",
                "--model",
                "reference",
                "--ids",
                sample.id,
                "--runs-dir",
                str(tmp_path),
                "--judge",
                "local",
                "--judge-model",
                model,
                "--judge-cache",
                str(tmp_path / "cache"),
            ]
        )
        == 0
    )
    record = run_records(tmp_path / "demo-reference", "judge*.jsonl")[sample.id]
    assert record["status"] == "ok", record.get("reasons")


def test_owlv2_sam2_masks_match_the_shared_masks(real_dir, tmp_path):
    from sparkle_bench.maskgen.detector import GroundingDetector
    from sparkle_bench.maskgen.generate import video_mask
    from sparkle_bench.maskgen.propagate import Sam2Propagator, load_sam2_video_predictor

    detector = GroundingDetector(cached("google/owlv2-base-patch16-ensemble"))
    cached("facebook/sam2.1-hiera-large")
    propagator = Sam2Propagator(load_sam2_video_predictor("facebook/sam2.1-hiera-large"))
    source = real_dir / "pairs" / "Sparkle_location_000223_source.mp4"
    mask, _ = video_mask(source, detector, propagator)
    truth = load_mask(real_dir / "masks" / "Sparkle_location_000223_source.npz")
    mask = resize_mask(mask[: len(truth)], (truth.shape[2], truth.shape[1]))
    iou = (mask & truth).sum() / max(1, (mask | truth).sum())
    assert iou > 0.7, iou
