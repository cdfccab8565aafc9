"""Tiny random-weight models built from configs, so the real loading code runs without downloads."""

from __future__ import annotations

from pathlib import Path

from sparkle_bench.synth import demo_models
from sparkle_bench.synth.demo_models import CHAT_TEMPLATE, SPECIAL, WAN_TINY, tiny_wan_parts, tiny_wan_vace

__all__ = [
    "WAN_TINY",
    "random_alexnet_in_torch_cache",
    "tiny_lucy_edit",
    "tiny_open_clip",
    "tiny_owlv2",
    "tiny_qwen25_vl",
    "tiny_qwen3_vl",
    "tiny_sam2",
    "tiny_wan_parts",
    "tiny_wan_vace",
]

QUERY = "<|object_ref_start|>"  # Kiwi's learnable-query placeholder (after the characters, so their ids stay)


def tiny_qwen25_vl(folder: Path) -> Path:
    """The package's tiny Qwen2.5-VL with Kiwi's query placeholder in its vocabulary."""
    return demo_models.tiny_qwen25_vl(folder, (QUERY,))


def tiny_qwen3_vl(folder: Path) -> Path:
    """A 1-layer Qwen3-VL (deepstack, interleaved M-RoPE) with the same character tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen3VLConfig, Qwen3VLForConditionalGeneration, Qwen3VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessor
    from transformers.models.qwen3_vl import Qwen3VLVideoProcessor

    vocab = {t: i for i, t in enumerate(SPECIAL + [chr(c) for c in range(32, 127)] + ["\n"])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.add_special_tokens(SPECIAL)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    processor = Qwen3VLProcessor(
        image_processor=Qwen2VLImageProcessor(patch_size=16),
        tokenizer=tokenizer,
        video_processor=Qwen3VLVideoProcessor(),
        chat_template=CHAT_TEMPLATE,
    )
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=16,
            max_position_embeddings=32768,
            eos_token_id=vocab["<|im_end|>"],
            rope_parameters={
                "rope_type": "default",
                "rope_theta": 10000.0,
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
        ),
        vision_config=dict(
            depth=1,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=32,
            patch_size=16,
            deepstack_visual_indexes=[0],
            num_position_embeddings=64,
        ),
        image_token_id=vocab["<|image_pad|>"],
        video_token_id=vocab["<|video_pad|>"],
        vision_start_token_id=vocab["<|vision_start|>"],
        vision_end_token_id=vocab["<|vision_end|>"],
    )
    torch.manual_seed(0)
    Qwen3VLForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_owlv2(folder: Path) -> Path:
    """A 1-layer OWLv2 (64 px input) with a character-level tokenizer, saved like a hub checkpoint."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import (
        Owlv2Config,
        Owlv2ForObjectDetection,
        Owlv2ImageProcessor,
        Owlv2Processor,
        PreTrainedTokenizerFast,
    )

    special = ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(special + [chr(c) for c in range(32, 127)])}
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<|endoftext|>"))
    backend.pre_tokenizer = pre_tokenizers.Split(pattern="", behavior="isolated")
    backend.add_special_tokens(special)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token=special[0], eos_token=special[1], pad_token=special[1], model_max_length=16
    )
    processor = Owlv2Processor(
        image_processor=Owlv2ImageProcessor(size={"height": 64, "width": 64}), tokenizer=tokenizer
    )
    config = Owlv2Config(
        text_config=dict(
            vocab_size=len(vocab),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=64,
            patch_size=16,
        ),
        projection_dim=32,
    )
    torch.manual_seed(0)
    model = Owlv2ForObjectDetection(config)
    with torch.no_grad():  # boxes = the patch-grid prior, so random weights still give boxes with an area
        model.box_head.dense2.weight.zero_()
        model.box_head.dense2.bias.zero_()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def tiny_sam2(folder: Path) -> tuple[Path, Path]:
    """A SAM2.1 video model shrunk from the hiera-tiny config (128 px, narrow layers): (checkpoint, config YAML)."""
    import sam2
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(sam2.__file__).parent / "configs" / "sam2.1" / "sam2.1_hiera_t.yaml")
    m = cfg.model
    m.image_size, m.num_maskmem = 128, 2
    trunk, neck = m.image_encoder.trunk, m.image_encoder.neck
    trunk.embed_dim, trunk.num_heads, trunk.stages, trunk.global_att_blocks = 16, 1, [1, 1, 2, 1], [3]
    neck.d_model, neck.backbone_channel_list, neck.position_encoding.num_pos_feats = 32, [128, 64, 32, 16], 32
    attention = m.memory_attention
    attention.d_model, attention.num_layers, attention.layer.d_model, attention.layer.dim_feedforward = 32, 1, 32, 32
    for part in (attention.layer.self_attention, attention.layer.cross_attention):
        part.embedding_dim, part.feat_sizes = 32, [8, 8]
    attention.layer.cross_attention.kv_in_dim = 16
    encoder = m.memory_encoder
    encoder.out_dim, encoder.in_dim, encoder.mask_downsampler.embed_dim = 16, 32, 32
    encoder.position_encoding.num_pos_feats, encoder.fuser.layer.dim = 16, 32
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "sam2.1_tiny_random.yaml"
    OmegaConf.save(cfg, config)
    torch.manual_seed(0)
    checkpoint = folder / "sam2_tiny_random.pt"
    torch.save({"model": instantiate(m, _recursive_=True).state_dict()}, checkpoint)
    return checkpoint, config


def tiny_open_clip(folder: Path) -> str:
    """A 1-layer open_clip CLIP (32 px) in a folder; returns its ``local-dir:`` model name."""
    import json

    import open_clip
    import torch
    from safetensors.torch import save_file

    model_cfg = {
        "embed_dim": 16,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": model_cfg, "preprocess_cfg": {}}))
    torch.manual_seed(0)
    save_file(open_clip.CLIP(**model_cfg).state_dict(), folder / "open_clip_model.safetensors")
    return f"local-dir:{folder}"


def random_alexnet_in_torch_cache(torch_home: Path) -> None:
    """Random AlexNet weights where torchvision looks for its download, as LPIPS's backbone."""
    import torch
    from torchvision.models import AlexNet_Weights, alexnet

    checkpoints = torch_home / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(alexnet().state_dict(), checkpoints / Path(AlexNet_Weights.IMAGENET1K_V1.url).name)


def tiny_lucy_edit(folder: Path) -> Path:
    """A LucyEditPipeline (Wan transformer on video + noise channels) with random components."""
    from diffusers import LucyEditPipeline, WanTransformer3DModel

    transformer = WanTransformer3DModel(in_channels=32, **WAN_TINY)
    LucyEditPipeline(transformer=transformer, **tiny_wan_parts()).save_pretrained(folder)
    return folder
