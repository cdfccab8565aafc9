"""The pipeline as a chain of steps, and what every step does around its stage's function.

A step is one stage function with the models it loads (none for the weight-free ones): stage 1 is
a CPU flow test and, optionally, a VLM check; every other stage is one step. Each step is a pure
function from one record (+ files) to one record (+ files): the same code runs in a test, in the
local loop and in a Ray actor or task.

:func:`apply` is the common part: a record outside the step's stage range, or halted by an
earlier stage, passes through untouched; anything the stage function raises fails that sample
only (after ``retries`` more tries in place); the decision is appended to the stage's records when
the stage's last step is done or the sample is rejected or failed (a failure is printed where it
happens), unless another run has started on the same output since (a worker left over from a killed
run must not decide what the new run is deciding).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import stage1, stage2, stage3, stage4, stage5
from .config import ROLES, STAGES, SynthConfig, digest
from .layout import Layout
from .ledger import ACCEPTED, FAILED, Outcome, append_decision

MODULES = {1: stage1, 2: stage2, 3: stage3, 4: stage4, 5: stage5}


def stage_settings(cfg: SynthConfig, number: int) -> dict:
    return MODULES[number].settings(cfg)


def stage_roles(cfg: SynthConfig, number: int) -> list[str]:
    """The model roles a stage uses, read from its own settings (a role it does not use is absent or None)."""
    settings = stage_settings(cfg, number)
    return [role for role in ROLES if settings.get(role)]


def stage_digests(cfg: SynthConfig) -> dict[int, str]:
    """Cumulative: a change at a stage changes its digest and every later one."""
    out, previous = {}, ""
    for number in STAGES:
        previous = digest([previous, stage_settings(cfg, number)])
        out[number] = previous
    return out


class RunSuperseded(RuntimeError):
    """Another run owns the output folder now; this worker belongs to one that was killed."""


@dataclass(frozen=True)
class RunContext:
    """What every step of one run shares: the config, where it writes, the settings digests, and the
    run's id (``None`` when a stage is called directly, outside a run)."""

    cfg: SynthConfig
    digests: dict[int, str]
    run_id: str | None = None
    shard: tuple[int, int] = (0, 1)
    layout: Layout = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "layout", Layout(self.cfg.out))

    def check_current(self) -> None:
        if self.run_id is None:
            return
        owner = json.loads(self.layout.shard_run_file(self.shard).read_text()).get("run")
        if owner != self.run_id:
            raise RunSuperseded(
                f"run {owner} has started on {self.layout.root}; this worker's run {self.run_id} is over"
            )


@dataclass(frozen=True)
class Step:
    name: str
    stage: int
    run: Callable[[dict, Any, SynthConfig, Layout], Outcome]
    load: Callable[[SynthConfig], Any] | None  # None: weight-free, runs as CPU tasks
    final: bool  # its acceptance decides the stage
    num_cpus: float
    num_gpus: float
    concurrency: int


def pipeline_steps(cfg: SynthConfig, first: int = 1, last: int = 5) -> list[Step]:
    steps = []
    for number in range(first, last + 1):
        res = cfg.stage(number)
        if number == 1:
            check = bool(res["vlm_check"])
            steps.append(Step("stage1-flow", 1, stage1.coarse, None, not check, res["num_cpus"], 0, res["concurrency"]))
            if check:
                steps.append(
                    Step(
                        "stage1-vlm",
                        1,
                        stage1.check,
                        stage1.load_check,
                        True,
                        res["num_cpus"],
                        res["check_num_gpus"],
                        res["check_concurrency"],
                    )
                )
        else:
            module = MODULES[number]
            steps.append(
                Step(
                    f"stage{number}",
                    number,
                    module.run,
                    module.load,
                    True,
                    res["num_cpus"],
                    res["num_gpus"],
                    res["concurrency"],
                )
            )
    return steps


def one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else "(no message)"


def wants(step: Step, record: dict) -> bool:
    """Whether the step has work on this record (in its stage range, not halted by an earlier stage)."""
    return not record.get("halted") and record["start"] <= step.stage <= record["stop"]


def attempt(step: Step, models: Any, ctx: RunContext, record: dict) -> Outcome:
    """The step's outcome; what it raises (a corrupt file, an unusable answer, a model that throws) fails
    this sample only, after ``retries`` more tries right here, with the models already loaded."""
    tries = int(ctx.cfg.settings["retries"]) + 1
    for number in range(1, tries + 1):
        try:
            return step.run(record, models, ctx.cfg, ctx.layout)
        except Exception as exc:
            outcome = Outcome(FAILED, type(exc).__name__, one_line(exc))
            if number < tries:
                from ..log import console

                console.print(
                    f"{record['id']} stage {step.stage}: {outcome.reason} (try {number} of {tries}), trying again"
                )
    return outcome


def apply(step: Step, models: Any, ctx: RunContext, record: dict) -> dict:
    if not wants(step, record):
        return record
    began = time.monotonic()
    outcome = attempt(step, models, ctx, record)
    record = {**record, **outcome.data}
    pending = {**record.pop("_pending", {}), **outcome.data}
    seconds = record.pop("_seconds", 0.0) + time.monotonic() - began
    if outcome.status == ACCEPTED and not step.final:
        return {**record, "_pending": pending, "_seconds": seconds}
    ctx.check_current()
    decision = append_decision(
        ctx.layout,
        step.stage,
        record,
        Outcome(outcome.status, outcome.reason, outcome.detail, pending),
        ctx.digests[step.stage],
        seconds,
        ctx.run_id,
    )
    if outcome.status != ACCEPTED:
        record["halted"] = True
    if outcome.status == FAILED:  # one line, from the worker that saw it; rejections are counted, not printed
        from ..log import problem

        problem("failed", f"{record['id']} stage {step.stage}", f"{outcome.reason}: {outcome.detail}")
    record["last"] = {k: decision[k] for k in ("stage", "status", "reason", "detail")}
    return record
