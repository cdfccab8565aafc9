"""The judge's options (command-line flags, and :class:`JudgeOptions` for the library) and the objects they
build (backend, rubric, cache).

Building the parser imports only the rubric module, so ``sparkle-bench --help`` and ``ls`` stay light.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..paths import home
from .rubrics import Rubric, builtin_names, load_rubric, rubric_for_bench, with_text_from

if TYPE_CHECKING:
    from .backend import JudgeBackend
    from .run import JudgeSettings

DEFAULT_MODELS = {"openai": "gemini-2.5-pro", "local": "Qwen/Qwen2.5-VL-7B-Instruct"}


def add_judge_args(parser: argparse.ArgumentParser, backend: str | None = "openai") -> None:
    """Judge options; with ``backend=None`` (``eval``) the judge runs only when ``--judge`` is given."""
    g = parser.add_argument_group("judge")
    g.add_argument(
        "--judge",
        choices=sorted(DEFAULT_MODELS),
        default=backend,
        help="openai: any OpenAI-compatible endpoint (Gemini, vLLM, SGLang); local: transformers Qwen-VL"
        + ("" if backend else " (default: no judge, objective metrics only)"),
    )
    g.add_argument(
        "--judge-model",
        default=os.environ.get("SPARKLE_JUDGE_MODEL"),
        help="model name at the endpoint, or a local hub id / folder "
        "($SPARKLE_JUDGE_MODEL; default gemini-2.5-pro / Qwen2.5-VL-7B-Instruct)",
    )
    g.add_argument(
        "--base-url",
        help="OpenAI-compatible base URL, e.g. http://localhost:8000/v1 "
        "($SPARKLE_JUDGE_BASE_URL, $OPENAI_BASE_URL; default Google's Gemini endpoint)",
    )
    g.add_argument(
        "--api-key-env",
        help="environment variable holding the API key "
        "(default: SPARKLE_JUDGE_API_KEY, OPENAI_API_KEY, GEMINI_API_KEY)",
    )
    g.add_argument(
        "--api-key", help="the key itself (never written anywhere; prefer the environment: flags show in `ps`)"
    )
    g.add_argument(
        "--rubric", choices=builtin_names() + ["sparkle", "openve"], help="built-in rubric (default: the bench's)"
    )
    g.add_argument(
        "--rubric-from",
        type=Path,
        help="prompt text from your copy of an official eval script (.py, parsed, not run) or a text file",
    )
    g.add_argument("--temperature", type=float, default=0.0)
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--max-tokens", type=int, help="answer length limit sent to the endpoint (default: none)")
    g.add_argument(
        "--video-as",
        choices=["video_url", "frames"],
        default="video_url",
        help="send mp4 files, or sampled JPEG frames",
    )
    g.add_argument("--frames", type=int, default=16, help="frames per video for --video-as frames and the local judge")
    g.add_argument("--max-pixels", type=int, default=360 * 640, help="pixel budget per frame for the local judge")
    g.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    g.add_argument("--retries", type=int, default=5, help="retries of a failed request (timeouts, 429, 5xx)")
    g.add_argument("--backoff", type=float, default=2.0, help="first retry delay in seconds (doubles, with jitter)")
    g.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for one answer")
    g.add_argument("--reasks", type=int, default=2, help="follow-up asks when an answer cannot be read")
    g.add_argument("--max-requests", type=int, help="stop cleanly after sending this many requests")
    g.add_argument("--dry-run", action="store_true", help="print what would be sent; send nothing")
    g.add_argument(
        "--judge-cache",
        type=Path,
        help="response cache folder, shareable between runs and machines (default: $SPARKLE_BENCH_HOME/judge-cache)",
    )
    g.add_argument(
        "--missing-policy",
        choices=["exclude", "floor"],
        default="exclude",
        help="failed/missing samples: left out of the means (published behaviour) or scored 1",
    )


@dataclass
class JudgeOptions:
    """The judge's settings, one field per ``add_judge_args`` flag (``backend`` is ``--judge``)."""

    backend: str = "openai"
    judge_model: str | None = field(default_factory=lambda: os.environ.get("SPARKLE_JUDGE_MODEL"))
    base_url: str | None = None
    api_key_env: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never written: provenance drops it
    rubric: str | None = None
    rubric_from: Path | None = None
    temperature: float = 0.0
    seed: int = 42
    max_tokens: int | None = None
    video_as: str = "video_url"
    frames: int = 16
    max_pixels: int = 360 * 640
    concurrency: int = 4
    retries: int = 5
    backoff: float = 2.0
    timeout: float = 300.0
    reasks: int = 2
    max_requests: int | None = None
    dry_run: bool = False
    judge_cache: Path | None = None

    def record(self) -> dict:
        """What a run's provenance keeps of these settings: everything but the API key."""
        return {
            ("judge" if k == "backend" else k): (str(v) if isinstance(v, Path) else v)
            for k, v in asdict(self).items()
            if k != "api_key"
        }


