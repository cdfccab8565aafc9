"""Judging a run's edited videos: one record per sample in ``judge.jsonl``, resumable and exact.

Per sample: the conversation is looked up request by request in the response cache (an answer
once received is never requested again); an unreadable answer is re-asked a bounded number of
times with the reason, then recorded as a failure with every raw answer kept. Transport failures
(retries exhausted) are recorded but not cached, so a re-run tries them again.
"""

from __future__ import annotations

import concurrent.futures as futures
import time
from dataclasses import dataclass
from pathlib import Path

from ..bench import Bench, Sample
from ..log import console, problem
from ..models import ModelAdapter
from ..records import append_jsonl, file_digest, read_jsonl
from ..runner import shard_samples
from ..video import VideoError, probe
from .backend import Conversation, JudgeBackend, JudgeFatal, JudgeStopped, RequestControl, TransportError
from .cache import ResponseCache, request_key
from .parse import AnswerError, parse_answer, score_columns
from .rubrics import Rubric

JUDGE_FILE = "judge.jsonl"


@dataclass
class JudgeSettings:
    backend: JudgeBackend
    rubric: Rubric
    cache: ResponseCache
    reasks: int = 2
    concurrency: int = 4


@dataclass
class JudgeCounts:
    judged: int = 0
    failed: int = 0
    missing: int = 0
    reused: int = 0
    not_reached: int = 0  # stopped before these were judged (Ctrl-C, --max-requests)
    requests: int = 0
    cached_answers: int = 0
    stopped: str = ""

    def tally(self, status: str) -> None:
        name = "judged" if status == "ok" else status  # failed, missing
        setattr(self, name, getattr(self, name) + 1)


