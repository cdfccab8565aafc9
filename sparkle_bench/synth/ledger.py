"""Every stage decision, appended to ``synth/records/stage{N}/{host}-{pid}.jsonl``.

One file per writing process: workers on any node append without locks and never tear another's
line. A record says what was decided (accepted, rejected with a reason, failed with its cause),
under which settings digest and in which run, how long it took, and the stage's data (scores, groundings, the
instruction). The latest record per sample and stage wins; a failed one is retried on the next run.
Lines are written whole but not fsynced (one fsync per decision would cost more than a weight-free
stage at corpus scale): a killed process loses nothing, a crashed machine at most its last
decisions, which the next run makes again; a torn last line is skipped by the reader.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, field

from ..records import read_jsonl
from .layout import Layout

ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"


@dataclass
class Outcome:
    """What a stage made of one sample; ``reason`` is a short code, ``detail`` one human line."""

    status: str
    reason: str = ""
    detail: str = ""
    data: dict = field(default_factory=dict)

    @classmethod
    def reject(cls, reason: str, detail: str, **data) -> "Outcome":
        return cls(REJECTED, reason, detail, data)


def append_decision(
    layout: Layout, stage: int, record: dict, outcome: Outcome, settings: str, seconds: float, run: str | None = None
) -> dict:
    decision = {
        "id": record["id"],
        "theme": record["theme"],
        "stage": stage,
        "status": outcome.status,
        "reason": outcome.reason,
        "detail": outcome.detail,
        "settings": settings,
        "seconds": round(seconds, 3),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "time": time.time_ns(),
        "run": run,
        "data": outcome.data,
    }
    path = layout.decisions(stage) / f"{socket.gethostname()}-{os.getpid()}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as handle:  # one write per line: a killed process loses at most the line being written
        handle.write((json.dumps(decision, sort_keys=True, allow_nan=False) + "\n").encode())
    return decision


def latest_decisions(layout: Layout, stage: int) -> dict[str, dict]:
    """The newest record per sample id at ``stage``, across every writer's file."""
    latest: dict[str, dict] = {}
    for path in sorted(layout.decisions(stage).glob("*.jsonl")):
        for record in read_jsonl(path):
            known = latest.get(record.get("id"))
            if "id" in record and (known is None or record.get("time", 0) >= known.get("time", 0)):
                latest[record["id"]] = record
    return latest
