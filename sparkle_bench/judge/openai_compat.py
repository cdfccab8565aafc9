"""A judge behind any OpenAI-compatible chat endpoint: Gemini (Google's or Azure's OpenAI-compatible
API), vLLM or SGLang serving Qwen-VL, ...

Videos go as base64 ``video_url`` data URLs (what vLLM and SGLang take) or, with
``video_as="frames"``, as evenly spaced JPEG frames (any endpoint that reads images). Requests
that fail for transient reasons (timeouts, connection errors, 429, 5xx, an unreadable body) are
retried with exponential backoff and jitter; ``Retry-After`` is honoured and, on a 429, holds
back every worker of the run.
"""

from __future__ import annotations

import base64
import email.utils
import os
import random
import time
from pathlib import Path

import cv2
import httpx
import numpy as np

from ..video import probe, read_frames
from .backend import Conversation, JudgeBackend, JudgeFatal, RequestControl, TransportError

GOOGLE_OPENAI_URL = "https://generativelanguage.googleapis.com/v1beta/openai/"
KEY_VARIABLES = ("SPARKLE_JUDGE_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")
GEMINI_TOKENS_PER_SECOND = 263  # Gemini's documented rate for video with audio; an upper bound without


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAICompatible(JudgeBackend):
    name = "openai"

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        api_key_env: str | None = None,
        temperature: float = 0.0,
        seed: int | None = 42,
        max_tokens: int | None = None,
        timeout: float = 300.0,
        retries: int = 5,
        backoff: float = 2.0,
        max_backoff: float = 120.0,
        video_as: str = "video_url",
        frames: int = 16,
    ):
        if video_as not in ("video_url", "frames"):
            raise ValueError(f"video_as must be 'video_url' or 'frames', not {video_as!r}")
        self.model = model
        base_url = (
            base_url
            or os.environ.get("SPARKLE_JUDGE_BASE_URL")
            or os.environ.get("OPENAI_BASE_URL")
            or GOOGLE_OPENAI_URL
        )
        self.url = base_url.rstrip("/") + "/chat/completions"
        names = (api_key_env,) if api_key_env else KEY_VARIABLES
        self._key = api_key or next((os.environ[n] for n in names if os.environ.get(n)), None)
        self.options = {
            "temperature": temperature,
            **({"seed": seed} if seed is not None else {}),
            **({"max_tokens": max_tokens} if max_tokens else {}),
        }
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.video_as, self.frames = video_as, frames
        self.view = f"{video_as}{frames if video_as == 'frames' else ''}|{sorted(self.options.items())}"
        self._client = httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 30.0)))

    def secrets(self) -> tuple[str, ...]:
        return (self._key,) if self._key else ()

    def _video_parts(self, path: Path) -> list[dict]:
        if self.video_as == "video_url":
            data = base64.b64encode(Path(path).read_bytes()).decode()
            return [{"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}}]
        count = probe(path).num_frames
        parts = []
        for frame in read_frames(path, indices=np.linspace(0, count - 1, min(self.frames, count)).round().astype(int)):
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
            parts.append(
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/jpeg;base64,{base64.b64encode(jpeg.tobytes()).decode()}"},
                }
            )
        return parts

    def messages(self, conversation: Conversation) -> list[dict]:
        content = [{"type": "text", "text": conversation.prompt}, {"type": "text", "text": "Source video:"}]
        content += self._video_parts(conversation.source)
        content += [{"type": "text", "text": "Edited video:"}]
        content += self._video_parts(conversation.edited)
        messages = [{"role": "user", "content": content}]
        for i, text in enumerate(conversation.turns):
            messages.append({"role": "assistant" if i % 2 == 0 else "user", "content": text})
        return messages

    def ask(self, conversation: Conversation, control: RequestControl) -> str:
        payload = {"model": self.model, "messages": self.messages(conversation), **self.options}
        headers = {"Authorization": f"Bearer {self._key}"} if self._key else {}
        last, delay = "no attempt", 0.0
        for attempt in range(self.retries + 1):
            control.wait(delay)
            control.take()
            delay = min(self.max_backoff, self.backoff * 2**attempt) * random.uniform(0.5, 1.5)
            try:
                response = self._client.post(self.url, json=payload, headers=headers)
            except httpx.TimeoutException:
                last = "timed out"
                continue
            except httpx.TransportError as exc:
                last = f"connection failed ({type(exc).__name__})"
                continue
            status = response.status_code
            if status == 200:
                try:
                    return _answer_text(response.json())
                except (ValueError, KeyError, IndexError, TypeError):
                    last = "HTTP 200 with a body that is not a chat completion"
                    continue
            if status in (401, 403):
                control.stop.set()  # no other worker may send another request with this key
                raise JudgeFatal(
                    f"HTTP {status} from {self.url}: the API key was refused (set it in ${' or $'.join(KEY_VARIABLES)})"
                )
            if status == 429 or status >= 500:
                waited = retry_after_seconds(response.headers.get("retry-after"))
                if waited is not None:
                    delay = waited + random.uniform(0, 0.1 * waited + 0.05)
                if status == 429:
                    control.pause_all(delay)
                last = f"HTTP {status}" + (
                    f" (Retry-After {response.headers['retry-after']})" if waited is not None else ""
                )
                continue
            raise TransportError(f"HTTP {status}: {_short(response.text)}")
        raise TransportError(f"gave up after {self.retries + 1} attempts, last: {last}")

    def estimate_tokens(self, seconds: float) -> int:
        if self.video_as == "frames":
            return self.frames * 258  # one image at Gemini's / most VLMs' default budget
        return int(seconds * GEMINI_TOKENS_PER_SECOND)

    def payload_bytes(self, conversation: Conversation) -> int:
        if self.video_as == "frames":
            return 2 * self.frames * 60_000
        return sum((Path(p).stat().st_size + 2) // 3 * 4 for p in (conversation.source, conversation.edited))


def _answer_text(body: dict) -> str:
    content = body["choices"][0]["message"]["content"]
    if isinstance(content, list):  # some servers return content parts
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    if content is None:
        raise ValueError("no content")
    return str(content)


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line[:200] + ("..." if len(line) > 200 else "")