def _timestamp() -> str:
    """UTC with nanoseconds, so records written within one second still order."""
    now = time.time_ns()
    return f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(now // 10**9))}.{now % 10**9:09d}Z"


def redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def _conversation(sample: Sample, edited: Path, rubric: Rubric) -> Conversation:
    return Conversation(rubric.prompt(sample.prompt), sample.source, edited)


def _key(conversation: Conversation, settings: JudgeSettings, digests: tuple[str, str]) -> str:
    return request_key(
        {
            "judge_model": settings.backend.model,
            "backend": settings.backend.name,
            "view": settings.backend.view,
            "rubric_version": settings.rubric.version,
            "prompt": conversation.prompt,
            "videos": digests,
            "turns": list(conversation.turns),
        }
    )


def judge_sample(
    sample: Sample, edited: Path, digests: tuple[str, str], settings: JudgeSettings, control: RequestControl
) -> dict:
    """Ask (or recall) the judge until the answer parses or the re-asks are used up.
    ``digests``: content hashes of the source and edited videos, part of every request's key."""
    rubric, backend, cache = settings.rubric, settings.backend, settings.cache
    conversation = _conversation(sample, edited, rubric)
    sample_key = key = _key(conversation, settings, digests)
    answers: list[str] = []
    reasons: list[str] = []
    sent = 0
    with cache.claim(sample_key):
        for _ in range(settings.reasks + 1):
            entry = cache.get(key)
            if entry is None:
                answer = redact(backend.ask(conversation, control), backend.secrets())  # an echoed key is never stored
                sent += 1
                cache.put(
                    key,
                    {
                        "answer": answer,
                        "judge_model": backend.model,
                        "rubric_version": rubric.version,
                        "sample": sample.id,
                        "created": _timestamp(),
                    },
                )
            else:
                answer = entry["answer"]
            answers.append(answer)
            try:
                scores = parse_answer(answer, rubric)
            except AnswerError as exc:
                reasons.append(str(exc))
                conversation = conversation.followed_by(
                    answer, f"Your reply could not be read: {exc}.\n{rubric.answer_format()}"
                )
                key = _key(conversation, settings, digests)
                continue
            return {
                "status": "ok",
                "judge": score_columns(scores, rubric),
                "scores_raw": scores,
                "answers": answers,
                "reasons": reasons,
                "key": sample_key,
                "requests": sent,
            }
    return {
        "status": "failed",
        "reason": f"unreadable answer after {len(answers)} tries: {reasons[-1]}",
        "judge": {},
        "answers": answers,
        "reasons": reasons,
        "key": sample_key,
        "requests": sent,
        "final": True,
    }


def _done(previous: dict | None, edited_digest: str | None) -> bool:
    """A finished record for this very edited file (ok, unreadable-answer failure, or missing)."""
    if previous is None:
        return False
    if edited_digest is None:
        return previous.get("status") == "missing"
    return previous.get("edited_digest") == edited_digest and (
        previous["status"] == "ok" or previous.get("final", False)
    )


def judge_run(
    bench: Bench,
    adapter: ModelAdapter,
    outputs: Path,
    run_dir: Path,
    settings: JudgeSettings,
    control: RequestControl,
    shard: tuple[int, int] = (0, 1),
) -> JudgeCounts:
    """Judge every sample of the shard that has no finished record; one line per problem."""
    path = run_dir / (JUDGE_FILE if shard == (0, 1) else f"judge.shard{shard[0]}of{shard[1]}.jsonl")
    records = {r["id"]: r for r in read_jsonl(run_dir / JUDGE_FILE)} | {r["id"]: r for r in read_jsonl(path)}
    records = {
        k: r
        for k, r in records.items()
        if r.get("rubric_version") == settings.rubric.version and r.get("judge_model") == settings.backend.model
    }
    secrets = settings.backend.secrets()
    counts = JudgeCounts()
    base = {
        "judge_model": settings.backend.model,
        "backend": settings.backend.name,
        "rubric": settings.rubric.name,
        "rubric_version": settings.rubric.version,
    }

    def write(sample: Sample, edited: Path | None, digest: str | None, result: dict) -> None:
        result = {
            k: (
                [redact(a, secrets) for a in v]
                if k in ("answers", "reasons")
                else redact(v, secrets)
                if isinstance(v, str)
                else v
            )
            for k, v in result.items()
        }
        if result["status"] != "ok":
            problem(f"judge {result['status']}", f"{sample.theme}/{sample.id}", result["reason"])
        append_jsonl(
            path,
            {
                "id": sample.id,
                "theme": sample.theme,
                "subtheme": sample.subtheme,
                "scene": sample.scene,
                "judged_at": _timestamp(),
                "edited": str(edited) if edited else None,
                "edited_digest": digest,
                **base,
                **result,
            },
        )
        counts.tally(result["status"])

    todo: list[tuple[Sample, Path, tuple[str, str]]] = []
    for sample in shard_samples(bench.samples, shard):
        edited = adapter.locate(sample, outputs)
        digest = file_digest(edited) if edited else None  # hashed once: resume check, cache key, record
        if _done(records.get(sample.id), digest):
            counts.reused += 1
        elif edited is None:
            write(
                sample,
                None,
                None,
                {"status": "missing", "reason": f"no edited video ({sample.output_relpath})", "judge": {}},
            )
        else:
            try:
                probe(edited)
            except VideoError as exc:
                write(
                    sample,
                    edited,
                    digest,
                    {
                        "status": "failed",
                        "reason": f"edited video unusable, not sent: {exc}",
                        "judge": {},
                        "final": True,
                    },
                )
                continue
            todo.append((sample, edited, (file_digest(sample.source), digest)))

    pool = futures.ThreadPoolExecutor(max(1, settings.concurrency), thread_name_prefix="judge")
    running = {pool.submit(judge_sample, s, e, d, settings, control): (s, e, d[1]) for s, e, d in todo}
    try:
        while running:
            finished, _ = futures.wait(running, timeout=0.2, return_when=futures.FIRST_COMPLETED)
            for future in finished:
                sample, edited, digest = running.pop(future)
                try:
                    result = future.result()
                except JudgeStopped as exc:
                    counts.stopped = str(exc)
                    counts.not_reached += 1
                    continue
                except JudgeFatal:
                    raise
                except TransportError as exc:
                    result = {"status": "failed", "reason": f"request failed: {exc}", "judge": {}}
                except VideoError as exc:
                    result = {"status": "failed", "reason": f"edited video unusable: {exc}", "judge": {}, "final": True}
                except Exception as exc:  # one sample's crash must not end the run; not final, so retried next time
                    result = {"status": "failed", "reason": f"{type(exc).__name__}: {str(exc)[:200]}", "judge": {}}
                counts.cached_answers += len(result.get("answers", ())) - result.get("requests", 0)
                write(sample, edited, digest, result)
            if control.stop.is_set():
                for future in [f for f in running if f.cancel()]:
                    running.pop(future)
                    counts.not_reached += 1
    except JudgeFatal:
        control.stop.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    counts.requests = control.sent
    if counts.not_reached and not counts.stopped:
        counts.stopped = "stop requested"
    return counts


@dataclass
class DryRunEstimate:
    requests: int = 0
    cached: int = 0
    missing: int = 0
    video_bytes: int = 0
    tokens: int = 0


def estimate_run(
    bench: Bench, adapter: ModelAdapter, outputs: Path, settings: JudgeSettings, shard: tuple[int, int] = (0, 1)
) -> DryRunEstimate:
    """What a run would send (first asks only; re-asks are rare and bounded by --reasks)."""
    estimate = DryRunEstimate()
    for sample in shard_samples(bench.samples, shard):
        edited = adapter.locate(sample, outputs)
        if edited is None:
            estimate.missing += 1
            continue
        conversation = _conversation(sample, edited, settings.rubric)
        if (
            settings.cache.get(_key(conversation, settings, (file_digest(sample.source), file_digest(edited))))
            is not None
        ):
            estimate.cached += 1
            continue
        estimate.requests += 1
        estimate.video_bytes += settings.backend.payload_bytes(conversation)
        for path in (sample.source, edited):
            try:
                info = probe(path)
            except VideoError:
                continue
            estimate.tokens += settings.backend.estimate_tokens(info.num_frames / max(info.fps, 1e-6))
        estimate.tokens += len(conversation.prompt) // 4
    return estimate


def report(counts: JudgeCounts) -> None:
    console.print(
        f"judge: {counts.judged} judged, {counts.failed} failed, {counts.missing} missing, "
        f"{counts.reused} already judged; "
        f"{counts.requests} requests sent, {counts.cached_answers} answers from the cache"
    )
    if counts.stopped:
        console.print(
            f"stopped ({counts.stopped}): {counts.not_reached} samples not judged yet; re-run the same command to go on"
        )
