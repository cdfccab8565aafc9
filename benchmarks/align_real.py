"""How much stretching a 1280x704 edit back to 1280x720 costs the foreground scores, on real clips.

Each real 1280x720 edited video is centre-cropped to 1280x704 (what Kiwi-style models write) and
scored against its 1280x720 source with ``--align resize`` (the old behaviour) and ``--align crop``.

    python benchmarks/align_real.py [--real ../shared/data/real] [--out /tmp/align-real]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sparkle_bench.metrics import load_metrics
from sparkle_bench.pair import load_pair
from sparkle_bench.video import probe, read_frames, write_video

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--out", type=Path, default=Path("/tmp/align-real"))
    parser.add_argument("--work-height", type=int, default=288)
    args = parser.parse_args()
    metrics = load_metrics(["fg_psnr", "fg_ssim"])
    rows = []
    for edited in sorted((args.real / "pairs").glob("*_edited.mp4")):
        stem = edited.name.removesuffix("_edited.mp4")
        source, mask = args.real / "pairs" / f"{stem}_source.mp4", args.real / "masks" / f"{stem}_source.npz"
        cropped = args.out / f"{stem}_edited_1280x704.mp4"
        if not cropped.is_file():
            info = probe(edited)
            write_video(cropped, read_frames(edited)[:, 8:712], info.fps)
        values = {
            align: [m(load_pair(source, cropped, mask, args.work_height, align=align)) for m in metrics]
            for align in ("resize", "crop")
        }
        rows.append(values["resize"] + values["crop"])
        print(
            f"{stem:28s} fg_psnr resize {values['resize'][0]:6.2f}  crop {values['crop'][0]:6.2f}   "
            f"fg_ssim resize {values['resize'][1]:.3f}  crop {values['crop'][1]:.3f}",
            flush=True,
        )
    mean = np.mean(rows, axis=0)
    gain = np.array(rows)[:, 2] - np.array(rows)[:, 0]
    print(
        f"{'mean':28s} fg_psnr resize {mean[0]:6.2f}  crop {mean[2]:6.2f}   "
        f"fg_ssim resize {mean[1]:.3f}  crop {mean[3]:.3f}"
    )
    print(
        f"fg_psnr gain from cropping: mean {gain.mean():+.2f} dB, largest {gain.max():+.2f} dB over {len(rows)} pairs"
    )


if __name__ == "__main__":
    main()
