"""Tiny random-weight models of every role, built from configs and saved like hub checkpoints, and a
scripted OpenAI-compatible VLM endpoint on loopback: what ``demo = true`` runs the five stages with
(``examples/synth-demo.toml``), so anyone can watch the pipeline work without downloading weights,
and what the tests run the real loading and calling code of every stage with.

The models are built once into ``{out}/synth/demo-models`` (a few seconds); the demo clips (figures
walking through textured rooms, from ``sparkle_bench.demo``) are written beside them when the
config names no corpus. Outputs are noise: the point is the plumbing, the layout and the funnel.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

from .config import SynthConfig

SPECIAL = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% for c in m['content'] %}"
    "{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>{% endif %}"
    "{% endfor %}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
DEMO_MODELS_VERSION = 1


def _char_tokenizer(special: list[str], **kwargs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(special + [chr(c) for c in range(32, 127)] + ["\n"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special[0]))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.decoder = decoders.Fuse()  # characters decode back to the text, not space-separated
    backend.add_special_tokens(special)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs), vocab


def tiny_qwen25_vl(folder: Path, extra_tokens: tuple[str, ...] = ()) -> Path:
    """A 1-layer Qwen2.5-VL with a character-level tokenizer, saved like a hub checkpoint;
    ``extra_tokens`` are special tokens after the characters (Kiwi's query placeholder)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2_5_VLConfig,
        Qwen2_5_VLForConditionalGeneration,
        Qwen2_5_VLProcessor,
        Qwen2VLImageProcessor,
    )
    from transformers.models.qwen2_vl import Qwen2VLVideoProcessor

    vocab = {t: i for i, t in enumerate(SPECIAL + [chr(c) for c in range(32, 127)] + ["\n", *extra_tokens])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.add_special_tokens(SPECIAL + list(extra_tokens))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    processor = Qwen2_5_VLProcessor(
        image_processor=Qwen2VLImageProcessor(),
        tokenizer=tokenizer,
        video_processor=Qwen2VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    config = Qwen2_5_VLConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=32768,
            bos_token_id=0,
            eos_token_id=vocab["<|im_end|>"],
            rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        ),
        vision_config=dict(
            depth=1,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=32,
            fullatt_block_indexes=[0],
            window_size=112,
        ),
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
        eos_token_id=vocab["<|im_end|>"],
        pad_token_id=0,
    )
    torch.manual_seed(0)
    Qwen2_5_VLForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_editscore_qwen25(folder: Path, answer: str = "[9,8]") -> Path:
    """A Qwen2.5-VL that answers ``answer`` to any prompt ending in a newline (EditScore's do).

    The attention and MLP outputs are zeroed, so the last hidden state is the current token's
    embedding; embeddings of the answer's characters are orthogonal and the LM head maps each to
    the next character, the last to end-of-text. ``answer`` must not repeat a character.
    """
    import torch

    chain = ["\n"] + list(answer)
    if len(set(chain)) != len(chain):
        raise ValueError(f"{answer!r} repeats a character: a next-token table cannot spell it")
    from tokenizers import decoders
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    tiny_qwen25_vl(folder)
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder)
    processor.tokenizer.backend_tokenizer.decoder = decoders.Fuse()  # decode "[9,8]", not "[ 9 , 8 ]"
    processor.save_pretrained(folder)
    vocab = processor.tokenizer.get_vocab()
    text = model.model.language_model
    with torch.no_grad():
        for layer in text.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        embed, head = text.embed_tokens.weight, model.lm_head.weight
        head.zero_()
        for axis, char in enumerate(chain):
            embed[vocab[char]] = 0.0
            embed[vocab[char], axis] = 1.0
            following = vocab[chain[axis + 1]] if axis + 1 < len(chain) else vocab["<|im_end|>"]
            head[following, axis] = 20.0
    model.save_pretrained(folder)
    return folder


