"""Real Sparkle clips (1280x720, 81 frames) from ../shared/data/real; skipped when absent."""

import numpy as np
import pandas as pd
import pytest

from sparkle_bench.cli import main
from sparkle_bench.metrics import load_metrics
from sparkle_bench.pair import load_pair
from sparkle_bench.video import probe

from .conftest import make_sparkle_bench

pytestmark = pytest.mark.real_clips


def test_decode_and_masked_psnr_on_720p(real_dir):
    source = real_dir / "pairs/Sparkle_time_000028_source.mp4"
    info = probe(source)
    assert (info.width, info.height, info.num_frames, info.fps) == (1280, 720, 81, 16.0)
    pair = load_pair(source, source, real_dir / "masks/Sparkle_time_000028_source.npz")
    assert pair.source.shape == (81, 288, 512, 3) and pair.mask.shape == (81, 288, 512)
    psnr = load_metrics(["fg_psnr"])[0]
    assert psnr(pair) == 100.0
    pair.edited = np.roll(pair.source, 25, axis=2)
    assert psnr(pair) < 25


def test_precomputed_eval_on_a_bench_of_real_clips(real_dir, tmp_path):
    ids = ["Sparkle_location_000598", "Sparkle_season_000029", "Sparkle_style_000298", "Sparkle_time_000367"]
    bench = make_sparkle_bench(
        tmp_path / "bench",
        {i: real_dir / f"pairs/{i}_source.mp4" for i in ids},
        {i: real_dir / f"masks/{i}_source.npz" for i in ids},
    )
    # the shared folder holds *_source.mp4 beside the edits: stray files for `precomputed`
    code = main(
        [
            "eval",
            "--bench",
            str(bench),
            "--model",
            f"precomputed:{real_dir / 'pairs'}",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--run-name",
            "real",
        ]
    )
    assert code == 0
    table = pd.read_csv(tmp_path / "runs/real/summary.csv").set_index("theme")
    assert table.loc["MACRO", "n_scored"] == 4
    assert table.loc["MACRO", "bg_change"] > 0.2
    assert table.loc["MACRO", "fg_psnr"] > 15


@pytest.mark.parametrize("clip", ["000006", "000030", "000152", "000185"])
def test_sparkle_backgrounds_move_more_than_openve3m(real_dir, clip):
    folder, mask = real_dir / "openve3m_compare", real_dir / f"masks/Sparkle_openve3m_{clip}_source.npz"
    dynamics = load_metrics(["bg_dynamics"])[0]
    source = folder / f"Sparkle_openve3m_{clip}_source.mp4"
    sparkle = dynamics(load_pair(source, folder / f"Sparkle_openve3m_{clip}_edited.mp4", mask))
    openve = dynamics(load_pair(source, folder / f"Sparkle_openve3m_{clip}_edited_openve3m.mp4", mask))
    assert sparkle > 1.5 * openve


def test_a_kiwi_sized_edit_is_registered_by_cropping(real_dir, tmp_path):
    """A real edit cut to 1280x704 as Kiwi writes it: cropping the source to it keeps the subject in
    place, stretching the edit back to 720 rows misplaces it (benchmarks/align_real.py: +2.2 dB here)."""
    from sparkle_bench.video import read_frames, write_video

    stem = "Sparkle_time_000028"
    kiwi = tmp_path / "kiwi_1280x704.mp4"
    write_video(kiwi, read_frames(real_dir / f"pairs/{stem}_edited.mp4", None, range(17))[:, 8:712], 16.0)
    psnr, ssim = load_metrics(["fg_psnr", "fg_ssim"])
    source, mask = real_dir / f"pairs/{stem}_source.mp4", real_dir / f"masks/{stem}_source.npz"
    crop, resize = (load_pair(source, kiwi, mask, align=align) for align in ("crop", "resize"))
    assert crop.source.shape[1:3] == (288, 524) and resize.source.shape[1:3] == (288, 512)
    assert psnr(crop) > psnr(resize) + 1.5 and ssim(crop) > ssim(resize) + 0.1
