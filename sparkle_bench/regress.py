"""A CI gate: a run against a baseline (a run folder or a committed baseline file).

Every score column is compared over all samples and per theme, on the samples both sides scored,
in the column's direction. A comparison fails when the mean got worse by more than the column's
tolerance *and* a one-sided paired t-test rejects "worse by at most the tolerance" at ``alpha``.
Each metric's class declares its tolerance (:attr:`sparkle_bench.metrics.Metric.tolerance`): for
the built-ins, several times what re-encoding and +/-1 grey level of noise move it on real clips
(``benchmarks/gate_noise.py``); a metric that declares none is reported as untested. Since noise
leaves a candidate far inside that null, the test needs no correction over comparisons, which on
5-8 samples would make every change untestable (a paired rank test on 5 samples cannot go below
p = 1/32). Groups of fewer than ``MIN_SAMPLES`` are not tested, only reported. A stochastic model
brings a second run of its baseline (another seed): tolerances widen to the spread between the two
(:func:`seed_tolerances`).
Samples scored in the baseline that failed or went missing in the run fail the gate too, and so do
samples complete in the baseline that the run scored but flagged (short, other orientation).
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
from .display import column_order, higher_is_better
from .metrics import declared, remember
from .runs import harness_git_hash, read_provenance, run_label
from .tables import latest_judge, run_records

BASELINE_FORMAT = "sparkle-bench-baseline/1"
# Judge dimensions (1-5 scale); a metric's tolerance and noise spread are declared on its class.
JUDGE_TOLERANCE, JUDGE_NOISE_SD = 0.1, 0.1
MIN_SAMPLES = 5  # smaller groups are not tested: a t-test on 2-4 samples rests on nothing but its assumptions
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
    # id -> {"theme", "status", "judge_status", "flags": [protocol flags], "values": {column: value}}
    samples: dict[str, dict]


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
        samples[sample_id] = {
            "theme": m.get("theme") or j.get("theme") or "?",
            "status": m.get("status", "not scored"),
            "judge_status": j.get("status") if j else None,
            "flags": sorted(m.get("flags") or {}),
            "values": values,
        }
    return Scores(provenance["bench"], provenance["bench_checksum"], run_label(provenance), judge, samples)


def write_baseline(run_dir: Path, path: Path) -> Scores:
    """The file a repository commits: per-sample values, one sample a line, so diffs stay readable."""
    scores = run_scores(run_dir)
    provenance = read_provenance(run_dir)
    header = {
        "format": BASELINE_FORMAT,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "harness_version": __version__,
        "git_hash": harness_git_hash(),
        "bench": scores.bench,
        "bench_checksum": scores.checksum,
        "selection": provenance.get("selection", {}),
        "model": provenance["model"],
        "label": scores.label,
        "judge": scores.judge,
        "metrics": provenance.get("metrics", {}),
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
    remember(data.get("metrics") or {})  # custom metrics' classes, so their declarations are found
    samples = {s.pop("id"): s for s in data["samples"]}
    return Scores(data["bench"], data["bench_checksum"], data["label"], data["judge"], samples)


def check_comparable(run: Scores, baseline: Scores) -> list[str]:
    """Refuse other benches and other sample sets; return warnings for lesser differences."""
    if run.bench != baseline.bench:
        raise RegressError(f"the run is on bench {run.bench!r}, the baseline on {baseline.bench!r}")
    only_run, only_base = (
        sorted(set(run.samples) - set(baseline.samples)),
        sorted(set(baseline.samples) - set(run.samples)),
    )
    if only_run or only_base:
        parts = [
            f"{len(ids)} only in the {side} (e.g. {', '.join(ids[:3])})"
            for side, ids in (("run", only_run), ("baseline", only_base))
            if ids
        ]
        raise RegressError(
            f"the run and the baseline cover other samples: {'; '.join(parts)}; "
            f"run the baseline's selection (same --subset/--themes/--ids/--limit)"
        )
    warnings = []
    if run.checksum != baseline.checksum:
        warnings.append(
            f"bench checksum {run.checksum} differs from the baseline's {baseline.checksum} "
            "(another copy or version of the bench?)"
        )
    if run.judge != baseline.judge:
        warnings.append(
            f"judge columns not compared: the run was judged by {run.judge or 'no judge'}, "
            f"the baseline by {baseline.judge or 'no judge'}"
        )
    return warnings


def worsening(column: str, baseline: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Per-sample change in the column's bad direction (positive = worse)."""
    return (1.0 if higher_is_better(column) else -1.0) * (np.asarray(baseline, float) - np.asarray(run, float))


