"""A CI gate: a run against a baseline (a run folder or a committed baseline file).

Every score column is compared per theme and over all samples, on the samples both sides
scored, in the column's direction. A comparison fails when the mean got worse by more than
the column's tolerance *and* a one-sided paired Wilcoxon signed-rank test says the change is
not noise, Holm-adjusted over the comparisons that could reach the level on their own (a theme
with 2 samples never can, so it does not dilute the others). Samples that were scored in the
baseline but failed or went missing in the run fail the gate too.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .display import higher_is_better
from .runs import harness_git_hash, read_provenance, run_label
from .tables import latest_judge, run_records

BASELINE_FORMAT = "sparkle-bench-baseline/1"
# Smallest change worth failing a build for, in each metric's unit (judge: 1-5 scale).
DEFAULT_TOLERANCE = {
    "fg_psnr": 0.5, "fg_ssim": 0.01, "fg_motion": 0.05, "fg_lpips": 0.01, "bg_change": 0.02,
    "bg_dynamics": 0.05, "bg_static": 0.05, "bg_flicker": 0.002, "clip_text": 0.01, "clip_consistency": 0.01,
}
JUDGE_TOLERANCE = 0.1
ALL = "all"


class RegressError(ValueError):
    """The run and the baseline cannot be compared (other bench, other samples)."""


@dataclass
class Scores:
    """Per-sample values of one run (or of a baseline file), keyed by sample id."""

    bench: str
    checksum: str
    label: str
    judge: str | None  # "judge model | rubric version" of the judge columns
    samples: dict[str, dict]  # id -> {"theme", "status", "judge_status", "values": {column: value}}


def run_scores(run_dir: Path) -> Scores:
    """The latest record of every selected sample: objective metrics and the last judge's scores."""
    provenance = read_provenance(run_dir)
    metric_records, judge_records = run_records(run_dir), run_records(run_dir, "judge*.jsonl")
    judge = None
    if judge_records:
        judge_records, _ = latest_judge(judge_records)
        first = next(iter(judge_records.values()))
        judge = f"{first.get('judge_model')} | {first.get('rubric_version')}"
    samples = {}
    for sample_id in provenance["sample_ids"]:
        m, j = metric_records.get(sample_id, {}), judge_records.get(sample_id, {})
        values = {k: v for k, v in m.get("metrics", {}).items() if v is not None and m.get("status") == "ok"}
        values.update({k: v for k, v in j.get("judge", {}).items() if j.get("status") == "ok"})
        samples[sample_id] = {"theme": m.get("theme") or j.get("theme") or "?", "status": m.get("status", "not scored"),
                              "judge_status": j.get("status") if j else None, "values": values}
    return Scores(provenance["bench"], provenance["bench_checksum"], run_label(provenance), judge, samples)


def write_baseline(run_dir: Path, path: Path) -> Scores:
    """The file a repository commits: per-sample values, one sample a line, so diffs stay readable."""
    scores = run_scores(run_dir)
    provenance = read_provenance(run_dir)
    header = {
        "format": BASELINE_FORMAT, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "harness_version": __version__, "git_hash": harness_git_hash(), "bench": scores.bench,
        "bench_checksum": scores.checksum, "selection": provenance.get("selection", {}), "model": provenance["model"],
        "label": scores.label, "judge": scores.judge,
    }
    lines = [f"  {json.dumps(k)}: {json.dumps(v, sort_keys=True)}," for k, v in header.items()]
    rows = [json.dumps({"id": k, **v}, sort_keys=True, allow_nan=False) for k, v in scores.samples.items()]
    text = "{\n" + "\n".join(lines) + '\n  "samples": [\n    ' + ",\n    ".join(rows) + "\n  ]\n}\n"
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return scores


def load_scores(path: Path) -> Scores:
    """A run folder or a baseline file written by :func:`write_baseline`."""
    path = Path(path)
    if path.is_dir():
        return run_scores(path)
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RegressError(f"{path} is not a baseline file (not JSON: {exc})") from exc
    if not isinstance(data, dict) or data.get("format") != BASELINE_FORMAT:
        raise RegressError(f"{path} is not a baseline file (write one with `sparkle-bench baseline RUN --out FILE`)")
    samples = {s.pop("id"): s for s in data["samples"]}
    return Scores(data["bench"], data["bench_checksum"], data["label"], data["judge"], samples)


