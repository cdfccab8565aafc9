"""Boxes for the foreground subjects: a zero-shot grounding detector from transformers
(OWLv2 or Grounding DINO; a hub id from the local cache, or a folder)."""

from __future__ import annotations

import numpy as np

DEFAULT_DETECTOR = "google/owlv2-base-patch16-ensemble"
DEFAULT_QUERIES = ("person", "animal", "vehicle")


class GroundingDetector:
    def __init__(
        self,
        model: str = DEFAULT_DETECTOR,
        queries: tuple[str, ...] = DEFAULT_QUERIES,
        threshold: float = 0.3,
        max_boxes: int = 4,
        device: str | None = None,
    ):
        import torch
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        self.name, self.queries, self.threshold, self.max_boxes = model, tuple(queries), threshold, max_boxes
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.processor = AutoProcessor.from_pretrained(model)
        self.model = AutoModelForZeroShotObjectDetection.from_pretrained(model).to(self.device).eval()
        self._grounding_dino = "groundingdino" in type(self.model).__name__.lower()

    def boxes(self, frame: np.ndarray) -> np.ndarray:
        """(N, 4) float32 xyxy boxes in frame pixels, best first, at most ``max_boxes``."""
        import torch

        height, width = frame.shape[:2]
        if self._grounding_dino:
            text = [". ".join(self.queries) + "."]
            sizes = [(height, width)]
        else:  # OWLv2 pads to a square, so its boxes are relative to the padded side
            text = [list(self.queries)]
            sizes = [(max(height, width),) * 2]
        inputs = self.processor(text=text, images=[frame], return_tensors="pt", padding=True).to(self.device)
        with torch.inference_mode():
            outputs = self.model(**inputs)
        extra = {"input_ids": inputs["input_ids"]} if self._grounding_dino else {}
        found = self.processor.post_process_grounded_object_detection(
            outputs, threshold=self.threshold, target_sizes=sizes, **extra
        )[0]
        boxes = found["boxes"].float().cpu().numpy()[np.argsort(-found["scores"].float().cpu().numpy(), kind="stable")]
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, width - 1)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, height - 1)
        inside = (boxes[:, 2] - boxes[:, 0] >= 2) & (boxes[:, 3] - boxes[:, 1] >= 2)  # drop boxes of the padding
        return boxes[inside][: self.max_boxes].astype(np.float32)
