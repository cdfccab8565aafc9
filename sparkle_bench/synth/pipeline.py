"""Running the steps over the samples that need them, on Ray Data or in a local loop.

Planning reads every stage's records: a sample starts at its first stage not decided under the
current settings digest (failed and never-tried ones included); one rejected under the current
settings is done. On Ray, the samples stream through one operator per step in batched blocks: model
steps are actor pools (each actor loads its models once; ``num_gpus``, ``num_cpus`` and the pool
size come from the stage's table), weight-free steps are tasks, and a sample a step rejects or fails
leaves the stream there (a failing step is tried ``retries`` more times first, in place). With
``--shard i/N`` N drivers split one corpus by content, each owning its shard of the output folder.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import socket
import time
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
from .steps import RunContext, Step, apply, pipeline_steps, stage_digests, stage_settings, wants

MAX_BLOCK_ROWS = 1000
PROGRESS_S = 60.0


@dataclass
class RunReport:
    planned: int = 0
    done: int = 0  # decided under the current settings before this run
    waiting: int = 0  # need a stage before the ones asked for
    duplicates: int = 0  # clips with the bytes of another
    outcomes: Counter = field(default_factory=Counter)  # (stage, status) where this run's samples ended


def plan(
    layout: Layout, sources: list[dict], digests: dict[int, str], first: int, last: int, ids: set[str] | None = None
) -> tuple[list[dict], RunReport]:
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
        if not record.get("halted"):
            yield record


def _rows(record: dict) -> list[dict]:
    """The record as a row for the next step, or none: a sample a step halted leaves the stream."""
    return [] if record.get("halted") else [{"id": record["id"], "record": json.dumps(record)}]


class StepActor:
    """A Ray Data actor: loads its step's models once, then applies the step to each row."""

    def __init__(self, step: Step, ctx: RunContext):
        self.step, self.ctx = step, ctx
        self.models = step.load(ctx.cfg)

    def __call__(self, row: dict) -> list[dict]:
        return _rows(apply(self.step, self.models, self.ctx, json.loads(row["record"])))


def step_task(row: dict, step: Step, ctx: RunContext) -> list[dict]:
    return _rows(apply(step, None, ctx, json.loads(row["record"])))


def check_resources(steps: list[Step], local: bool, gpu_wait_s: float) -> None:
    """What the steps run at once ask for, against the cluster: GPUs must be there (waited for on a
    cluster, bounded); a local machine short of them fails in one line, a cluster may still grow."""
    import ray

    from .cluster import wait_for_gpus

    actors = [s for s in steps if s.load is not None]
    need_gpu = sum(s.num_gpus * s.concurrency for s in actors)
    if need_gpu:
        wait_for_gpus(need_gpu, gpu_wait_s, local)
    total = ray.cluster_resources()
    need_cpu = sum(s.num_cpus * s.concurrency for s in actors) + max(
        (s.num_cpus for s in steps if s.load is None), default=0
    )
    short = [
        f"{need:g} {kind} (the cluster has {total.get(kind, 0):g})"
        for kind, need in (("GPU", need_gpu), ("CPU", need_cpu))
        if need > total.get(kind, 0)
    ]
    if short:
        message = (
            f"the stages run at once ask for {' and '.join(short)}: run fewer stages at a time (--stages 2) "
            f"or give the stages fractional num_gpus / num_cpus or smaller concurrency"
        )
        if local:
            raise ConfigError(message)
        warn(message + " (waiting for the cluster to grow)")


def block_count(rows: int, steps: list[Step]) -> int:
    """Enough blocks for every actor and task to have work (four each), at most MAX_BLOCK_ROWS rows per block."""
    parallel = sum(s.concurrency for s in steps)
    return max(1, min(rows, max(4 * parallel, math.ceil(rows / MAX_BLOCK_ROWS))))


