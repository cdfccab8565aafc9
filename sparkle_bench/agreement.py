"""How well the objective metrics track the judge: Spearman correlation per theme, per sample.

Each judge dimension is paired with the metrics meant to track it. Lower-is-better metrics are
negated first, so a positive rho always means the metric and the judge agree.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from .metrics import METRICS
from .tables import run_records

TRACKS: dict[str, tuple[str, ...]] = {
    "judge_instruction": ("clip_text", "bg_change"),
    "judge_visual_quality": ("bg_flicker", "clip_consistency"),
    "judge_fg_integrity": ("fg_psnr", "fg_ssim", "fg_lpips"),
    "judge_fg_motion": ("fg_motion",),
    "judge_bg_dynamics": ("bg_dynamics", "bg_static"),
    "judge_bg_quality": ("bg_flicker",),
    "judge_consistency": ("fg_psnr", "fg_ssim", "fg_motion"),
    "judge_overall": ("bg_dynamics",),
}


def _sign(metric: str) -> float:
    return 1.0 if METRICS.load(metric).higher_is_better else -1.0


def agreement_table(run_dir: Path, min_samples: int = 3) -> pd.DataFrame:
    """Rows: theme (and ALL), judge dimension, metric, n, rho, p. Empty without both record kinds."""
    metrics, judge = run_records(Path(run_dir)), run_records(Path(run_dir), "judge*.jsonl")
    rows = []
    for sample_id, j in judge.items():
        m = metrics.get(sample_id)
        if j.get("status") == "ok" and m and m.get("status") == "ok":
            rows.append({"theme": j["theme"], **j["judge"], **{k: v for k, v in m["metrics"].items() if v is not None}})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    out = []
    for theme, group in [*frame.groupby("theme"), ("ALL", frame)]:
        for dim, tracked in TRACKS.items():
            for metric in tracked:
                if dim not in group or metric not in group:
                    continue
                pair = group[[dim, metric]].dropna()
                rho, p = (math.nan, math.nan)
                if len(pair) >= min_samples and pair[dim].nunique() > 1 and pair[metric].nunique() > 1:
                    rho, p = spearmanr(pair[dim], _sign(metric) * pair[metric])
                out.append(
                    {
                        "theme": theme,
                        "judge": dim,
                        "metric": metric,
                        "n": len(pair),
                        "spearman_rho": round(float(rho), 4),
                        "p_value": round(float(p), 4),
                    }
                )
    return pd.DataFrame(out)
