"""The library: an evaluation from Python, with the same run folder, files and exit status as the CLI.

``evaluate(bench="demo", model="still-composite", limit=8)`` runs what ``sparkle-bench eval`` runs
(bench selection -> adapter -> run folder -> weights check -> inference -> scoring -> judge -> table)
and returns a :class:`Result`: the summary table, the per-sample records and the run folder. ``model``
is a registered name or spec string, or a :class:`~sparkle_bench.models.ModelAdapter` instance (a
model already in memory, as the trainer's eval hook passes). The stages are functions too, taking
settings objects: :func:`infer`, :func:`score`, :func:`judge`, :func:`summarize`; each reads the
previous stage's files, so any can be re-run alone. The CLI parses flags into these settings and
makes one call; nothing below it sees ``argparse``.

Stage progress goes to stderr (one line per stage, one per problem sample); the caller decides what
to print of the result. Bad input raises (:class:`~sparkle_bench.bench.BenchError`, ``AdapterError``,
``UnknownNameError``, ...); a sample that fails is counted, never raised.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .log import console

if TYPE_CHECKING:
    import pandas as pd

    from .bench import Bench
    from .judge.setup import JudgeOptions
    from .models import ModelAdapter
    from .runner import InferenceReport


@dataclass
class Selection:
    """Which samples: a bench (``demo``, a Sparkle-Bench folder or an OpenVE-Bench CSV) narrowed by
    themes, a named subset, ids and a stratified limit, with an optional folder of masks."""

    bench: str = "demo"
    themes: list[str] | None = None
    ids: list[str] | None = None
    limit: int | None = None
    subset: str | None = None
    masks: Path | None = None


@dataclass
class RunSettings:
    """Which model, on which samples, into which run folder. ``shard``: ``"i/N"`` or ``(i, N)``
    (default: torchrun's ``RANK``/``WORLD_SIZE``). ``check_weights``: before inference, fetch the
    hub weights the adapter reads or fail naming them (off for a model already in memory)."""

    model: str | ModelAdapter = "identity"
    selection: Selection = field(default_factory=Selection)
    model_options: dict[str, str] = field(default_factory=dict)
    reference: bool = False
    offload: bool = False
    runs_dir: Path = Path("runs")
    run_name: str | None = None
    label: str | None = None
    shard: str | tuple[int, int] | None = None
    check_weights: bool = True

    def record(self) -> dict[str, Any]:
        """The settings as a run's provenance keeps them (an adapter instance by its spec)."""
        model = self.model if isinstance(self.model, str) else self.model.spec
        return {
            **_plain(dataclasses.asdict(self.selection)),
            "model": model,
            "model_options": dict(self.model_options),
            "reference": self.reference,
            "offload": self.offload,
            "runs_dir": str(self.runs_dir),
            "run_name": self.run_name,
            "label": self.label,
            "shard": _shard_text(self.shard),
        }


@dataclass
class ScoreSettings:
    """How edited videos are scored: metric names (or ``package.module:Class``; default: the
    weight-free ones), working height, how another aspect is aligned, worker processes (default:
    one per core; 1 scores in this process)."""

    metrics: tuple[str, ...] | list[str] | None = None
    work_height: int = 288
    align: str = "crop"
    workers: int | None = None

    def names(self) -> list[str]:
        from .metrics import DEFAULT_METRICS

        return list(self.metrics if self.metrics is not None else DEFAULT_METRICS)

    def record(self) -> dict[str, Any]:
        return {"metrics": self.names(), "work_height": self.work_height, "align": self.align, "workers": self.workers}


@dataclass
class EvalSettings:
    """Everything ``evaluate`` runs: inference and scoring, the judge when ``judge`` is set, then
    the table. ``strict``: exit status 3 when a sample failed or is missing or a metric was
    unavailable; ``missing_policy``: judge failures left out of the means (``exclude``) or scored 1."""

    run: RunSettings = field(default_factory=RunSettings)
    scoring: ScoreSettings = field(default_factory=ScoreSettings)
    judge: JudgeOptions | None = None
    missing_policy: str = "exclude"
    strict: bool = False


@dataclass
class Result:
    """What a stage or an evaluation left: the run folder and, once the table stage ran, the
    summary (summary.csv), the per-sample records (samples.jsonl, judge.jsonl: latest per id) and
    the lines a reader should see. ``exit_code`` is the CLI's: 0 done, 1 inference failed for every
    sample, 2 the judge cannot be used, 3 with ``strict`` something failed, 130 stopped."""

    run_dir: Path
    exit_code: int = 0
    summary: pd.DataFrame | None = None
    records: dict[str, dict] = field(default_factory=dict)
    judge_records: dict[str, dict] = field(default_factory=dict)
    inference: InferenceReport | None = None
    scoring: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)  # about the table (judge records left out, ...)
    unavailable: list[str] = field(default_factory=list)  # why a metric has no value, one line per cause
    shard: tuple[int, int] = (0, 1)
    error: str = ""  # why the exit code is not 0, in one line, when the table cannot say it (nothing scored)

    @property
    def macro(self) -> dict[str, float]:
        """The MACRO row's scores (mean of theme means), by column; empty before the table stage."""
        if self.summary is None:
            return {}
        row = self.summary[self.summary["theme"] == "MACRO"].iloc[0]
        return {k: float(v) for k, v in row.items() if isinstance(v, float) and not k.startswith("n_") and v == v}


