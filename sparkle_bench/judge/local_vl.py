"""A judge run locally with transformers: Qwen2.5-VL or Qwen3-VL (a hub id from the local cache or
a folder). Each video is sampled to ``frames`` evenly spaced frames resized to at most
``max_pixels``; decoding is greedy, so the answer is deterministic for given weights.
"""

from __future__ import annotations

import math
import threading

import numpy as np

from ..video import probe, read_frames
from .backend import Conversation, JudgeBackend, JudgeFatal, RequestControl

PATCH = 28  # Qwen-VL's spatial unit: patch 14 x merge 2


def frame_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(W, H), multiples of 28, aspect kept, area at most ``max_pixels``."""
    scale = min(1.0, math.sqrt(max_pixels / (width * height)))
    return (max(PATCH, int(width * scale) // PATCH * PATCH), max(PATCH, int(height * scale) // PATCH * PATCH))


def sample_video(path, frames: int, max_pixels: int) -> tuple[np.ndarray, dict]:
    """Evenly spaced frames (an even count: Qwen-VL pairs frames in time), resized to the budget,
    and the metadata that lets the processor time-stamp them (Qwen3-VL writes the seconds)."""
    info = probe(path)
    count = max(2, min(frames, info.num_frames) // 2 * 2)
    indices = np.linspace(0, info.num_frames - 1, count).round().astype(int)
    metadata = {"fps": info.fps, "total_num_frames": info.num_frames, "frames_indices": indices.tolist()}
    return read_frames(path, frame_size(info.width, info.height, max_pixels), indices), metadata


class LocalQwenVL(JudgeBackend):
    name = "local"

    def __init__(
        self,
        model: str = "Qwen/Qwen2.5-VL-7B-Instruct",
        *,
        frames: int = 16,
        max_pixels: int = 360 * 640,
        max_new_tokens: int = 64,
        device: str | None = None,
    ):
        self.model = model
        self.frames, self.max_pixels, self.max_new_tokens = frames, max_pixels, max_new_tokens
        self.view = f"frames{frames}|px{max_pixels}|greedy{max_new_tokens}"
        self._device = device
        self._model = self._processor = None
        # Judge workers are threads: the model loads once, under the lock. Two concurrent
        # from_pretrained calls also race on transformers' process-wide patch of
        # PreTrainedModel.tie_weights and can leave weight tying off for the rest of the process.
        self._loading = threading.Lock()

    def _load(self) -> None:
        with self._loading:
            if self._model is None:
                self._load_now()

    def _load_now(self) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        device = self._device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        try:
            self._processor = AutoProcessor.from_pretrained(self.model)
            self._model = AutoModelForImageTextToText.from_pretrained(self.model, dtype=dtype).to(device).eval()
        except OSError as exc:
            raise JudgeFatal(
                f"cannot load judge model {self.model!r} (local folder or cached hub id): {str(exc).splitlines()[0]}"
            ) from exc

    def ask(self, conversation: Conversation, control: RequestControl) -> str:
        import torch

        self._load()
        control.take()
        content = [
            {"type": "text", "text": conversation.prompt},
            {"type": "text", "text": "Source video:"},
            {"type": "video"},
            {"type": "text", "text": "Edited video:"},
            {"type": "video"},
        ]
        messages = [{"role": "user", "content": content}]
        for i, text in enumerate(conversation.turns):
            messages.append(
                {"role": "assistant" if i % 2 == 0 else "user", "content": [{"type": "text", "text": text}]}
            )
        text = self._processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        videos, metadata = zip(
            *(sample_video(p, self.frames, self.max_pixels) for p in (conversation.source, conversation.edited))
        )
        inputs = self._processor(
            text=[text], videos=list(videos), video_metadata=list(metadata), return_tensors="pt", do_sample_frames=False
        ).to(self._model.device)
        with torch.inference_mode():
            out = self._model.generate(**inputs, do_sample=False, max_new_tokens=self.max_new_tokens)
        return self._processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]

    def estimate_tokens(self, seconds: float) -> int:
        width, height = frame_size(1280, 720, self.max_pixels)
        return self.frames // 2 * (width // PATCH) * (height // PATCH)
