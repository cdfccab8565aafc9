"""Kiwi's condition encoder: Qwen2.5-VL reads the instruction and the source frames, learnable
queries appended to the prompt collect what the DiT needs, and a connector MLP projects their last
hidden states to the DiT width. The result is the DiT's cross-attention context.

The prompt wording, the query placeholder token and the choice of positions are part of what the
released weights were trained with, so they are reproduced exactly (``qwen_inputs`` does the same
for the pixels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .qwen_inputs import resized_image, video_frames

SYSTEM_PROMPT = (
    "You will be given an image and instruction. Please describe the content of the image in detail "
    "based on instruction in your own words."
)
REFERENCE_HINT = " Use the reference input from last frame."
QUERY_TOKEN = "<|object_ref_start|>"


@dataclass(frozen=True)
class EncoderConfig:
    num_image_queries: int = 256
    num_video_queries: int = 512
    num_ref_queries: int = 768
    max_object_token: int = 768  # the reference image's token budget
    max_pixels_per_frame: int = 262144


def _connector(hidden: int, dim: int) -> nn.Sequential:
    mlp = nn.Sequential(nn.Linear(hidden, dim), nn.GELU(approximate="tanh"), nn.Linear(dim, dim))
    nn.init.zeros_(mlp[2].weight)
    nn.init.zeros_(mlp[2].bias)
    return mlp


class ConditionEncoder(nn.Module):
    """``qwen`` is a ``Qwen2_5_VLForConditionalGeneration``; ``processor`` its processor (None: an
    encoder built for its shapes only, e.g. on the meta device, which cannot read prompts)."""

    def __init__(self, qwen, processor, dit_dim: int, config: EncoderConfig = EncoderConfig()):
        super().__init__()
        self.qwen, self.processor, self.config = qwen, processor, config
        hidden = qwen.config.text_config.hidden_size
        self.image_queries = nn.Parameter(torch.randn(config.num_image_queries, hidden) * 0.02)
        self.video_queries = nn.Parameter(torch.randn(config.num_video_queries, hidden) * 0.02)
        self.ref_queries = nn.Parameter(torch.randn(config.num_ref_queries, hidden) * 0.02)
        self.connector = _connector(hidden, dit_dim)
        self.ref_connector = _connector(hidden, dit_dim)
        self.query_id = processor.tokenizer.convert_tokens_to_ids(QUERY_TOKEN) if processor is not None else None

    def queries(self, mode: str) -> torch.Tensor:
        return {"image": self.image_queries, "video": self.video_queries, "reference": self.ref_queries}[mode]

    def _messages(self, instruction: str, mode: str, queries: int) -> list[dict]:
        visual = [{"type": "image"}] if mode == "image" else [{"type": "video"}]
        text = [{"type": "text", "text": instruction + (REFERENCE_HINT if mode == "reference" else "")}]
        reference = [{"type": "image"}] if mode == "reference" else []
        user = visual + text + reference + [{"type": "text", "text": QUERY_TOKEN * queries}]
        return [
            {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
            {"role": "user", "content": user},
        ]

    def processed(self, instruction: str, frames: np.ndarray, reference: np.ndarray | None = None) -> tuple[dict, str]:
        """The processor's tensors for one request, and its mode (image / video / reference)."""
        mode = "reference" if reference is not None else "video" if len(frames) > 1 else "image"
        text = self.processor.apply_chat_template(
            self._messages(instruction, mode, len(self.queries(mode))), tokenize=False, add_generation_prompt=False
        )
        images, videos = [], []
        if mode == "image":
            images.append(resized_image(frames[0]))
        else:
            videos.append(video_frames(frames, self.config.max_pixels_per_frame))
        if mode == "reference":
            images.append(resized_image(reference, max_pixels=28 * 28 * self.config.max_object_token))
        inputs = dict(
            self.processor(text=[text], images=images or None, videos=videos or None, padding=True, return_tensors="pt")
        )
        if videos:  # the released weights saw video time positions at the processor's old default of 2 fps
            inputs["second_per_grid_ts"] = torch.full(
                (len(videos),), self.processor.video_processor.temporal_patch_size / 2.0
            )
        return inputs, mode

    def forward(self, instruction: str, frames: np.ndarray, reference: np.ndarray | None = None) -> torch.Tensor:
        """(1, tokens, dit_dim) context from an instruction and (T, H, W, 3) uint8 source frames."""
        inputs, mode = self.processed(instruction, frames, reference)
        queries = self.queries(mode)
        device, dtype = queries.device, self.qwen.dtype
        inputs = {
            k: (v.to(device, dtype) if v.is_floating_point() else v.to(device)) if torch.is_tensor(v) else v
            for k, v in inputs.items()
        }
        ids = inputs["input_ids"]
        slots = ids == self.query_id
        if int(slots.sum()) != len(queries):
            raise ValueError(f"prompt holds {int(slots.sum())} query slots for {len(queries)} queries")
        embeds = self.qwen.get_input_embeddings()(ids)
        embeds = embeds.masked_scatter(slots[..., None], queries.to(embeds.dtype)[None])
        hidden = self.qwen.model(inputs_embeds=embeds, **inputs).last_hidden_state
        context = self.connector(hidden[:, -len(queries) :].to(self.connector[0].weight.dtype))
        if mode == "reference":
            tokenizer = self.processor.tokenizer
            row = ids[0]
            start = int((row == tokenizer.convert_tokens_to_ids("<|vision_start|>")).nonzero()[-1])
            end = start + int((row[start:] == tokenizer.convert_tokens_to_ids("<|vision_end|>")).nonzero()[0])
            ref = self.ref_connector(hidden[:, start + 1 : end].to(self.ref_connector[0].weight.dtype))
            context = torch.cat([ref, context], dim=1)
        return context
