"""The VLM the stages ask about images, on the judge's backends: an OpenAI-compatible endpoint (retries,
backoff, keys from the environment) or a local transformers Qwen-VL (greedy, deterministic).

Images are resized to at most ``max_pixels`` (sides multiples of 28) before they are sent, so a
model answering in pixels (Qwen2.5-VL) answers in pixels of a known size.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import cv2
import numpy as np

from ..judge.backend import RequestControl
from ..judge.local_vl import LocalQwenVL, frame_size
from ..judge.openai_compat import OpenAICompatible


@dataclass(frozen=True)
class ImageQuery:
    prompt: str
    images: tuple[np.ndarray, ...]


def fit(image: np.ndarray, max_pixels: int) -> np.ndarray:
    width, height = frame_size(image.shape[1], image.shape[0], max_pixels)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class EndpointVLM(OpenAICompatible):
    """Images go as JPEG data URLs, then the prompt."""

    def messages(self, query: ImageQuery) -> list[dict]:
        content = []
        for image in query.images:
            ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 92])
            content.append(
                {
                    "type": "image_url",
                    "image_url": {"url": f"data:image/jpeg;base64,{base64.b64encode(jpeg.tobytes()).decode()}"},
                }
            )
        content.append({"type": "text", "text": query.prompt})
        return [{"role": "user", "content": content}]

    def answer(self, query: ImageQuery) -> str:
        return self.ask(query, RequestControl())


class LocalVLM(LocalQwenVL):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._load()  # when the stage starts: a missing model stops the run instead of failing each sample

    def answer(self, query: ImageQuery) -> str:
        import torch

        content = [{"type": "image"} for _ in query.images] + [{"type": "text", "text": query.prompt}]
        text = self._processor.apply_chat_template(
            [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
        )
        inputs = self._processor(text=[text], images=list(query.images), return_tensors="pt").to(self._model.device)
        with torch.inference_mode():
            out = self._model.generate(**inputs, do_sample=False, max_new_tokens=self.max_new_tokens)
        return self._processor.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)[0]


class VLM:
    """``ask(prompt, images)`` -> answer text; ``boxes`` says how the model writes coordinates."""

    def __init__(self, spec: dict, device: str):
        self.boxes, self.max_pixels = spec["boxes"], int(spec["max_pixels"])
        if spec["backend"] == "openai":
            self.backend = EndpointVLM(
                spec["model"],
                spec["base_url"] or None,
                api_key_env=spec["api_key_env"] or None,
                max_tokens=spec["max_new_tokens"],
                retries=int(spec["retries"]),
            )
        elif spec["backend"] == "local":
            self.backend = LocalVLM(
                spec["model"], max_pixels=self.max_pixels, max_new_tokens=spec["max_new_tokens"], device=device
            )
        else:
            raise ValueError(f"[models] VLM backend {spec['backend']!r}: use 'local' or 'openai'")

    def sent(self, image: np.ndarray) -> np.ndarray:
        """The image as the model will see it (its size is what absolute boxes refer to)."""
        return fit(image, self.max_pixels)

    def coordinates(self, prompts: dict, image: np.ndarray) -> tuple[str, tuple[int, int]]:
        """How to ask for boxes (the prompts' sentence for this model's format), and the (W, H) of
        the image as sent, which absolute boxes refer to."""
        sent = self.sent(image)
        size = (sent.shape[1], sent.shape[0])
        if self.boxes == "absolute":
            return prompts["absolute_coordinates"].format(width=size[0], height=size[1]), size
        return prompts["relative_coordinates"], size

    def ask(self, prompt: str, images: list[np.ndarray]) -> str:
        return self.backend.answer(ImageQuery(prompt, tuple(self.sent(i) for i in images)))
