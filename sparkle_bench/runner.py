"""The two working stages of a run: inference (adapter -> edited videos) and scoring
(edited videos -> per-sample records). Both skip finished work, so a re-run resumes.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .bench import Bench, Sample
from .log import console, problem
from .masks import MaskError, find_mask
from .metrics import Metric, MetricUnavailable
from .models import ModelAdapter, WeightsError
from .pair import load_pair
from .records import append_jsonl, file_digest, read_jsonl
from .video import VideoError

SAMPLES_FILE = "samples.jsonl"


def parse_shard(text: str | None) -> tuple[int, int]:
    """``i/N`` from the flag, else torchrun's ``RANK``/``WORLD_SIZE``, else ``0/1``."""
    if text:
        index, _, count = text.partition("/")
        shard = (int(index), int(count))
    else:
        shard = (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)))
    if not 0 <= shard[0] < shard[1]:
        raise ValueError(f"bad shard {shard[0]}/{shard[1]}: need 0 <= i < N")
    return shard


def shard_samples(samples: tuple[Sample, ...], shard: tuple[int, int]) -> list[Sample]:
    return list(samples[shard[0] :: shard[1]])


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def _reset_gpu_peak():
    """torch, with its peak-memory counter reset, when a torch model may use a GPU; else None."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    torch.cuda.reset_peak_memory_stats()
    return torch


@dataclass
class InferenceReport:
    generated: int = 0
    cached: int = 0
    failed: int = 0
    absent: int = 0  # a non-generating adapter has no file for the sample
    first_failure: str = ""  # "theme/id: cause" of the first failed sample


def run_inference(
    bench: Bench, adapter: ModelAdapter, outputs: Path, log_path: Path, shard: tuple[int, int] = (0, 1)
) -> InferenceReport:
    """Write each missing output in the canonical layout; failures go to ``log_path``, one line each."""
    report = InferenceReport()
    samples = shard_samples(bench.samples, shard)
    with _progress() as progress:
        task = progress.add_task(f"inference {adapter.spec}", total=len(samples))
        for sample in samples:
            progress.advance(task)
            if adapter.locate(sample, outputs) is not None:
                report.cached += 1
                continue
            if not adapter.generates:
                report.absent += 1
                continue
            started = time.monotonic()
            gpu = _reset_gpu_peak()
            try:
                adapter.write(sample, outputs / sample.output_relpath)
            except WeightsError:
                raise
            except Exception as exc:  # one sample's crash must not end the run; it is recorded
                cause = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                problem("inference failed", f"{sample.theme}/{sample.id}", cause)
                append_jsonl(log_path, {"id": sample.id, "status": "failed", "reason": cause})
                report.failed += 1
                report.first_failure = report.first_failure or f"{sample.theme}/{sample.id}: {cause}"
                continue
            record = {"id": sample.id, "status": "ok", "seconds": round(time.monotonic() - started, 2)}
            if gpu is not None:
                record["peak_gpu_mb"] = round(gpu.cuda.max_memory_allocated() / 2**20)
            append_jsonl(log_path, record)
            report.generated += 1
    return report


def latest_records(path: Path) -> dict[str, dict]:
    """The last record per sample id (later lines supersede earlier ones)."""
    return {r["id"]: r for r in read_jsonl(path) if "id" in r}


def _inference_failures(run_dir: Path) -> dict[str, str]:
    failures: dict[str, str] = {}
    for log in sorted(run_dir.glob("inference*.jsonl")):
        for record in read_jsonl(log):
            if record.get("status") == "failed":
                failures[record["id"]] = record.get("reason", "")
            else:
                failures.pop(record.get("id"), None)
    return failures


def score_sample(
    sample: Sample, edited: Path, metrics: list[Metric], masks_dir: Path | None, work_height: int, align: str = "crop"
) -> dict:
    """Metric values for one sample; a video or mask problem fails the sample, a metric that
    cannot apply is recorded as unavailable with its reason. ``flags``: how the edit breaks the
    protocol though it could be scored (``short``, ``orientation``: :func:`sparkle_bench.pair.protocol_flags`);
    such a sample is scored but not complete."""
    record: dict = {"status": "ok", "metrics": {}, "unavailable": {}}
    try:
        pair = load_pair(
            sample.source, edited, find_mask(masks_dir, sample.theme, sample.id), work_height, sample.prompt, align
        )
    except (VideoError, MaskError) as exc:
        return {"status": "failed", "reason": str(exc), "metrics": {}, "unavailable": {}}
    record["alignment"] = pair.notes
    record["flags"] = dict(pair.flags)
    for metric in metrics:
        try:
            record["metrics"][metric.name] = round(metric(pair), 6)
        except MetricUnavailable as exc:
            record["metrics"][metric.name] = None
            record["unavailable"][metric.name] = str(exc)
    return record


def scoring_outcome(bench: Bench, run_dir: Path, shard: tuple[int, int] = (0, 1)) -> tuple[int, str]:
    """Exit status and one line for a scoring stage: 1 and the first cause when no sample of the
    shard could be scored (every one failed or is missing), else 0 and ``""``."""
    records = latest_records(run_dir / SAMPLES_FILE)
    if shard != (0, 1):
        records |= latest_records(run_dir / f"samples.shard{shard[0]}of{shard[1]}.jsonl")
    samples = shard_samples(bench.samples, shard)
    if not samples or any(records.get(s.id, {}).get("status") == "ok" for s in samples):
        return 0, ""
    statuses = [records.get(s.id, {}).get("status", "missing") for s in samples]
    first = next((s for s in samples if records.get(s.id, {}).get("reason")), samples[0])
    cause = records.get(first.id, {}).get("reason", "not scored")
    failed = statuses.count("failed")
    return 1, (
        f"no sample could be scored ({failed} failed, {len(statuses) - failed} missing of {len(samples)}); "
        f"first cause: {first.theme}/{first.id}: {cause}"
    )


def default_workers() -> int:
    """Every core this process may use (respects CPU affinity, e.g. in containers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class WorkerError(ChildProcessError):
    """A scoring worker process died (killed, out of memory); finished records are kept."""


_WORKER: dict = {}


def _worker_init(metrics: list[Metric], masks_dir: Path | None, work_height: int, align: str) -> None:
    """Per worker process: the parent handles Ctrl-C; a parent killed outright takes its workers
    with it (they would otherwise wait on the task queue forever); OpenCV gets one thread, since
    the processes already use every core (flow, resizing and colour conversion give the same
    numbers with any thread count)."""
    import multiprocessing
    import signal
    import threading

    import cv2

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), name="parent-watch", daemon=True).start()
    cv2.setNumThreads(1)
    _WORKER.update(metrics=metrics, masks_dir=masks_dir, work_height=work_height, align=align)