def check_comparable(run: Scores, baseline: Scores) -> list[str]:
    """Refuse other benches and other sample sets; return warnings for lesser differences."""
    if run.bench != baseline.bench:
        raise RegressError(f"the run is on bench {run.bench!r}, the baseline on {baseline.bench!r}")
    only_run, only_base = sorted(set(run.samples) - set(baseline.samples)), sorted(set(baseline.samples) - set(run.samples))
    if only_run or only_base:
        parts = [f"{len(ids)} only in the {side} (e.g. {', '.join(ids[:3])})" for side, ids in (("run", only_run), ("baseline", only_base)) if ids]
        raise RegressError(f"the run and the baseline cover other samples: {'; '.join(parts)}; "
                           f"run the baseline's selection (same --subset/--themes/--ids/--limit)")
    warnings = []
    if run.checksum != baseline.checksum:
        warnings.append(f"bench checksum {run.checksum} differs from the baseline's {baseline.checksum} (another copy or version of the bench?)")
    if run.judge != baseline.judge:
        warnings.append(f"judge columns not compared: the run was judged by {run.judge or 'no judge'}, the baseline by {baseline.judge or 'no judge'}")
    return warnings


def _one_sided_p(worse: np.ndarray) -> float:
    """P-value that the paired differences lean towards worse (positive), Wilcoxon signed-rank."""
    from scipy.stats import wilcoxon

    if not np.any(worse != 0):
        return 1.0
    return float(wilcoxon(worse, alternative="greater").pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error at most the level)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [1.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def compare(run: Scores, baseline: Scores, tolerances: dict[str, float], alpha: float = 0.05) -> pd.DataFrame:
    """One row per (column, theme) compared, and one per lost-sample check, with ``regressed``;
    ``p`` is Holm-adjusted (empty where the samples are too few to ever reach ``alpha``)."""
    same_judge = run.judge == baseline.judge
    columns = [c for c in dict.fromkeys(c for s in baseline.samples.values() for c in s["values"])
               if (same_judge or not c.startswith("judge_")) and higher_is_better(c) is not None]
    themes = sorted({s["theme"] for s in baseline.samples.values()})
    groups = [ALL] + (themes if len(themes) > 1 else [])  # one theme is "all" again: never test twice
    rows = []
    for column in columns:
        sign = 1.0 if higher_is_better(column) else -1.0
        tolerance = tolerances.get(column, JUDGE_TOLERANCE if column.startswith("judge_") else DEFAULT_TOLERANCE.get(column, 0.0))
        for theme in groups:
            ids = [i for i, s in baseline.samples.items() if (theme == ALL or s["theme"] == theme)
                   and column in s["values"] and column in run.samples[i]["values"]]
            if not ids:
                continue
            base = np.array([baseline.samples[i]["values"][column] for i in ids], dtype=float)
            new = np.array([run.samples[i]["values"][column] for i in ids], dtype=float)
            rows.append({"metric": column, "theme": theme, "n": len(ids), "baseline": base.mean(), "run": new.mean(),
                         "change": new.mean() - base.mean(), "tolerance": tolerance, "worse_by": sign * (base - new).mean(),
                         "p_raw": _one_sided_p(sign * (base - new)), "testable": 0.5 ** len(ids) < alpha})
    table = pd.DataFrame(rows, columns=["metric", "theme", "n", "baseline", "run", "change", "tolerance", "worse_by", "p_raw", "testable"])
    testable = table["testable"].astype(bool)
    table["p"] = math.nan  # Holm-adjusted
    table.loc[testable, "p"] = holm(table.loc[testable, "p_raw"].tolist())
    table["regressed"] = testable & (table["worse_by"] > table["tolerance"]) & (table["p"] < alpha)
    lost = _lost_samples(run, baseline)
    return pd.concat([table, lost], ignore_index=True) if len(lost) else table


def untested_worse(table: pd.DataFrame, alpha: float) -> str | None:
    """A warning when comparisons got worse beyond tolerance on too few samples to be tested."""
    rows = table[table["testable"].eq(False) & (table["worse_by"] > table["tolerance"])]
    if rows.empty:
        return None
    needed = math.floor(math.log2(1 / alpha)) + 1
    which = [f"{m} ({t}, n={n})" for m, t, n in zip(rows["metric"], rows["theme"], rows["n"])]
    more = f" and {len(which) - 4} more" if len(which) > 4 else ""
    return (f"{len(which)} comparison(s) worse beyond tolerance on too few samples to tell from noise (a paired test needs "
            f"{needed} for p < {alpha:g}): {', '.join(which[:4])}{more}; gate on more samples or raise --alpha")


def _lost_samples(run: Scores, baseline: Scores) -> pd.DataFrame:
    """Samples scored (judged) in the baseline that failed or are missing in the run."""
    rows = []
    for key, what in (("status", "samples scored"), ("judge_status", "samples judged")):
        if key == "judge_status" and run.judge != baseline.judge:
            continue
        was = [i for i, s in baseline.samples.items() if s.get(key) == "ok"]
        lost = [i for i in was if run.samples[i].get(key) != "ok"]
        if was:
            rows.append({"metric": what, "theme": ALL, "n": len(was), "baseline": float(len(was)), "run": float(len(was) - len(lost)),
                         "change": -float(len(lost)), "tolerance": 0.0, "worse_by": float(len(lost)), "regressed": bool(lost),
                         "lost": ", ".join(lost[:5]) + (" ..." if len(lost) > 5 else "")})
    return pd.DataFrame(rows)