@dataclass
class OpenRun:
    """A run folder opened for work: the selected bench, the adapter set up for it, this process's shard."""

    bench: Bench
    adapter: ModelAdapter
    run_dir: Path
    shard: tuple[int, int]


def _plain(values: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in values.items()}


def _shard_text(shard: str | tuple[int, int] | None) -> str | None:
    return f"{shard[0]}/{shard[1]}" if isinstance(shard, tuple) else shard


def select_bench(selection: Selection) -> Bench:
    """The bench narrowed to the selection (subset, then ids and limit)."""
    from .bench import open_bench, select
    from .subsets import apply_subset

    bench = open_bench(selection.bench, selection.themes)
    if selection.masks:
        bench = dataclasses.replace(bench, masks_dir=Path(selection.masks).resolve())
    if selection.subset:
        bench = apply_subset(bench, selection.subset)
    if selection.ids or selection.limit is not None:
        bench = select(bench, ids=selection.ids, limit=selection.limit)
    return bench


def load_adapter(run: RunSettings) -> ModelAdapter:
    """The adapter a spec names, configured with the options; an instance as given (configured
    with the options when there are any)."""
    from .models import load_model

    options = dict(run.model_options)
    options.update({k: "true" for k in ("reference", "offload") if getattr(run, k)})
    if isinstance(run.model, str):
        return load_model(run.model, options)
    if options:
        run.model.configure(options)
    return run.model


def memory_plan(run: RunSettings) -> list[str] | None:
    """The GPU memory the model needs, as lines, before anything loads (None: no estimate)."""
    plan = getattr(load_adapter(run), "memory_plan", None)
    return None if plan is None else list(plan())


def open_run(
    run: RunSettings, arguments: dict[str, Any], fetch_weights: bool = False, metrics: dict[str, str] | None = None
) -> OpenRun:
    """Select the bench, build the adapter, create or re-open the run folder (recording
    ``arguments`` and the ``metrics``' classes), set the adapter up; with ``fetch_weights``, every
    hub repository a generating adapter reads is fetched (or named) before any weight loads."""
    from .runner import parse_shard
    from .runs import default_run_name
    from .runs import open_run as open_folder

    bench = select_bench(run.selection)
    adapter = load_adapter(run)
    run_dir = Path(run.runs_dir) / (run.run_name or default_run_name(bench, adapter.spec, adapter.run_suffix))
    open_folder(run_dir, bench, adapter.spec, arguments, run.label, adapter.run_suffix, metrics)
    adapter.setup(bench)
    shard = parse_shard(_shard_text(run.shard))
    if fetch_weights and run.check_weights:
        from .models.weights import ensure_weights
        from .runner import shard_samples

        spec = run.model if isinstance(run.model, str) else adapter.spec
        ensure_weights(
            adapter, shard_samples(bench.samples, shard), run_dir / "outputs", spec, list(run.model_options.items())
        )
    return OpenRun(bench, adapter, run_dir, shard)


