"""What every judge backend offers, and the controls shared by all requests of a run.

A backend turns a conversation (the rubric text, the source and edited videos, and any re-ask
turns) into the judge's answer text. Backends differ only in transport; parsing, the cap,
caching and retries of unreadable answers live outside them.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path


class JudgeStopped(Exception):
    """The run was asked to stop (Ctrl-C, SIGTERM or --max-requests): finish nothing new."""


class JudgeFatal(RuntimeError):
    """A failure no retry can fix for any sample (bad key, unknown model): the run ends."""


class TransportError(RuntimeError):
    """A request that failed after its retries (timeouts, 5xx, rate limits); not cached."""


@dataclass(frozen=True)
class Conversation:
    """The judge's input: the rubric text, then the source and the edited video, then re-ask turns
    as alternating (assistant answer, user follow-up) texts."""

    prompt: str
    source: Path
    edited: Path
    turns: tuple[str, ...] = ()

    def followed_by(self, answer: str, follow_up: str) -> Conversation:
        return Conversation(self.prompt, self.source, self.edited, self.turns + (answer, follow_up))


class RequestControl:
    """Shared by every worker of a run: request budget, stop flag, and a pause after a 429."""

    def __init__(self, max_requests: int | None = None):
        self.max_requests = max_requests
        self.sent = 0
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._resume_at = 0.0

    def take(self) -> None:
        """Count one request about to be sent, or raise :class:`JudgeStopped`."""
        self.wait(max(0.0, self._resume_at - time.monotonic()))
        with self._lock:
            if self.stop.is_set():
                raise JudgeStopped("stop requested")
            if self.max_requests is not None and self.sent >= self.max_requests:
                raise JudgeStopped(f"--max-requests {self.max_requests} reached")
            self.sent += 1

    def pause_all(self, seconds: float) -> None:
        """Hold every worker back (the endpoint said it is rate limiting)."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

    def wait(self, seconds: float) -> None:
        """Sleep, but wake up at once when a stop is requested."""
        if seconds > 0 and self.stop.wait(seconds):
            raise JudgeStopped("stop requested")


class JudgeBackend:
    """Subclasses set ``model`` and ``view`` and implement :meth:`ask`."""

    name = "base"
    model: str = ""
    view: str = ""  # how the videos are shown to the judge; part of every cache key

    def ask(self, conversation: Conversation, control: RequestControl) -> str:
        raise NotImplementedError

    def estimate_tokens(self, seconds: float) -> int:
        """Rough input tokens for one video of this duration (for --dry-run)."""
        raise NotImplementedError

    def payload_bytes(self, conversation: Conversation) -> int:
        """Rough bytes of video sent with one request (for --dry-run)."""
        return 0

    def secrets(self) -> tuple[str, ...]:
        """Strings that must never be written anywhere (API keys)."""
        return ()
