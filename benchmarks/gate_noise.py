"""Measure how much noise moves each metric, and how much a frozen background does, on real clips:
the numbers behind the gate's tolerances (each metric class's ``tolerance`` and ``noise_sd``).

The first ``--frames`` frames of every real edited video (the 8 pairs; with ``--openve`` also the
4 Sparkle edits of ``openve3m_compare``) are scored as they are (re-encoded at crf 17: the
baseline) and as candidates that should pass the gate (re-encoded at crf 18, 23 and 28; +/-1 grey
level of uniform noise, re-encoded at crf 17) and two that must fail: every frame's background
replaced by frame 0's, using the source mask (frozen), and by frame 0's panned sideways 3 px per
frame at 1280 wide (panned: camera motion over a frozen scene). Prints, per metric and candidate, the mean and
spread of the per-sample worsening, and the tolerance rule's result; writes every value as JSON.

    python benchmarks/gate_noise.py [--real ../shared/data/real] [--out /tmp/gate-noise] [--frames 41] [--openve]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from sparkle_bench.display import higher_is_better
from sparkle_bench.masks import load_mask, resize_mask
from sparkle_bench.metrics import DEFAULT_METRICS, load_metrics
from sparkle_bench.models.shortcuts import composite, shortcut_background
from sparkle_bench.pair import load_pair
from sparkle_bench.regress import worsening
from sparkle_bench.video import probe, read_frames, write_video

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
NOISE = ("crf18", "crf23", "crf28", "grey1")
FAIL = ("frozen", "panned")
PAN = 3.0  # px per frame at 1280 wide


def stimuli(real: Path, openve: bool) -> list[tuple[str, Path, Path, Path]]:
    """(name, source, edited, mask) of every real edit with a mask."""
    out = []
    for folder in ("pairs", "openve3m_compare") if openve else ("pairs",):
        for edited in sorted((real / folder).glob("*_edited.mp4")):
            stem = edited.name.removesuffix("_edited.mp4")
            out.append((stem, real / folder / f"{stem}_source.mp4", edited, real / "masks" / f"{stem}_source.npz"))
    return out


def variants(edited: Path, mask: Path, out: Path, count: int) -> dict[str, Path]:
    """The baseline and the candidates made from one edited video (written once, reused on a re-run)."""
    paths = {v: out / f"{edited.stem}_{v}.mp4" for v in ("orig",) + NOISE + FAIL}
    if all(p.is_file() for p in paths.values()):
        return paths
    frames, fps = read_frames(edited, None, range(min(count, probe(edited).num_frames))), probe(edited).fps
    write_video(paths["orig"], frames, fps)
    for crf in (18, 23, 28):
        write_video(paths[f"crf{crf}"], frames, fps, crf=crf)
    rng = np.random.default_rng(0)
    write_video(
        paths["grey1"],
        np.clip(frames.astype(np.int16) + rng.integers(-1, 2, frames.shape), 0, 255).astype(np.uint8),
        fps,
    )
    subject = resize_mask(load_mask(mask)[: len(frames)], (frames.shape[2], frames.shape[1]))
    write_video(paths["frozen"], composite(frames, subject, frames[:1]), fps)
    panned = shortcut_background(frames[0], "pan", PAN, len(frames))
    write_video(paths["panned"], composite(frames, subject, panned), fps)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=REAL)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gate-noise"))
    parser.add_argument("--work-height", type=int, default=288)
    parser.add_argument("--frames", type=int, default=41, help="first N frames of each edit (default 41)")
    parser.add_argument("--openve", action="store_true", help="also the 4 Sparkle edits of openve3m_compare")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    metrics = load_metrics(list(DEFAULT_METRICS))
    values: dict[str, dict[str, dict[str, float]]] = {}
    cache = args.out / "values.json"
    if cache.is_file():
        values = json.loads(cache.read_text())
    for name, source, edited, mask in stimuli(args.real, args.openve):
        if name in values:
            continue
        values[name] = {}
        for variant, path in variants(edited, mask, args.out, args.frames).items():
            pair = load_pair(source, path, mask, args.work_height)
            values[name][variant] = {m.name: float(m(pair)) for m in metrics}
        print(name, {v: round(s["bg_dynamics"], 4) for v, s in values[name].items()}, flush=True)
        cache.write_text(json.dumps(values, indent=1))
    names = sorted(values)
    print(f"\nper-sample worsening (positive = worse) over {len(names)} real edits: mean / sd / max")
    suggested = {}
    for metric in (m.name for m in metrics):
        base = np.array([values[n]["orig"][metric] for n in names])
        parts, largest, spread = [], 0.0, 0.0
        for variant in NOISE + FAIL:
            worse = moved(metric, base, np.array([values[n][variant][metric] for n in names]))
            parts.append(f"{variant} {worse.mean():+.4f}/{worse.std(ddof=1):.4f}/{worse.max():+.4f}")
            if variant in NOISE:
                largest, spread = max(largest, float(worse.max())), max(spread, float(worse.std(ddof=1)))
        suggested[metric] = (round_up(3 * largest), round_up(spread))
        print(f"{metric:12s} " + "  ".join(parts))
    print(
        "\ntolerance = 3 x the largest per-sample worsening any noise caused, noise sd = largest spread "
        "(each rounded up to one significant digit; a metric noise never moved keeps its tolerance):"
    )
    for metric, (tolerance, spread) in suggested.items():
        print(f"  {metric:12s} tolerance {tolerance:g}  noise sd {spread:g}")
    print(f"values: {cache}")


def moved(metric: str, base: np.ndarray, candidate: np.ndarray) -> np.ndarray:
    """Per-sample worsening; for a metric with no better direction (bg_camera), the size of the change."""
    return worsening(metric, base, candidate) if higher_is_better(metric) is not None else np.abs(candidate - base)


def round_up(value: float) -> float:
    """Up to one significant digit (0.0123 -> 0.02); 0 stays 0."""
    if value <= 0:
        return 0.0
    scale = 10 ** np.floor(np.log10(value))
    return float(np.ceil(value / scale) * scale)


if __name__ == "__main__":
    main()
