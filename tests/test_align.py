"""Geometry alignment: an edit that is a centre crop of its source (Kiwi's 1280x704 of a 1280x720
source) scores as a perfect copy with ``--align crop`` and as a misregistered subject with
``--align resize``; the record says which was done and a changed setting re-scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sparkle_bench.cli import main
from sparkle_bench.masks import save_mask
from sparkle_bench.metrics import load_metrics
from sparkle_bench.pair import load_pair, match_geometry
from sparkle_bench.video import VideoInfo, read_frames, write_video

from .conftest import make_sparkle_bench

FRAMES, FPS = 9, 16.0
SUBJECT = (slice(24, 184), slice(500, 780))  # near the top: where stretching 704 -> 720 rows moves pixels most


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """A 1280x720 source with a fine-textured subject at SUBJECT, its mask, and a 1280x704 edit
    that is exactly the source's centre crop (rows 8-712) re-encoded losslessly."""
    root = tmp_path_factory.mktemp("align")
    rng = np.random.default_rng(3)

    def grey(shape: tuple[int, int], block: int) -> np.ndarray:
        return np.repeat(np.repeat(rng.integers(40, 216, shape, dtype=np.uint8), block, 0), block, 1)[..., None]

    background = np.repeat(grey((90, 160), 8), 3, axis=2)  # grey: the RGB -> YUV 4:2:0 round trip is (nearly) exact
    texture = np.repeat(grey((40, 70), 4), 3, axis=2)
    frames = np.stack([np.roll(background, 4 * t, axis=1) for t in range(FRAMES)])
    frames[:, SUBJECT[0], SUBJECT[1]] = texture
    mask = np.zeros(frames.shape[:3], bool)
    mask[:, SUBJECT[0], SUBJECT[1]] = True
    write_video(root / "source.mp4", frames, FPS, crf=0)
    decoded = read_frames(root / "source.mp4")
    write_video(root / "edited.mp4", decoded[:, 8:712], FPS, crf=0)
    save_mask(root / "mask.npz", mask)
    return {"source": root / "source.mp4", "edited": root / "edited.mp4", "mask": root / "mask.npz"}


def scores(pair) -> dict[str, float]:
    return {m.name: m(pair) for m in load_metrics(["fg_psnr", "fg_ssim", "bg_change"])}


def test_a_centre_cropped_edit_scores_as_a_perfect_copy_only_when_cropped(clips):
    cropped = load_pair(clips["source"], clips["edited"], clips["mask"])
    assert cropped.source.shape == (FRAMES, 288, 524, 3)  # the edit's aspect (1280x704) at height 288
    # the mask was cropped with the source: the subject's top edge moved up 8 source rows
    rows = np.flatnonzero(cropped.mask[0].any(axis=1))
    assert rows[0] == pytest.approx((24 - 8) * 288 / 704, abs=1) and rows[-1] == pytest.approx(
        (184 - 8) * 288 / 704, abs=1
    )
    assert any("centre-cropped to 1280x704 (rows 8-712, columns 0-1280)" in n for n in cropped.notes)
    good = scores(cropped)
    assert good["fg_psnr"] > 45 and good["fg_ssim"] > 0.995 and good["bg_change"] < 0.005
    stretched = load_pair(clips["source"], clips["edited"], clips["mask"], align="resize")
    assert stretched.source.shape == (FRAMES, 288, 512, 3)
    assert any("--align resize" in n for n in stretched.notes)
    bad = scores(stretched)
    assert bad["fg_psnr"] < good["fg_psnr"] - 15 and bad["fg_ssim"] < 0.8 and bad["bg_change"] > 0.05


def test_geometry_decisions():
    src = VideoInfo(1280, 720, 81, 16.0)
    assert match_geometry(src, src) == (None, [])
    region, notes = match_geometry(src, VideoInfo(640, 360, 81, 16.0))  # same aspect: no crop
    assert region is None and "same aspect" in notes[0]
    region, _ = match_geometry(VideoInfo(720, 1280, 81, 16.0), VideoInfo(704, 1280, 81, 16.0))  # portrait: columns
    assert (region[0], region[1]) == (slice(0, 1280), slice(8, 712))
    with pytest.raises(ValueError, match="align must be one of crop, resize"):
        match_geometry(src, VideoInfo(1280, 704, 81, 16.0), "stretch")


def test_the_record_says_what_was_done_and_another_alignment_rescores(clips, tmp_path):
    bench = make_sparkle_bench(
        tmp_path / "bench", {"Align_time_000": clips["source"]}, {"Align_time_000": clips["mask"]}
    )
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    (outputs / "Align_time_000_edited.mp4").symlink_to(clips["edited"])
    args = [
        "score",
        "--bench",
        str(bench),
        "--model",
        f"precomputed:{outputs}",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--run-name",
        "r",
        "--metrics",
        "fg_psnr",
        "--workers",
        "1",
        "--format",
        "csv",
    ]
    assert main(args) == 0
    assert main(args + ["--align", "resize"]) == 0
    records = [json.loads(line) for line in (tmp_path / "runs/r/samples.jsonl").read_text().splitlines()]
    assert len(records) == 2  # the second setting did not reuse the first record
    assert "(--align crop)" in records[0]["alignment"][0] and "--align resize" in records[1]["alignment"][0]
    assert records[0]["metrics"]["fg_psnr"] > records[1]["metrics"]["fg_psnr"] + 15