def _infer(opened: OpenRun, strict: bool = False) -> Result:
    """Generate missing outputs; exit code 1 when every sample tried failed, 3 (``strict``) when any did."""
    from .runner import run_inference

    result = Result(opened.run_dir, shard=opened.shard)
    if not opened.adapter.generates:
        return result
    shard = opened.shard
    log = opened.run_dir / ("inference.jsonl" if shard == (0, 1) else f"inference.shard{shard[0]}of{shard[1]}.jsonl")
    report = run_inference(opened.bench, opened.adapter, opened.run_dir / "outputs", log, shard)
    result.inference = report
    console.print(f"inference: {report.generated} generated, {report.cached} already there, {report.failed} failed")
    if report.failed and (strict or not report.generated):
        which = "every sample tried" if not report.generated else f"{report.failed} sample(s)"
        console.print(
            f"[red]error[/]: inference failed for {which}; first cause: {report.first_failure}", soft_wrap=True
        )
        result.exit_code = 1 if not report.generated else 3
    return result


def _score(opened: OpenRun, scoring: ScoreSettings, metrics: list, result: Result) -> None:
    """Score into the run folder; exit code 1 and the first cause when no sample could be scored
    (:func:`sparkle_bench.runner.scoring_outcome`), which the table stage keeps."""
    from .runner import default_workers, run_scoring, scoring_outcome

    counts = run_scoring(
        opened.bench,
        opened.adapter,
        opened.run_dir / "outputs",
        opened.run_dir,
        metrics,
        scoring.work_height,
        opened.shard,
        scoring.workers or default_workers(),
        scoring.align,
    )
    console.print(
        f"scoring: {counts['ok']} scored, {counts['reused']} reused, {counts['failed']} failed, "
        f"{counts['missing']} missing"
    )
    result.scoring = counts
    result.exit_code, result.error = scoring_outcome(opened.bench, opened.run_dir, opened.shard)


def _metric_specs(metrics: list) -> dict[str, str]:
    from .metrics import spec_of

    return {m.name: spec_of(m) for m in metrics}


def _table(result: Result, bench: Bench, missing_policy: str, strict: bool) -> Result:
    """Write summary.csv and fill the result's table, records and lines; exit code 3 with
    ``strict`` when a sample failed, is missing, is flagged (short, orientation) or lacks a metric;
    an exit code the scoring stage set (nothing scored) is kept."""
    from .display import unavailable_lines
    from .runs import read_provenance, run_label
    from .tables import STRICT_COUNTS, run_records, summarize_run, write_table

    summary = summarize_run(result.run_dir, bench, run_label(read_provenance(result.run_dir)), missing_policy)
    write_table(summary.table, result.run_dir / "summary.csv")
    result.summary, result.records, result.notes = summary.table, summary.metric_records, summary.notes
    result.judge_records = run_records(result.run_dir, "judge*.jsonl")
    result.unavailable = unavailable_lines(bench, summary.metric_records)
    macro = summary.table[summary.table["theme"] == "MACRO"].iloc[0]
    bad = sum(int(macro.get(c, 0) or 0) for c in STRICT_COUNTS)
    result.exit_code = result.exit_code or (3 if strict and (bad or result.unavailable) else 0)
    return result


def run_eval(settings: EvalSettings) -> Result:
    """Inference, scoring, the judge (when set) and the table, into one run folder. A shard other
    than 0/1 stops before the table (``summarize`` the folder when every shard finished)."""
    from .metrics import load_metrics

    metrics = load_metrics(settings.scoring.names())
    arguments = {
        **settings.run.record(),
        **settings.scoring.record(),
        "missing_policy": settings.missing_policy,
        "strict": settings.strict,
        "judge": settings.judge.record() if settings.judge else None,
    }
    opened = open_run(settings.run, arguments, fetch_weights=True, metrics=_metric_specs(metrics))
    result = _infer(opened)
    if result.exit_code:
        return result
    _score(opened, settings.scoring, metrics, result)
    if settings.judge is not None:
        from .judge.setup import judge_stage

        code = judge_stage(opened.bench, opened.adapter, opened.run_dir, opened.shard, settings.judge)
        if code:
            result.exit_code = code
            return result
    if opened.shard != (0, 1):
        return result
    return _table(result, opened.bench, settings.missing_policy, settings.strict)