def margin_p(worse: np.ndarray, tolerance: float) -> float:
    """One-sided p-value of "the mean worsening is at most ``tolerance``" (paired t-test on the
    per-sample worsening minus the tolerance); no spread at all decides by the mean alone."""
    from scipy.stats import t

    n, excess = len(worse), float(np.mean(worse)) - tolerance
    spread = float(np.std(worse, ddof=1)) if n > 1 else 0.0
    if spread <= 1e-12 * max(1.0, abs(excess)):
        return 0.0 if excess > 0 else 1.0
    return float(t.sf(excess / (spread / math.sqrt(n)), n - 1))


def detectable(tolerance: float, spread: float, n: int, alpha: float) -> float:
    """The smallest mean worsening that fails the test with ``n`` samples of this spread."""
    from scipy.stats import t

    return tolerance + float(t.isf(alpha, n - 1)) * spread / math.sqrt(n) if n > 1 else math.inf


def tolerance_of(column: str, tolerances: dict[str, float]) -> float | None:
    """As given (``--tolerance``), else the judge's, else the metric class's; None when none is declared."""
    if column in tolerances:
        return tolerances[column]
    if column.startswith("judge_"):
        return JUDGE_TOLERANCE
    metric = declared(column)
    return metric.tolerance if metric is not None else None


def noise_sd_of(column: str) -> float:
    metric = declared(column)
    return JUDGE_NOISE_SD if column.startswith("judge_") else metric.noise_sd if metric is not None else 0.0


def untested_columns(baseline: Scores, tolerances: dict[str, float]) -> list[str]:
    """One line per score column the gate cannot test: no direction known (no metric class found for
    it) or no tolerance declared or given; informational metrics (direction None on purpose) are skipped."""
    lines = []
    for column in dict.fromkeys(c for s in baseline.samples.values() for c in s["values"]):
        metric = declared(column)
        if metric is None and not column.startswith("judge_"):
            lines.append(
                f"{column}: not compared: no metric class declares it (score with --metrics "
                f"package.module:Class so the run records where the class is, and make that module importable)"
            )
        elif higher_is_better(column) is not None and tolerance_of(column, tolerances) is None:
            lines.append(
                f"{column}: not tested: {metric.__name__} declares no tolerance "
                f"(declare one on the class, or give --tolerance {column}=VALUE)"
            )
    return lines


def seed_tolerances(baseline: Scores, other: Scores, tolerances: dict[str, float]) -> dict[str, float]:
    """Tolerances for a stochastic model: each widened to the spread (sd) of the per-sample changes
    between the baseline and another run of the same model (another seed), the spread a candidate
    that differs only by chance will show; ``tolerances`` given explicitly are kept as they are."""
    widened = {}
    for column in dict.fromkeys(c for s in baseline.samples.values() for c in s["values"]):
        ids = [
            i
            for i, s in baseline.samples.items()
            if column in s["values"] and column in other.samples.get(i, {}).get("values", {})
        ]
        declared_tolerance = tolerance_of(column, {})
        if len(ids) > 1 and higher_is_better(column) is not None and declared_tolerance is not None:
            change = worsening(
                column,
                [baseline.samples[i]["values"][column] for i in ids],
                [other.samples[i]["values"][column] for i in ids],
            )
            widened[column] = max(declared_tolerance, round(float(np.std(change, ddof=1)), 6))
    return {**widened, **tolerances}