def tiny_flux2_klein(folder: Path) -> Path:
    """A Flux2KleinPipeline: 1+1-layer transformer, 2-block VAE, a 27-layer 16-wide Qwen3 text encoder
    (the pipeline reads hidden states 9, 18 and 27)."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    tokenizer, vocab = _char_tokenizer(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=template,
        model_max_length=512,
    )
    torch.manual_seed(0)
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(vocab),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=27,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=8,
            max_position_embeddings=1024,
        )
    )
    vae = AutoencoderKLFlux2(
        block_out_channels=(8, 8),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=4,
        mid_block_add_attention=False,
    )
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=16,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=48,
        timestep_guidance_channels=32,
        axes_dims_rope=(4, 4, 4, 4),
        guidance_embeds=False,
    )
    Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=True,
    ).save_pretrained(folder)
    return folder


def tiny_wan_parts() -> dict:
    """Tokenizer, UMT5 text encoder, Wan VAE and scheduler: the parts every tiny Wan pipeline shares."""
    import torch
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    special = ["<pad>", "</s>", "<unk>"]
    vocab = {t: i for i, t in enumerate(special + [chr(c) for c in range(32, 127)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.add_special_tokens(special)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=64
    )
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=len(vocab),
            d_model=32,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    return dict(
        tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0)
    )


WAN_TINY = dict(
    patch_size=(1, 2, 2),
    num_attention_heads=2,
    attention_head_dim=12,
    out_channels=16,
    text_dim=32,
    freq_dim=256,
    ffn_dim=32,
    num_layers=2,
    cross_attn_norm=True,
    qk_norm="rms_norm_across_heads",
    rope_max_seq_len=32,
)


def tiny_wan_i2v(folder: Path) -> Path:
    """A Wan2.2-style WanImageToVideoPipeline (no image encoder; noise + image latents + mask in)."""
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel

    WanImageToVideoPipeline(
        transformer=WanTransformer3DModel(in_channels=36, **WAN_TINY), **tiny_wan_parts()
    ).save_pretrained(folder)
    return folder


def tiny_wan_vace(folder: Path) -> Path:
    """A WanVACEPipeline with 2-layer random components, saved in diffusers format."""
    from diffusers import WanVACEPipeline, WanVACETransformer3DModel

    transformer = WanVACETransformer3DModel(in_channels=16, vace_layers=[0], vace_in_channels=96, **WAN_TINY)
    WanVACEPipeline(transformer=transformer, **tiny_wan_parts()).save_pretrained(folder)
    return folder


def tiny_sam3_tracker(folder: Path, size: int = 112) -> Path:
    """A Sam3TrackerVideoModel at ``size`` px (2-layer ViT, 128-wide heads; the memory path keeps the
    64 channels its attention is built for) with its processor."""
    import torch
    from transformers import Sam3TrackerVideoConfig, Sam3TrackerVideoModel, Sam3TrackerVideoProcessor
    from transformers.models.sam2_video import Sam2VideoVideoProcessor
    from transformers.models.sam3 import Sam3ImageProcessor

    patch = 14
    config = Sam3TrackerVideoConfig(
        vision_config=dict(
            model_type="sam3_vision_model",
            fpn_hidden_size=128,
            backbone_config=dict(
                model_type="sam3_vit_model",
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2,
                image_size=size,
                patch_size=patch,
                window_size=4,
                global_attn_indexes=[1],
                pretrain_image_size=size,
            ),
        ),
        prompt_encoder_config=dict(hidden_size=128, image_size=size, patch_size=patch, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        image_size=size,
        num_maskmem=2,
        memory_attention_hidden_size=128,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[size // patch] * 2,
        memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64,
        max_object_pointers_in_encoder=4,
    )
    torch.manual_seed(0)
    model = Sam3TrackerVideoModel(config)
    with torch.no_grad():  # the object is always there, so random weights still track masks with an area
        model.mask_decoder.pred_obj_score_head.proj_out.weight.zero_()
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
    model.save_pretrained(folder)
    Sam3TrackerVideoProcessor(
        image_processor=Sam3ImageProcessor(size={"height": size, "width": size}),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
    ).save_pretrained(folder)
    return folder


GROUND = [{"bbox_2d": [250, 150, 700, 1000], "label": "walking figure"}]


class ScriptedVLM:
    """An OpenAI-compatible endpoint on loopback answering by what is asked (and, in subclasses, by the
    first image sent); ``ground`` lists the answers to successive grounding requests (the last repeats;
    ("status", code) is an HTTP error). As an EditScore backbone (``backbone = "openai"``) it answers
    every judgement with ``score(text, image)``: "[9,9]" unless a subclass says otherwise."""

    def __init__(self, ground: list | None = None):
        self.ground, self.asked = list(ground or [json.dumps(GROUND)]), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                parts = request["messages"][0]["content"]
                images = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
                server.respond(
                    self, " ".join(p.get("text", "") for p in parts), first_image(images[0]) if images else None
                )

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def score(self, text: str, image) -> str:
        return "[9,9]"

    def answer(self, text: str, image=None):
        self.asked.append(text)
        if "evaluate the effectiveness of the AI-generated image" in text:  # EditScore's judgements
            return self.score(text, image)
        if "Camera:" in text:
            return "The furniture keeps its place in every frame.\nCamera: static"
        if "Find every foreground" in text:
            grounding = [t for t in self.asked if "Find every foreground" in t]
            return self.ground[min(len(grounding), len(self.ground)) - 1]
        if "Locate each of these" in text:
            return '[{"bbox_2d": [240, 160, 710, 990], "label": "walking figure"}]'
        if "Choose the one scene" in text:  # the first of the listed scenes ("- scene" lines)
            return text.split("\n- ")[1].split("\n")[0]
        return "A plain room."

    def respond(self, handler: BaseHTTPRequestHandler, text: str, image=None) -> None:
        reply = self.answer(text, image)
        status, body = (
            (reply[1], b"{}")
            if isinstance(reply, tuple)
            else (200, json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode())
        )
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def first_image(url: str):
    """An RGB array from a ``data:image/...;base64,`` URL (None for a plain link)."""
    import base64

    import cv2
    import numpy as np

    if not url.startswith("data:"):
        return None
    image = cv2.imdecode(np.frombuffer(base64.b64decode(url.split(",", 1)[1]), np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def build_demo_models(root: Path) -> dict[str, Path]:
    """Every locally loaded model of the pipeline, by role (``mumbler``: an EditScore backbone that answers "ok")."""
    return {
        "scorer": tiny_editscore_qwen25(root / "scorer", "[9,8]"),
        "mumbler": tiny_editscore_qwen25(root / "mumbler", "ok"),
        "editor": tiny_flux2_klein(root / "flux2"),
        "animator": tiny_wan_i2v(root / "wan-i2v"),
        "renderer": tiny_wan_vace(root / "vace"),
        "segmenter": tiny_sam3_tracker(root / "sam3"),
    }


def demo_folder(cfg: SynthConfig) -> Path:
    return cfg.out / "synth" / f"demo-models-v{DEMO_MODELS_VERSION}"


def demo_settings(cfg: SynthConfig, endpoint: str = "http://127.0.0.1:9/v1") -> SynthConfig:
    """The config with the tiny models in every role and the VLM at ``endpoint`` (not part of any
    settings digest, so ``synth status`` sees the same digests without an endpoint)."""
    settings = json.loads(json.dumps(cfg.settings))
    root, models = demo_folder(cfg), settings["models"]
    models["vlm"].update(backend="openai", model="scripted-demo-vlm", base_url=endpoint, retries=0)
    models["scorer"].update(backbone="qwen25vl", model=str(root / "scorer"), lora="", score_range=10, num_pass=1)
    for role, folder in (("editor", "flux2"), ("animator", "wan-i2v"), ("renderer", "vace"), ("segmenter", "sam3")):
        models[role]["model"] = str(root / folder)
    models["renderer"]["kind"] = "vace"
    models["renderer"]["kind"] = "vace"
    if not settings["corpus"]["path"]:
        settings["corpus"]["path"] = str(cfg.out / "synth" / "demo-clips")
    return dataclasses.replace(cfg, settings=settings)


def write_demo_clips(folder: Path) -> None:
    from ..demo import demo_clips, render_source
    from ..video import write_video

    for clip in demo_clips():
        path = folder / f"{clip.id}.mp4"
        if not path.exists():
            write_video(path, render_source(clip)[0], 16)


@contextmanager
def demo_config(cfg: SynthConfig) -> Iterator[SynthConfig]:
    """The demo's config while its scripted VLM serves; builds the models (and clips) the first time."""
    from ..log import console

    root = demo_folder(cfg)
    if not (root / "done").exists():
        console.print(f"demo: building tiny random models in {root}")
        build_demo_models(root)
        (root / "done").write_text("")
    server = ScriptedVLM()
    try:
        demo = demo_settings(cfg, server.url)
        if not cfg.settings["corpus"]["path"]:
            write_demo_clips(Path(demo.settings["corpus"]["path"]))
        yield demo
    finally:
        server.close()
