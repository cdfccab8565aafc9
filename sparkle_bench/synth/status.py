"""The funnel: per stage and theme, how many samples came in, were accepted, rejected (by reason) or
failed, the yield, the seconds a sample took, samples per second and GPU-hours, from the latest
record of every sample under the current settings (records made under other settings are counted
as stale); and for the corpus, how many samples are finished, the rate they finish at and an ETA.

Rates are wall-clock: decisions of a stage over the span between its first and last one (all
workers together). GPU-hours are a stage's seconds times the GPUs its actors ask for.
"""

from __future__ import annotations

from collections import Counter

from .config import STAGES, SynthConfig
from .corpus import read_plan
from .layout import Layout
from .ledger import ACCEPTED, FAILED, REJECTED, latest_decisions
from .steps import stage_digests


def _rate(decisions: list[dict]) -> float | None:
    times = [d["time"] for d in decisions if "time" in d]
    span = (max(times) - min(times)) / 1e9 if len(times) > 1 else 0.0
    return len(times) / span if span > 0 else None


def stage_gpus(cfg: SynthConfig, number: int) -> float:
    table = cfg.stage(number)
    return float(
        table["check_num_gpus"] if number == 1 and table["vlm_check"] else 0 if number == 1 else table["num_gpus"]
    )


def funnel(cfg: SynthConfig) -> tuple[list[dict], dict]:
    """Rows ``{stage, theme, in, accepted, rejected, failed, reasons, yield, seconds_per_sample, samples_per_s,
    gpu_hours, stale}`` (theme ``all`` sums a stage) and the corpus ``{planned, untried, duplicates, finished,
    samples_per_s, eta_s}``."""
    layout, digests = Layout(cfg.out), stage_digests(cfg)
    plan = read_plan(layout)
    sources = {entry["id"]: entry["theme"] for entry in plan.values()}
    rows, tried, finished, ends = [], set(), set(), []
    for number in STAGES:
        groups: dict[str, list[dict]] = {}
        stale: Counter = Counter()
        for sample_id, decision in latest_decisions(layout, number).items():
            theme = sources.get(sample_id, decision.get("theme", "?"))
            if decision["settings"] != digests[number]:
                stale[theme] += 1
                continue
            groups.setdefault(theme, []).append(decision)
            if number == 1:
                tried.add(sample_id)
            if decision["status"] == REJECTED or (number == 5 and decision["status"] == ACCEPTED):
                finished.add(sample_id)
                ends.append(decision)
        for theme in sorted(set(groups) | set(stale)) + ["all"]:
            decided = [d for t, ds in groups.items() for d in ds] if theme == "all" else groups.get(theme, [])
            status = Counter(d["status"] for d in decided)
            reasons = Counter(f"{d['reason']}" for d in decided if d["status"] in (REJECTED, FAILED))
            seconds = sum(d["seconds"] for d in decided)
            rate = _rate(decided)
            rows.append(
                {
                    "stage": number,
                    "theme": theme,
                    "in": len(decided),
                    "accepted": status[ACCEPTED],
                    "rejected": status[REJECTED],
                    "failed": status[FAILED],
                    "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
                    "yield": round(status[ACCEPTED] / len(decided), 4) if decided else None,
                    "seconds_per_sample": round(seconds / len(decided), 3) if decided else None,
                    "samples_per_s": round(rate, 3) if rate else None,
                    "gpu_hours": round(seconds * stage_gpus(cfg, number) / 3600, 3),
                    "stale": sum(stale.values()) if theme == "all" else stale[theme],
                }
            )
    rate = _rate(ends)
    left = len(sources) - len(finished)
    corpus = {
        "planned": len(sources),
        "untried": len(set(sources) - tried),
        "duplicates": len(plan) - len(sources),
        "finished": len(finished),
        "samples_per_s": round(rate, 3) if rate else None,
        "eta_s": round(left / rate) if rate and left else (0 if not left else None),
    }
    return rows, corpus


def print_funnel(cfg: SynthConfig) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..log import console

    rows, sources = funnel(cfg)
    eta = (
        ""
        if not sources["eta_s"]
        else f", ETA {sources['eta_s'] / 3600:.1f} h at {sources['samples_per_s']:.2f} samples/s"
    )
    table = Table(
        title=f"{cfg.out}: {sources['planned']} source clips ({sources['duplicates']} duplicates skipped), "
        f"{sources['untried']} not tried yet, {sources['finished']} finished{eta}"
    )
    columns = (
        "stage",
        "theme",
        "in",
        "accepted",
        "rejected",
        "failed",
        "rejected / failed by reason",
        "yield",
        "s/sample",
        "samples/s",
        "GPU-h",
        "stale",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("theme", "rejected / failed by reason") else "right")
    for row in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in row["reasons"].items())
        number = {
            k: "" if row[k] is None else f"{row[k]:.2f}" for k in ("seconds_per_sample", "samples_per_s", "gpu_hours")
        }
        share = "" if row["yield"] is None else f"{row['yield']:.0%}"
        table.add_row(
            str(row["stage"]),
            row["theme"],
            str(row["in"]),
            str(row["accepted"]),
            str(row["rejected"]),
            str(row["failed"]),
            reasons,
            share,
            number["seconds_per_sample"],
            number["samples_per_s"],
            number["gpu_hours"],
            str(row["stale"] or ""),
            end_section=row["theme"] == "all",
        )
    Console(width=max(console.width, 160)).print(table)
