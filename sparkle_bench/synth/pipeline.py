"""Running the steps over the samples that need them, on Ray Data or in a local loop.

Planning reads every stage's records: a sample starts at its first stage not decided under the
current settings digest (failed and never-tried ones included); one rejected under the current
settings is done. On Ray, the samples stream through one operator per step: model steps are actor
pools (each actor loads its models once; ``num_gpus``, ``num_cpus`` and the pool size come from the
stage's table), weight-free steps are tasks; a sample moves on as soon as its step is done, so no
stage waits for another to finish. Local Ray starts in this process; ``address`` joins a cluster
(every node needs this package and the output folder on shared storage).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import uuid
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..log import console, problem, warn
from .config import STAGES, ConfigError, SynthConfig
from .corpus import list_corpus, plan_sources
from .layout import Layout, remove_temp_files, write_atomic
from .ledger import ACCEPTED, REJECTED, latest_decisions
from .steps import RunContext, Step, apply, pipeline_steps, stage_settings, wants


@dataclass
class RunReport:
    planned: int = 0
    done: int = 0  # decided under the current settings before this run
    waiting: int = 0  # need a stage before the ones asked for
    outcomes: Counter = field(default_factory=Counter)  # (stage, status) of this run's samples


def plan(layout: Layout, sources: list[dict], digests: dict[int, str], first: int, last: int,
         ids: set[str] | None = None) -> tuple[list[dict], RunReport]:
    decided = {number: latest_decisions(layout, number) for number in STAGES}
    rows, report = [], RunReport()
    for entry in sources:
        if ids and entry["id"] not in ids:
            continue
        record, start = dict(entry), None
        for number in STAGES:
            decision = decided[number].get(entry["id"])
            current = decision is not None and decision["settings"] == digests[number]
            if current and decision["status"] == ACCEPTED:
                record.update(decision["data"])
                continue
            if not (current and decision["status"] == REJECTED):
                start = number
            break
        if start is None or start > last:
            report.done += 1
        elif start < first:
            report.waiting += 1
        else:
            rows.append({**record, "start": start, "stop": last})
    report.planned = len(rows)
    return rows, report


def run_local(rows: list[dict], steps: list[Step], ctx: RunContext) -> Iterator[dict]:
    """One process, one sample at a time; each step's models load when a sample first needs them."""
    models: dict[str, Any] = {}
    for record in rows:
        for step in steps:
            if step.load is not None and step.name not in models and wants(step, record):
                models[step.name] = step.load(ctx.cfg)
            record = apply(step, models.get(step.name), ctx, record)
        yield record


class StepActor:
    """A Ray Data actor: loads its step's models once, then applies the step to each row."""

    def __init__(self, step: Step, ctx: RunContext):
        self.step, self.ctx = step, ctx
        self.models = step.load(ctx.cfg)

    def __call__(self, row: dict) -> dict:
        return {"id": row["id"], "record": json.dumps(apply(self.step, self.models, self.ctx, json.loads(row["record"])))}


def step_task(row: dict, step: Step, ctx: RunContext) -> dict:
    return {"id": row["id"], "record": json.dumps(apply(step, None, ctx, json.loads(row["record"])))}


def _fit_resources(steps: list[Step], local: bool) -> dict[str, float]:
    """GPUs per actor, checked against the cluster: none there means models run on CPU."""
    import ray

    total = ray.cluster_resources()
    gpus = {s.name: s.num_gpus if total.get("GPU", 0) else 0 for s in steps}
    if any(s.num_gpus for s in steps) and not total.get("GPU", 0):
        warn("the Ray cluster has no GPU: model stages run on CPU (slow)")
    actors = [s for s in steps if s.load is not None]
    need_gpu = sum(gpus[s.name] * s.concurrency for s in actors)
    need_cpu = sum(s.num_cpus * s.concurrency for s in actors) + max((s.num_cpus for s in steps if s.load is None), default=0)
    short = [f"{need:g} {kind} (the cluster has {total.get(kind, 0):g})"
             for kind, need in (("GPU", need_gpu), ("CPU", need_cpu)) if need > total.get(kind, 0)]
    if short:
        message = (f"the stages run at once ask for {' and '.join(short)}: run fewer stages at a time (--stages 2) "
                   f"or give the stages fractional num_gpus / num_cpus or smaller concurrency")
        if local:
            raise ConfigError(message)
        warn(message + " (waiting for the cluster to grow)")
    return gpus


