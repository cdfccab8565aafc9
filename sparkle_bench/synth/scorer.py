"""EditScore through the ``editscore`` package: its prompts, answer parsing and score arithmetic.

Images are scored with ``EditScore.evaluate`` (``prompt_following``, ``consistency``,
``perceptual_quality``, ``overall``, ``SC_reasoning``, ``PQ_reasoning``: the fields of Sparkle's
``edited_frame0_score.jsonl``) and video frames with ``batch_evaluate`` (``SC_score``, ``PQ_score``,
``O_score``, reasonings and raw outputs: ``edited_video_score.jsonl``).

Three things the package does not do for us: its transformers backbones move inputs to "cuda"
unconditionally (without CUDA the loaded tool gets a ``prepare_input`` that uses the model's device);
only its vLLM backbones batch (the others get a ``batch_inference`` that loops); and an answer it
cannot parse becomes a random guess (``evaluate``) or the middle of the range (``batch_evaluate``),
which we refuse: such a sample fails with the reason instead of passing or failing by chance.
The package keeps only one pass's reasoning and raw answers, so with ``num_pass`` > 1 we run the
passes one by one (the package's seeds, ``seed + i``) and check every pass before averaging.
"""

from __future__ import annotations

import math
import os
import sys
import types

import numpy as np

GUESS_MARK = "guess_if_cannot_parse"


class ScorerError(RuntimeError):
    """EditScore could not score this sample; the message says why."""


def _editscore():
    """Import the package, undoing the relative ``sys.path`` entry it adds at import."""
    added = "editscore" not in sys.path
    import editscore
    from editscore.json_parser import parse_vlm_output_to_dict

    if added and "editscore" in sys.path:
        sys.path.remove("editscore")
    return editscore, parse_vlm_output_to_dict


def _prepare_on_model_device(tool, images, text_prompt: str = ""):
    """The package's input preparation, on the device the model is on (not always "cuda")."""
    images = images if isinstance(images, list) else [images]
    messages = [
        {
            "role": "user",
            "content": [{"type": "image", "image": image} for image in images]
            + [{"type": "text", "text": text_prompt}],
        }
    ]
    if type(tool).__module__.endswith("qwen25vl"):
        from editscore.mllm_tools.qwen25vl import apply_chat_template
        from qwen_vl_utils import process_vision_info

        image_inputs, video_inputs = process_vision_info(messages)
        inputs = tool.processor(
            text=[apply_chat_template(text_prompt, num_images=len(images))],
            images=image_inputs,
            videos=video_inputs,
            padding=True,
            return_tensors="pt",
        )
    else:
        inputs = tool.processor.apply_chat_template(
            messages, tokenize=True, add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
    return inputs.to(tool.model.device)


def _batch_by_loop(tool, prompts, seed=None):
    return [tool.inference(prompt, seed=seed) for prompt in prompts]


def _plain(value):
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if not math.isfinite(value):
            raise ScorerError(f"EditScore returned a non-finite score ({value})")
        return value
    return value


class EditScorer:
    def __init__(self, spec: dict, device: str, seed: int = 42):
        import torch

        editscore, self._parse = _editscore()
        backbone = spec["backbone"]
        url = spec.get("base_url", "").rstrip("/")
        key = os.environ.get(spec["api_key_env"]) if spec.get("api_key_env") else None
        self.scorer = editscore.EditScore(
            backbone=backbone,
            openai_url=f"{url}/chat/completions" if url else "https://api.openai.com/v1/chat/completions",
            key=key,
            model_name_or_path=spec["model"],
            score_range=int(spec["score_range"]),
            temperature=float(spec["temperature"]),
            num_pass=1,
            seed=seed,
            lora_path=spec.get("lora") or None,
        )
        self.num_pass, self.seed, self.score_range = int(spec["num_pass"]), seed, int(spec["score_range"])
        tool = self.scorer.model
        if backbone in ("qwen25vl", "qwen3vl") and not (device.startswith("cuda") and torch.cuda.is_available()):
            tool.prepare_input = types.MethodType(_prepare_on_model_device, tool)
        if not hasattr(tool, "batch_inference"):
            tool.batch_inference = types.MethodType(_batch_by_loop, tool)

    def _passes(self, call):
        """``call(pass index)`` once per pass under the package's per-pass seed; the results in pass order."""
        results = []
        for index in range(self.num_pass):
            self.scorer.seed = self.seed + index
            results.append(call(index))
        return results

    def image(self, source: np.ndarray, edited: np.ndarray, prompt: str) -> dict:
        """EditScore of one edit (source image, edited image, instruction): the mean of every pass,
        the last pass's reasoning (as the package reports it)."""
        from PIL import Image

        images = [Image.fromarray(source), Image.fromarray(edited)]

        def one(index: int) -> dict:
            result = self.scorer.evaluate(images, prompt)
            if any(str(result.get(k, "")).startswith(GUESS_MARK) for k in ("SC_reasoning", "PQ_reasoning")):
                raise ScorerError(
                    f"EditScore could not parse the scorer's answers in pass {index + 1} of {self.num_pass} "
                    f"(the package would have guessed a score)"
                )
            return result

        passes = self._passes(one)
        scores = {
            k: _plain(np.mean([p[k] for p in passes]))
            for k in ("prompt_following", "consistency", "perceptual_quality", "overall")
        }
        return {**scores, "SC_reasoning": passes[-1]["SC_reasoning"], "PQ_reasoning": passes[-1]["PQ_reasoning"]}

    def frames(self, pairs: list[tuple[np.ndarray, np.ndarray]], prompt: str) -> list[dict]:
        """EditScore of each (source frame, edited frame) pair, in order: the mean of every pass,
        the first pass's reasoning and raw answers."""
        from PIL import Image

        images = [[Image.fromarray(s), Image.fromarray(e)] for s, e in pairs]

        def one(index: int) -> list[dict]:
            results = self.scorer.batch_evaluate(images, [prompt] * len(pairs))
            for frame, result in enumerate(results):
                for head in ("SC", "PQ"):
                    scores = self._parse(result[f"{head}_raw_output"])["score"]
                    if not scores or not 0 <= min(scores) <= self.score_range:
                        raise ScorerError(
                            f"EditScore could not parse the {head} answer for frame pair {frame} in pass {index + 1} "
                            f"of {self.num_pass} (the package would have scored it mid-range)"
                        )
            return results

        passes = self._passes(one)
        out = []
        for frame in range(len(pairs)):
            first = passes[0][frame]
            out.append(
                {
                    **{k: _plain(np.mean([p[frame][k] for p in passes])) for k in ("SC_score", "PQ_score", "O_score")},
                    **{
                        k: first[k]
                        for k in ("SC_score_reasoning", "PQ_score_reasoning", "SC_raw_output", "PQ_raw_output")
                    },
                }
            )
        return out
