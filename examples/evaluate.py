"""Evaluate from Python: the same run folder, table and exit status as `sparkle-bench eval`.

    python examples/evaluate.py            # from any folder; writes ./runs/

Runs on the demo bench (built on first use, no download, no GPU): the frozen-background failure
(still-composite), then a model of your own passed as an adapter instance. Scoring uses one process
per core; their pool re-imports this script, hence the ``__main__`` guard (or pass ``workers=1``).
"""

from __future__ import annotations

import numpy as np

import sparkle_bench
from sparkle_bench.models import EditedVideo, ModelAdapter
from sparkle_bench.video import probe, read_frames


class HoldFirstFrame(ModelAdapter):
    """Your model, in memory: any ModelAdapter instance is accepted wherever a model name is.
    This one holds the first frame: the whole video frozen."""

    name = "hold-first-frame"

    def edit(self, sample) -> EditedVideo:
        frames = read_frames(sample.source)
        return EditedVideo(np.repeat(frames[:1], len(frames), axis=0), probe(sample.source).fps)


def main() -> None:
    # 1. A registered model by name, on 4 samples (stratified by theme).
    result = sparkle_bench.evaluate(bench="demo", model="still-composite", limit=4)
    print(result.run_dir, "exit status", result.exit_code)
    print(result.summary[["theme", "n_scored", "fg_psnr", "bg_dynamics", "bg_static"]])
    print("MACRO:", {k: result.macro[k] for k in ("fg_psnr", "bg_dynamics", "bg_static")})

    # 2. An adapter instance, with a few metrics.
    mine = sparkle_bench.evaluate(
        bench="demo", model=HoldFirstFrame(), limit=4, metrics=["fg_psnr", "fg_motion", "bg_static"]
    )
    for sample_id, record in sorted(mine.records.items()):
        print(sample_id, record["status"], record["metrics"])
    print("frozen backgrounds:", mine.macro["bg_static"])  # 1.0: every sample frozen


if __name__ == "__main__":
    main()