def run_ray(rows: list[dict], steps: list[Step], ctx: RunContext, address: str = "") -> Iterator[dict]:
    import ray
    import ray.data

    started = not ray.is_initialized()
    if started:
        local = {"num_cpus": int(ctx.cfg.settings["ray"]["num_cpus"]) or None}
        ray.init(**({"address": address} if address else local), include_dashboard=False, log_to_driver=True)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False  # one line per sample instead
        gpus = _fit_resources(steps, not address)
        data = ray.data.from_items([{"id": r["id"], "record": json.dumps(r)} for r in rows], override_num_blocks=len(rows))
        for step in steps:
            if step.load is None:
                data = data.map(step_task, fn_kwargs={"step": step, "ctx": ctx}, num_cpus=step.num_cpus,
                                compute=ray.data.TaskPoolStrategy(size=step.concurrency))
            else:
                data = data.map(StepActor, fn_constructor_kwargs={"step": step, "ctx": ctx},
                                compute=ray.data.ActorPoolStrategy(size=step.concurrency), num_cpus=step.num_cpus,
                                num_gpus=gpus[step.name])
        for row in data.iter_rows():
            yield json.loads(row["record"])
    finally:
        if started:
            ray.shutdown()


def record_settings(cfg: SynthConfig, layout: Layout, digests: dict[int, str]) -> None:
    """``synth/settings/stage{N}-{digest}.json``: what a digest in the records stands for."""
    for number, value in digests.items():
        path = layout.work / "settings" / f"stage{number}-{value}.json"
        if not path.exists():
            snapshot = {"stage": number, "digest": value, "settings": stage_settings(cfg, number), "versions": cfg.versions()}
            write_atomic(path, (json.dumps(snapshot, indent=1, sort_keys=True) + "\n").encode())


@contextmanager
def run_lock(layout: Layout) -> Iterator[None]:
    """One run per output folder at a time (two would decide the same samples twice)."""
    layout.work.mkdir(parents=True, exist_ok=True)
    with open(layout.work / "run.lock", "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"another synth run is writing to {layout.root}") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _report(record: dict, report: RunReport) -> None:
    last = record.get("last", {})
    report.outcomes[(last.get("stage"), last.get("status"))] += 1
    where = f"{record['id']} stage {last.get('stage')}"
    if last.get("status") == ACCEPTED:
        console.print(f"{record['id']}: accepted through stage {last['stage']}")
    elif last.get("status") == REJECTED:
        console.print(f"{record['id']}: rejected at stage {last['stage']}, {last['reason']} ({last['detail']})", soft_wrap=True)
    else:
        problem("failed", where, f"{last.get('reason')}: {last.get('detail')}")


def run_pipeline(cfg: SynthConfig, first: int = 1, last: int = 5, ids: set[str] | None = None, use_ray: bool = True,
                 address: str = "") -> RunReport:
    from .publish import publish

    layout = Layout(cfg.out)
    with run_lock(layout):
        remove_temp_files(layout.root)
        clips = list_corpus(cfg.settings["corpus"]["path"], cfg.settings["corpus"]["column"])
        sources = plan_sources(layout, clips, cfg.themes, cfg.settings["id_prefix"])
        unknown = sorted((ids or set()) - {entry["id"] for entry in sources})
        if unknown:
            warn(f"--ids not in the source plan ({layout.sources}): {', '.join(unknown)}")
        digests = cfg.stage_digests()
        record_settings(cfg, layout, digests)
        ctx = RunContext(cfg, digests, uuid.uuid4().hex)
        write_atomic(layout.run_file, json.dumps({"run": ctx.run_id, "host": socket.gethostname(), "pid": os.getpid()}).encode())
        rows, report = plan(layout, sources, digests, first, last, ids)
        console.print(f"synth: {report.planned} samples to run (stages {first}-{last}), {report.done} already decided, "
                      f"{report.waiting} waiting for an earlier stage -> {layout.root}")
        if rows:
            steps = pipeline_steps(cfg, min(r["start"] for r in rows), last)
            records = run_ray(rows, steps, ctx, address) if use_ray else run_local(rows, steps, ctx)
            for record in records:
                _report(record, report)
        published = publish(cfg, layout, digests)
        console.print(f"published: {published['train']} training pairs, {published['bench']} bench candidates")
    return report
