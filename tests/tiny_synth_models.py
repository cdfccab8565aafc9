"""Tiny random-weight models for the synthesis pipeline, built from configs and saved like hub checkpoints,
so the real loading and calling code of every stage runs without downloads; a scripted
OpenAI-compatible VLM endpoint; and a config that wires them together."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from .tiny_models import WAN_TINY, _tiny_wan_parts

IMAGE_CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}{% else %}"
    "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% elif c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _char_tokenizer(special: list[str], **kwargs):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(special + [chr(c) for c in range(32, 127)] + ["\n"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token=special[0]))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.decoder = decoders.Fuse()  # characters decode back to the text, not space-separated
    backend.add_special_tokens(special)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs), vocab


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


def tiny_editscore_qwen25(folder: Path, answer: str = "[9,8]") -> Path:
    """A Qwen2.5-VL that answers ``answer`` to any prompt ending in a newline (EditScore's do).

    The attention and MLP outputs are zeroed, so the last hidden state is the current token's
    embedding; embeddings of the answer's characters are orthogonal and the LM head maps each to
    the next character, the last to end-of-text. ``answer`` must not repeat a character.
    """
    import torch

    from .tiny_models import tiny_qwen25_vl

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
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    tokenizer, vocab = _char_tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], eos_token="<|im_end|>",
                                       pad_token="<|endoftext|>", chat_template=template, model_max_length=512)
    torch.manual_seed(0)
    text_encoder = Qwen3ForCausalLM(Qwen3Config(vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_hidden_layers=27,
                                                num_attention_heads=2, num_key_value_heads=1, head_dim=8, max_position_embeddings=1024))
    vae = AutoencoderKLFlux2(block_out_channels=(8, 8), down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                             layers_per_block=1, latent_channels=4, norm_num_groups=4, mid_block_add_attention=False)
    transformer = Flux2Transformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
                                          num_attention_heads=2, joint_attention_dim=48, timestep_guidance_channels=32,
                                          axes_dims_rope=(4, 4, 4, 4), guidance_embeds=False)
    Flux2KleinPipeline(scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                       transformer=transformer, is_distilled=True).save_pretrained(folder)
    return folder


def tiny_wan_i2v(folder: Path) -> Path:
    """A Wan2.2-style WanImageToVideoPipeline (no image encoder; noise + image latents + mask in)."""
    from diffusers import WanImageToVideoPipeline, WanTransformer3DModel

    WanImageToVideoPipeline(transformer=WanTransformer3DModel(in_channels=36, **WAN_TINY), **_tiny_wan_parts()).save_pretrained(folder)
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
        vision_config=dict(model_type="sam3_vision_model", fpn_hidden_size=128,
                           backbone_config=dict(model_type="sam3_vit_model", hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                                num_attention_heads=2, image_size=size, patch_size=patch, window_size=4,
                                                global_attn_indexes=[1], pretrain_image_size=size)),
        prompt_encoder_config=dict(hidden_size=128, image_size=size, patch_size=patch, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        image_size=size, num_maskmem=2, memory_attention_hidden_size=128, memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64, memory_attention_rope_feat_sizes=[size // patch] * 2,
        memory_encoder_hidden_size=128, memory_encoder_output_channels=64, mask_downsampler_embed_dim=128,
        memory_fuser_embed_dim=128, memory_fuser_intermediate_dim=64, max_object_pointers_in_encoder=4,
    )
    torch.manual_seed(0)
    model = Sam3TrackerVideoModel(config)
    with torch.no_grad():  # the object is always there, so random weights still track masks with an area
        model.mask_decoder.pred_obj_score_head.proj_out.weight.zero_()
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
    model.save_pretrained(folder)
    Sam3TrackerVideoProcessor(image_processor=Sam3ImageProcessor(size={"height": size, "width": size}),
                              video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size})).save_pretrained(folder)
    return folder


def build_tiny_models(root: Path) -> dict[str, Path]:
    """Every model of the pipeline, by role (``mumbler``: an EditScore backbone that answers "ok")."""
    from .tiny_models import tiny_wan_vace

    return {"vlm": tiny_qwen3_vl_images(root / "vlm"), "scorer": tiny_editscore_qwen25(root / "scorer", "[9,8]"),
            "mumbler": tiny_editscore_qwen25(root / "mumbler", "ok"), "editor": tiny_flux2_klein(root / "flux2"),
            "animator": tiny_wan_i2v(root / "wan-i2v"), "renderer": tiny_wan_vace(root / "vace"),
            "segmenter": tiny_sam3_tracker(root / "sam3")}


GROUND = [{"bbox_2d": [250, 150, 700, 1000], "label": "walking figure"}]


class ScriptedVLM:
    """An OpenAI-compatible endpoint on loopback answering by what is asked; ``ground`` lists the
    answers to successive grounding requests (the last repeats; ("status", code) is an HTTP error)."""

    def __init__(self, ground: list | None = None):
        self.ground, self.asked = list(ground or [json.dumps(GROUND)]), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.respond(self, " ".join(p.get("text", "") for p in request["messages"][0]["content"]))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, text: str):
        self.asked.append(text)
        if "Camera:" in text:
            return "The furniture keeps its place in every frame.\nCamera: static"
        if "Find every foreground" in text:
            grounding = [t for t in self.asked if "Find every foreground" in t]
            return self.ground[min(len(grounding), len(self.ground)) - 1]
        if "Locate each of these" in text:
            return '[{"bbox_2d": [240, 160, 710, 990], "label": "walking figure"}]'
        return "A plain room."

    def respond(self, handler: BaseHTTPRequestHandler, text: str) -> None:
        reply = self.answer(text)
        status, body = (reply[1], b"{}") if isinstance(reply, tuple) else \
            (200, json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode())
        handler.send_response(status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def config_text(tiny: dict[str, Path], corpus: Path, endpoint: str, out: Path) -> str:
    """Tiny models at 96x64, 9 frames; the VLM checks and grounds through ``endpoint``, stage 2's
    instructions come from the tiny local Qwen3-VL; Ray: two CPUs, no GPU."""
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
model = "{tiny['vlm']}"
max_pixels = 16384
max_new_tokens = 16
[models.endpoint]
backend = "openai"
model = "scripted"
base_url = "{endpoint}"
max_new_tokens = 64
retries = 0
[models.editor]
model = "{tiny['editor']}"
steps = 1
[models.scorer]
backbone = "qwen25vl"
model = "{tiny['scorer']}"
lora = ""
score_range = 10
num_pass = 1
[models.animator]
model = "{tiny['animator']}"
steps = 1
[models.segmenter]
model = "{tiny['segmenter']}"
[models.renderer]
model = "{tiny['renderer']}"
steps = 1
[stage1]
vlm = "endpoint"
num_cpus = 0.5
concurrency = 2
check_num_gpus = 0
[stage2]
num_cpus = 0.25
num_gpus = 0
[stage3]
vlm = "endpoint"
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
[thresholds.stage3]
min_overall = 8.0
"""