def run_ray(rows: list[dict], steps: list[Step], ctx: RunContext) -> Iterator[dict]:
    """Inside a Ray session: the steps as one streaming dataset; yields the samples no step halted."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False  # one line per sample instead
    data = ray.data.from_items(
        [row for r in rows for row in _rows(r)], override_num_blocks=block_count(len(rows), steps)
    )
    for step in steps:
        if step.load is None:
            data = data.flat_map(
                step_task,
                fn_kwargs={"step": step, "ctx": ctx},
                num_cpus=step.num_cpus,
                compute=ray.data.TaskPoolStrategy(size=step.concurrency),
            )
        else:
            data = data.flat_map(
                StepActor,
                fn_constructor_kwargs={"step": step, "ctx": ctx},
                compute=ray.data.ActorPoolStrategy(size=step.concurrency),
                num_cpus=step.num_cpus,
                num_gpus=step.num_gpus,
            )
    for row in data.iter_rows():
        yield json.loads(row["record"])


def record_settings(cfg: SynthConfig, layout: Layout, digests: dict[int, str]) -> None:
    """``synth/settings/stage{N}-{digest}.json``: what a digest in the records stands for."""
    for number, value in digests.items():
        path = layout.work / "settings" / f"stage{number}-{value}.json"
        if not path.exists():
            snapshot = {
                "stage": number,
                "digest": value,
                "settings": stage_settings(cfg, number),
                "versions": cfg.versions(),
            }
            write_atomic(path, (json.dumps(snapshot, indent=1, sort_keys=True) + "\n").encode())


@contextmanager
def run_lock(layout: Layout, shard: tuple[int, int]) -> Iterator[None]:
    """One run per output folder (per shard of it) at a time (two would decide the same samples twice)."""
    layout.work.mkdir(parents=True, exist_ok=True)
    name = "run.lock" if shard[1] == 1 else f"run-{shard[0]}of{shard[1]}.lock"
    with open(layout.work / name, "a") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            which = f" (shard {shard[0]}/{shard[1]})" if shard[1] > 1 else ""
            raise ConfigError(f"another synth run is writing to {layout.root}{which}") from None
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def run_decisions(layout: Layout, run_id: str) -> dict[str, dict]:
    """Where each sample this run decided ended: its latest decision of this run, by id."""
    ended: dict[str, dict] = {}
    for number in STAGES:
        for sample_id, decision in latest_decisions(layout, number).items():
            if decision.get("run") == run_id and decision["time"] >= ended.get(sample_id, {}).get("time", 0):
                ended[sample_id] = decision
    return ended


def _plan_corpus(cfg: SynthConfig, layout: Layout, shard: tuple[int, int]) -> tuple[list[dict], int]:
    clips = list_corpus(cfg.settings["corpus"]["path"], cfg.settings["corpus"]["column"])
    sources = plan_sources(layout, clips, cfg.themes, cfg.settings["id_prefix"], shard)
    for path, cause in sources.unreadable.items():
        problem("unreadable", path, cause)
    if sources.new_duplicates:
        shown = "; ".join(f"{copy} = {first}" for copy, first in sources.new_duplicates[:3])
        more = f" (+{len(sources.new_duplicates) - 3} more)" if len(sources.new_duplicates) > 3 else ""
        warn(
            f"{len(sources.new_duplicates)} clips are byte-identical copies of earlier ones "
            f"and are skipped: {shown}{more}"
        )
    return sources.samples, sources.duplicates


def run_pipeline(
    cfg: SynthConfig,
    first: int = 1,
    last: int = 5,
    ids: set[str] | None = None,
    use_ray: bool = True,
    address: str = "",
    shard: tuple[int, int] = (0, 1),
) -> RunReport:
    from .cluster import ray_session
    from .preflight import check_run
    from .publish import publish

    layout = Layout(cfg.out)
    with run_lock(layout, shard):
        check_run(
            cfg, range(first, last + 1)
        )  # models on hand and fitting their GPUs, before anything is read or started
        if shard[1] == 1:  # other shards' drivers may be writing theirs
            remove_temp_files(layout.root)
        sources, duplicates = _plan_corpus(cfg, layout, shard)
        unknown = sorted((ids or set()) - {entry["id"] for entry in sources})
        if unknown:
            warn(f"--ids not in the source plan ({layout.work}/sources*.jsonl): {', '.join(unknown)}")
        digests = stage_digests(cfg)
        record_settings(cfg, layout, digests)
        ctx = RunContext(cfg, digests, uuid.uuid4().hex, shard)
        owner = {"run": ctx.run_id, "host": socket.gethostname(), "pid": os.getpid()}
        write_atomic(layout.shard_run_file(shard), json.dumps(owner).encode())
        rows, report = plan(layout, sources, digests, first, last, ids)
        report.duplicates = duplicates
        console.print(
            f"synth: {report.planned} samples to run (stages {first}-{last}), {report.done} already decided, "
            f"{report.waiting} waiting for an earlier stage, {duplicates} duplicate clips -> {layout.root}"
        )
        if rows:
            steps = pipeline_steps(cfg, min(r["start"] for r in rows), last)
            if use_ray:
                with ray_session(address, int(cfg.settings["ray"]["num_cpus"])) as local:
                    check_resources(steps, local, float(cfg.settings["ray"]["gpu_wait_s"]))
                    progress(run_ray(rows, steps, ctx), last)
            else:
                progress(run_local(rows, steps, ctx), last)
        for decision in run_decisions(layout, ctx.run_id).values():
            report.outcomes[(decision["stage"], decision["status"])] += 1
        if report.outcomes:
            console.print(
                "synth: this run's samples ended "
                + ", ".join(
                    f"{status} at stage {stage}: {count}" for (stage, status), count in sorted(report.outcomes.items())
                )
            )
        published = publish(cfg, layout, digests)
        console.print(f"published: {published['train']} training pairs, {published['bench']} bench candidates")
    return report


def progress(records: Iterator[dict], last: int, every_s: float = PROGRESS_S) -> None:
    """Drain the stream, with a line now and then (samples accepted through the last stage so far)."""
    started = shown = time.monotonic()
    count = 0
    for count, _ in enumerate(records, 1):
        if time.monotonic() - shown >= every_s:
            shown = time.monotonic()
            console.print(f"synth: {count} samples accepted through stage {last} ({count / (shown - started):.2f}/s)")
