"""The demo's tiny models and scripted VLM endpoint (``sparkle_bench.synth.demo_models``), a tiny local
Qwen3-VL that takes images, and a test config that wires them together."""

from __future__ import annotations

from pathlib import Path

from sparkle_bench.synth.demo_models import GROUND, ScriptedVLM, build_demo_models

__all__ = ["GROUND", "ScriptedVLM", "build_tiny_models", "config_text", "tiny_qwen3_vl_images"]

IMAGE_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_qwen3_vl_images(folder: Path) -> Path:
    """The tests' 1-layer Qwen3-VL with a chat template that takes images (the stages send frames)."""
    from tokenizers import decoders
    from transformers import AutoProcessor

    from .tiny_models import tiny_qwen3_vl

    tiny_qwen3_vl(folder)
    processor = AutoProcessor.from_pretrained(folder)
    processor.chat_template = IMAGE_CHAT_TEMPLATE
    processor.tokenizer.backend_tokenizer.decoder = decoders.Fuse()  # answers decode as text, not space-separated
    processor.save_pretrained(folder)
    return folder


def build_tiny_models(root: Path) -> dict[str, Path]:
    """The demo's models (``sparkle_bench.synth.demo_models``) and a tiny local Qwen3-VL for stage 2."""
    return {**build_demo_models(root), "vlm": tiny_qwen3_vl_images(root / "vlm")}


def config_text(tiny: dict[str, Path], corpus: Path, endpoint: str, out: Path) -> str:
    """Tiny models at 96x64, 9 frames; the VLM checks, chooses scenes, writes instructions and grounds
    through ``endpoint`` (a random local VLM cannot name a listed scene), which also judges stages 2
    and 3 as EditScore's backbone (its scores can differ per sample); stage 5's EditScore is the tiny
    local one; the tiny local Qwen3-VL is ``[models.vlm]``, for tests that switch a stage to it; Ray:
    two CPUs, no GPU."""
    return f"""
out = "{out}"
themes = ["location", "season"]
[corpus]
path = "{corpus}"
[video]
width = 96
height = 64
max_frames = 9
[ray]
num_cpus = 2
[models.vlm]
model = "{tiny["vlm"]}"
max_pixels = 16384
max_new_tokens = 16
[models.endpoint]
backend = "openai"
model = "scripted"
base_url = "{endpoint}"
max_new_tokens = 64
retries = 0
[models.editor]
model = "{tiny["editor"]}"
steps = 1
[models.scorer]
backbone = "qwen25vl"
model = "{tiny["scorer"]}"
lora = ""
score_range = 10
num_pass = 1
[models.judge]
backbone = "openai"
model = "scripted"
base_url = "{endpoint}"
[models.animator]
model = "{tiny["animator"]}"
steps = 1
[models.segmenter]
model = "{tiny["segmenter"]}"
[models.renderer]
kind = "vace"
model = "{tiny["renderer"]}"
steps = 1
[stage1]
vlm = "endpoint"
num_cpus = 0.5
concurrency = 2
check_num_gpus = 0
[stage2]
vlm = "endpoint"
scorer = "judge"
num_cpus = 0.25
num_gpus = 0
[stage3]
vlm = "endpoint"
scorer = "judge"
num_cpus = 0.25
num_gpus = 0
[stage4]
vlm = "endpoint"
num_cpus = 0.25
num_gpus = 0
[stage5]
num_cpus = 0.25
num_gpus = 0
[thresholds.stage1]
min_frames = 9
min_short_side = 64
"""
