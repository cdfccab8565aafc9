"""The funnel: per stage and theme, how many samples came in, were accepted, rejected (by reason) or
failed, and the seconds a sample took, from the latest record of every sample under the current
settings (records made under other settings are counted as stale)."""

from __future__ import annotations

from collections import Counter

from ..records import read_jsonl
from .config import STAGES, SynthConfig
from .layout import Layout
from .ledger import ACCEPTED, FAILED, REJECTED, latest_decisions


def funnel(cfg: SynthConfig) -> tuple[list[dict], dict]:
    """Rows ``{stage, theme, in, accepted, rejected, failed, reasons, seconds_per_sample, stale}`` (theme
    ``all`` sums a stage) and the source counts ``{planned, untried}``."""
    layout, digests = Layout(cfg.out), cfg.stage_digests()
    sources = {entry["id"]: entry["theme"] for entry in read_jsonl(layout.sources)}
    rows, tried = [], set()
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
        for theme in sorted(set(groups) | set(stale)) + ["all"]:
            decided = [d for t, ds in groups.items() for d in ds] if theme == "all" else groups.get(theme, [])
            status = Counter(d["status"] for d in decided)
            reasons = Counter(f"{d['reason']}" for d in decided if d["status"] in (REJECTED, FAILED))
            rows.append({
                "stage": number, "theme": theme, "in": len(decided), "accepted": status[ACCEPTED], "rejected": status[REJECTED],
                "failed": status[FAILED], "reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
                "seconds_per_sample": round(sum(d["seconds"] for d in decided) / len(decided), 3) if decided else None,
                "stale": sum(stale.values()) if theme == "all" else stale[theme],
            })
    return rows, {"planned": len(sources), "untried": len(set(sources) - tried)}


def print_funnel(cfg: SynthConfig) -> None:
    from rich.console import Console
    from rich.table import Table

    from ..log import console

    rows, sources = funnel(cfg)
    table = Table(title=f"{cfg.out}: {sources['planned']} source clips, {sources['untried']} not tried yet")
    for column in ("stage", "theme", "in", "accepted", "rejected", "failed", "rejected / failed by reason", "s/sample", "stale"):
        table.add_column(column, justify="left" if column in ("theme", "rejected / failed by reason") else "right")
    for row in rows:
        reasons = ", ".join(f"{k} {v}" for k, v in row["reasons"].items())
        seconds = "" if row["seconds_per_sample"] is None else f"{row['seconds_per_sample']:.2f}"
        table.add_row(str(row["stage"]), row["theme"], str(row["in"]), str(row["accepted"]), str(row["rejected"]),
                      str(row["failed"]), reasons, seconds, str(row["stale"] or ""), end_section=row["theme"] == "all")
    Console(width=max(console.width, 140)).print(table)