def _timed_score(
    sample: Sample, edited: Path, metrics: list[Metric], masks_dir: Path | None, work_height: int, align: str
) -> tuple[dict, float]:
    started = time.monotonic()
    return score_sample(sample, edited, metrics, masks_dir, work_height, align), time.monotonic() - started


def _score_in_worker(sample: Sample, edited: Path) -> tuple[dict, float]:
    return _timed_score(
        sample, edited, _WORKER["metrics"], _WORKER["masks_dir"], _WORKER["work_height"], _WORKER["align"]
    )


def _scored(todo: list, metrics: list[Metric], masks_dir: Path | None, work_height: int, workers: int, align: str):
    """Yield ``(item, record, seconds)`` for each ``(sample, edited, ...)`` item as it finishes.

    More than one worker: a process pool started by a fork server (or spawn), never by forking
    this process, whose decoder and thread pools are not fork-safe. Results come back here, so
    only this process writes records.
    """
    if workers <= 1 or len(todo) <= 1:
        for item in todo:
            yield item, *_timed_score(item[0], item[1], metrics, masks_dir, work_height, align)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
    context = multiprocessing.get_context(method)
    if method == "forkserver":
        context.set_forkserver_preload([__name__])
    pool = ProcessPoolExecutor(
        min(workers, len(todo)),
        mp_context=context,
        initializer=_worker_init,
        initargs=(metrics, masks_dir, work_height, align),
    )
    try:
        running = {pool.submit(_score_in_worker, item[0], item[1]): item for item in todo}
        for future in as_completed(running):
            yield running[future], *future.result()
    except BrokenProcessPool as exc:
        raise WorkerError(
            f"a scoring worker died ({exc}); finished samples are kept: re-run to resume, "
            f"with fewer --workers if memory is short"
        ) from exc
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_scoring(
    bench: Bench,
    adapter: ModelAdapter,
    outputs: Path,
    run_dir: Path,
    metrics: list[Metric],
    work_height: int = 288,
    shard: tuple[int, int] = (0, 1),
    workers: int = 1,
    align: str = "crop",
) -> dict[str, int]:
    """Score every sample of the shard that has no up-to-date record, on ``workers`` processes;
    returns counts by status. Records are appended here, one at a time, as samples finish.
    ``align``: how an edit of another aspect is registered (:func:`sparkle_bench.pair.match_geometry`)."""
    records_path = run_dir / (SAMPLES_FILE if shard == (0, 1) else f"samples.shard{shard[0]}of{shard[1]}.jsonl")
    done = latest_records(run_dir / SAMPLES_FILE) | latest_records(records_path)
    failures = _inference_failures(run_dir)
    # ``flags``: records written before protocol flags existed are scored again, never reused as complete
    setting = f"{','.join(m.name for m in metrics)}|h{work_height}|masks={bench.masks_dir}|align={align}|flags"
    counts = {"ok": 0, "failed": 0, "missing": 0, "reused": 0}
    samples = shard_samples(bench.samples, shard)
    with _progress() as progress:
        task = progress.add_task("scoring", total=len(samples))

        def write(sample: Sample, edited: Path | None, fingerprint: str, result: dict, seconds: float) -> None:
            if result["status"] != "ok":
                problem(result["status"], f"{sample.theme}/{sample.id}", result["reason"])
            for flag, why in result.get("flags", {}).items():
                problem(flag, f"{sample.theme}/{sample.id}", f"scored but flagged: {why}")
            counts[result["status"]] += 1
            append_jsonl(
                records_path,
                {
                    "id": sample.id,
                    "theme": sample.theme,
                    "subtheme": sample.subtheme,
                    "scene": sample.scene,
                    "edited": str(edited) if edited else None,
                    "fingerprint": fingerprint,
                    "seconds": round(seconds, 3),
                    **result,
                },
            )
            progress.advance(task)

        todo = []
        for sample in samples:
            edited = adapter.locate(sample, outputs)
            fingerprint = f"{file_digest(edited) if edited else 'missing'}|{setting}"
            previous = done.get(sample.id)
            if previous is not None and previous.get("fingerprint") == fingerprint:
                counts["reused"] += 1
                progress.advance(task)
            elif edited is None:
                cause = (
                    f"inference failed: {failures[sample.id]}"
                    if sample.id in failures
                    else f"no edited video ({sample.output_relpath})"
                )
                write(
                    sample,
                    None,
                    fingerprint,
                    {"status": "missing", "reason": cause, "metrics": {}, "unavailable": {}},
                    0.0,
                )
            else:
                todo.append((sample, edited, fingerprint))
        for (sample, edited, fingerprint), result, seconds in _scored(
            todo, metrics, bench.masks_dir, work_height, workers, align
        ):
            write(sample, edited, fingerprint, result, seconds)
    return counts