def evaluate(
    bench: str = "demo",
    model: str | ModelAdapter = "still-composite",
    *,
    themes: list[str] | None = None,
    ids: list[str] | None = None,
    limit: int | None = None,
    subset: str | None = None,
    masks: str | Path | None = None,
    metrics: list[str] | tuple[str, ...] | None = None,
    work_height: int = 288,
    align: str = "crop",
    workers: int | None = None,
    judge: str | JudgeOptions | None = None,
    runs_dir: str | Path = "runs",
    run_name: str | None = None,
    label: str | None = None,
    model_options: dict[str, Any] | None = None,
    reference: bool = False,
    offload: bool = False,
    shard: str | tuple[int, int] | None = None,
    strict: bool = False,
    missing_policy: str = "exclude",
    check_weights: bool = True,
) -> Result:
    """Evaluate ``model`` on ``bench``, as ``sparkle-bench eval`` with the same settings would, into
    ``runs_dir/run_name`` (default ``<bench>-<model>``); re-running resumes. ``judge``: ``"openai"``
    or ``"local"`` with default settings, or a :class:`~sparkle_bench.judge.setup.JudgeOptions`."""
    from .judge.setup import JudgeOptions

    run = RunSettings(
        model,
        Selection(bench, themes, ids, limit, subset, Path(masks) if masks else None),
        {k: str(v) for k, v in (model_options or {}).items()},
        reference,
        offload,
        Path(runs_dir),
        run_name,
        label,
        shard,
        check_weights,
    )
    options = JudgeOptions(backend=judge) if isinstance(judge, str) else judge
    scoring = ScoreSettings(metrics, work_height, align, workers)
    return run_eval(EvalSettings(run, scoring, options, missing_policy, strict))


def infer(run: RunSettings, strict: bool = False) -> Result:
    """Only the model's edited videos (weights checked first); exit code 1 when every sample
    failed, 3 with ``strict`` when any did."""
    return _infer(open_run(run, run.record(), fetch_weights=True), strict)


def score(run: RunSettings, scoring: ScoreSettings, *, missing_policy: str = "exclude", strict: bool = False) -> Result:
    """Score the edited videos there are, then (one shard, or the last) write the table."""
    from .metrics import load_metrics

    metrics = load_metrics(scoring.names())
    opened = open_run(run, {**run.record(), **scoring.record()}, metrics=_metric_specs(metrics))
    result = Result(opened.run_dir, shard=opened.shard)
    _score(opened, scoring, metrics, result)
    return result if opened.shard != (0, 1) else _table(result, opened.bench, missing_policy, strict)


def judge(run: RunSettings, options: JudgeOptions, *, missing_policy: str = "exclude", strict: bool = False) -> Result:
    """Judge the edited videos with a VLM (cached, resumable), then write the table (not after a
    dry run, a failure or on a shard)."""
    from .judge.setup import judge_stage

    opened = open_run(run, {**run.record(), **options.record(), "missing_policy": missing_policy})
    result = Result(opened.run_dir, shard=opened.shard)
    result.exit_code = judge_stage(opened.bench, opened.adapter, opened.run_dir, opened.shard, options)
    if result.exit_code or opened.shard != (0, 1) or options.dry_run:
        return result
    return _table(result, opened.bench, missing_policy, strict)


def summarize(
    run_dir: str | Path, *, missing_policy: str = "exclude", strict: bool = False, label: str | None = None
) -> Result:
    """The table stage: summary.csv of a run folder from its records (all shards'), on the bench
    selection its provenance names. ``label`` renames the run in tables from now on."""
    from .runs import bench_of_run, write_provenance

    run_dir = Path(run_dir)
    bench, provenance = bench_of_run(run_dir)
    if label:
        write_provenance(run_dir, {**provenance, "label": label})
    return _table(Result(run_dir), bench, missing_policy, strict)


__all__ = [
    "EvalSettings",
    "OpenRun",
    "Result",
    "RunSettings",
    "ScoreSettings",
    "Selection",
    "evaluate",
    "infer",
    "judge",
    "load_adapter",
    "memory_plan",
    "open_run",
    "run_eval",
    "score",
    "select_bench",
    "summarize",
]