def build_rubric(options: JudgeOptions, bench_name: str) -> Rubric:
    rubric = load_rubric(options.rubric) if options.rubric else rubric_for_bench(bench_name)
    return with_text_from(rubric, options.rubric_from) if options.rubric_from else rubric


def build_backend(options: JudgeOptions) -> JudgeBackend:
    model = options.judge_model or DEFAULT_MODELS[options.backend]
    if options.backend == "local":
        from .local_vl import LocalQwenVL

        return LocalQwenVL(model, frames=options.frames, max_pixels=options.max_pixels)
    from .openai_compat import OpenAICompatible

    return OpenAICompatible(
        model,
        options.base_url,
        options.api_key,
        api_key_env=options.api_key_env,
        temperature=options.temperature,
        seed=options.seed,
        max_tokens=options.max_tokens,
        timeout=options.timeout,
        retries=options.retries,
        backoff=options.backoff,
        video_as=options.video_as,
        frames=options.frames,
    )


def build_settings(options: JudgeOptions, bench_name: str) -> JudgeSettings:
    from .cache import ResponseCache
    from .run import JudgeSettings

    return JudgeSettings(
        backend=build_backend(options),
        rubric=build_rubric(options, bench_name),
        cache=ResponseCache(options.judge_cache or home() / "judge-cache"),
        reasks=options.reasks,
        concurrency=options.concurrency,
    )


def judge_stage(bench, adapter, run_dir: Path, shard: tuple[int, int], options: JudgeOptions) -> int:
    """Judge a run's edited videos (or, with ``dry_run``, say what that would send).

    Returns 0, 2 when the judge cannot be used at all, or 130 when stopped by a signal. The first
    Ctrl-C / SIGTERM lets the requests in flight finish and be recorded; a second one aborts.
    """
    import signal

    from ..log import console
    from .backend import JudgeFatal, RequestControl
    from .run import estimate_run, judge_run, report

    settings = build_settings(options, bench.name)
    outputs = run_dir / "outputs"
    if options.dry_run:
        e = estimate_run(bench, adapter, outputs, settings, shard)
        console.print(
            f"dry run, {settings.backend.name} judge {settings.backend.model}, rubric {settings.rubric.version}: "
            f"{e.requests} requests to send ({e.cached} samples already in the cache, "
            f"{e.missing} without an edited video), "
            f"~{e.video_bytes / 1e6:.1f} MB of video, ~{e.tokens:,} input tokens; "
            f"up to {options.reasks} re-asks per unreadable answer"
        )
        return 0
    control = RequestControl(options.max_requests)

    def stop(signum, frame):
        if control.stop.is_set():
            raise KeyboardInterrupt
        console.print("stopping: waiting for the requests in flight (signal again to abort)")
        control.stop.set()

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        counts = judge_run(bench, adapter, outputs, run_dir, settings, control, shard)
    except JudgeFatal as exc:
        console.print(f"[red]error[/]: {exc}", soft_wrap=True)
        return 2
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    report(counts)
    return 130 if counts.stopped and "max-requests" not in counts.stopped else 0