def compare(run: Scores, baseline: Scores, tolerances: dict[str, float], alpha: float = 0.05) -> pd.DataFrame:
    """One row per (column, group) compared, and one per lost-sample check, with ``regressed``.

    ``detectable``: the smallest mean worsening that would fail with this many samples and the
    observed spread of the per-sample changes (at least the noise's); ``p``: of "worse by at most
    the tolerance", empty for groups of fewer than ``MIN_SAMPLES``, which are never tested, and for
    metrics with no tolerance (:func:`untested_columns` says why).
    """
    same_judge = run.judge == baseline.judge
    columns = sorted(
        (
            c
            for c in dict.fromkeys(c for s in baseline.samples.values() for c in s["values"])
            if (same_judge or not c.startswith("judge_")) and higher_is_better(c) is not None
        ),
        key=column_order,
    )
    themes = sorted({s["theme"] for s in baseline.samples.values()})
    groups = [ALL] + (themes if len(themes) > 1 else [])  # one theme is "all" again: never test twice
    rows = []
    for column in columns:
        tolerance = tolerance_of(column, tolerances)
        floor = noise_sd_of(column)
        for theme in groups:
            ids = [
                i
                for i, s in baseline.samples.items()
                if (theme == ALL or s["theme"] == theme)
                and column in s["values"]
                and column in run.samples[i]["values"]
            ]
            if not ids:
                continue
            base = np.array([baseline.samples[i]["values"][column] for i in ids], dtype=float)
            new = np.array([run.samples[i]["values"][column] for i in ids], dtype=float)
            worse = worsening(column, base, new)
            tested = len(ids) >= MIN_SAMPLES and tolerance is not None
            tolerance = math.nan if tolerance is None else tolerance
            spread = max(float(np.std(worse, ddof=1)) if len(ids) > 1 else 0.0, floor)
            rows.append(
                {
                    "metric": column,
                    "theme": theme,
                    "n": len(ids),
                    "baseline": base.mean(),
                    "run": new.mean(),
                    "change": new.mean() - base.mean(),
                    "tolerance": tolerance,
                    "worse_by": worse.mean(),
                    "detectable": detectable(tolerance, spread, len(ids), alpha),
                    "p": margin_p(worse, tolerance) if tested else math.nan,
                    "tested": tested,
                }
            )
    table = pd.DataFrame(
        rows,
        columns=[
            "metric",
            "theme",
            "n",
            "baseline",
            "run",
            "change",
            "tolerance",
            "worse_by",
            "detectable",
            "p",
            "tested",
        ],
    )
    table["regressed"] = table["tested"].astype(bool) & (table["worse_by"] > table["tolerance"]) & (table["p"] < alpha)
    lost = _lost_samples(run, baseline)
    return pd.concat([table, lost], ignore_index=True) if len(lost) else table


def untested_worse(table: pd.DataFrame) -> str | None:
    """A warning when comparisons got worse beyond tolerance in groups too small to be tested."""
    rows = table[table["tested"].eq(False) & (table["worse_by"] > table["tolerance"])]
    if rows.empty:
        return None
    which = [f"{m} ({t}, n={n})" for m, t, n in zip(rows["metric"], rows["theme"], rows["n"])]
    more = f" and {len(which) - 4} more" if len(which) > 4 else ""
    return (
        f"{len(which)} comparison(s) worse beyond tolerance in groups of fewer than {MIN_SAMPLES} samples, "
        f"which are not tested: {', '.join(which[:4])}{more}; gate on more samples"
    )


def _state(sample: dict, key: str) -> str | None:
    """A sample's ``status``, ``judge_status`` or ``complete`` (``"ok"`` when scored without protocol
    flags; baseline files from before flags have none)."""
    if key == "complete":
        return "ok" if sample.get("status") == "ok" and not sample.get("flags") else None
    return sample.get(key)


def _lost_samples(run: Scores, baseline: Scores) -> pd.DataFrame:
    """Samples scored (judged) in the baseline that failed or are missing in the run; ``samples
    complete``: those scored without protocol flags in the baseline that the run did not score so
    (flagged short or of another orientation, failed or missing)."""
    rows = []
    checks = (("status", "samples scored"), ("judge_status", "samples judged"), ("complete", "samples complete"))
    for key, what in checks:
        if key == "judge_status" and run.judge != baseline.judge:
            continue
        was = [i for i, s in baseline.samples.items() if _state(s, key) == "ok"]
        lost = [i for i in was if _state(run.samples[i], key) != "ok"]
        if was:
            rows.append(
                {
                    "metric": what,
                    "theme": ALL,
                    "n": len(was),
                    "baseline": float(len(was)),
                    "run": float(len(was) - len(lost)),
                    "change": -float(len(lost)),
                    "tolerance": 0.0,
                    "worse_by": float(len(lost)),
                    "detectable": 1.0,
                    "p": math.nan,
                    "tested": True,
                    "regressed": bool(lost),
                    "lost": ", ".join(lost[:5]) + (" ..." if len(lost) > 5 else ""),
                }
            )
    return pd.DataFrame(rows)
