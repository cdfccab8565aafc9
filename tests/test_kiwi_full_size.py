"""Kiwi at its real size, on the meta device (no weights, no GPU): a Kiwi-Sparkle checkpoint's full
key set, named and shaped as DiffSynth's trainer writes it, maps onto our model completely; and the
memory a run needs is printed before any load."""

from __future__ import annotations

import pytest
import torch

from sparkle_bench.cli import main
from sparkle_bench.models.kiwi.checkpoints import CheckpointError, sort_checkpoint
from sparkle_bench.models.kiwi.full_size import QWEN, RECIPE, TRANSFORMER, full_size_kiwi, load_config


def upstream_checkpoint_shapes() -> dict[str, tuple[int, ...]]:
    """Every tensor of a Kiwi-Sparkle ``model.safetensors`` with its shape, written out from upstream's
    module definitions (DiffSynth ``WanModel``/``DiTBlock``, Kiwi's ``QwenVLMLLMEncoder`` and
    ``ConditionalEmbedder``) and the stage-2 recipe (trainable modules, rank-64 LoRA on the Qwen
    language model's q/k/v/o), independently of our key maps."""
    dit, qwen, recipe = load_config(TRANSFORMER), load_config(QWEN), load_config(RECIPE)
    dim, ffn, patch = dit["num_attention_heads"] * dit["attention_head_dim"], dit["ffn_dim"], tuple(dit["patch_size"])
    shapes = {
        "dit.patch_embedding.weight": (dim, dit["in_channels"], *patch),
        "dit.patch_embedding.bias": (dim,),
        "dit.text_embedding.0.weight": (dim, dit["text_dim"]),
        "dit.text_embedding.0.bias": (dim,),
        "dit.text_embedding.2.weight": (dim, dim),
        "dit.text_embedding.2.bias": (dim,),
        "dit.time_embedding.0.weight": (dim, dit["freq_dim"]),
        "dit.time_embedding.0.bias": (dim,),
        "dit.time_embedding.2.weight": (dim, dim),
        "dit.time_embedding.2.bias": (dim,),
        "dit.time_projection.1.weight": (6 * dim, dim),
        "dit.time_projection.1.bias": (6 * dim,),
        "dit.head.head.weight": (dit["out_channels"] * 4, dim),
        "dit.head.head.bias": (dit["out_channels"] * 4,),
        "dit.head.modulation": (1, 2, dim),
    }
    for i in range(dit["num_layers"]):
        block = f"dit.blocks.{i}"
        for attn in ("self_attn", "cross_attn"):
            for proj in "qkvo":
                shapes.update({f"{block}.{attn}.{proj}.weight": (dim, dim), f"{block}.{attn}.{proj}.bias": (dim,)})
            shapes.update({f"{block}.{attn}.norm_q.weight": (dim,), f"{block}.{attn}.norm_k.weight": (dim,)})
        shapes.update(
            {
                f"{block}.norm3.weight": (dim,),
                f"{block}.norm3.bias": (dim,),
                f"{block}.modulation": (1, 6, dim),
                f"{block}.ffn.0.weight": (ffn, dim),
                f"{block}.ffn.0.bias": (ffn,),
                f"{block}.ffn.2.weight": (dim, ffn),
                f"{block}.ffn.2.bias": (dim,),
            }
        )
    hidden = qwen["hidden_size"]
    kv = qwen["num_key_value_heads"] * hidden // qwen["num_attention_heads"]
    shapes.update(
        {
            "mllm.image_queries.q": (recipe["num_image_queries"], hidden),
            "mllm.video_queries.q": (recipe["num_video_queries"], hidden),
            "mllm.connetor.0.weight": (dim, hidden),
            "mllm.connetor.0.bias": (dim,),
            "mllm.connetor.2.weight": (dim, dim),
            "mllm.connetor.2.bias": (dim,),
            "vae_condition.patch_embedding.weight": (dim, dit["in_channels"], *patch),
            "vae_condition.patch_embedding.bias": (dim,),
        }
    )
    rank, outputs = recipe["lora_rank"], {"q_proj": hidden, "k_proj": kv, "v_proj": kv, "o_proj": hidden}
    for i in range(qwen["num_hidden_layers"]):
        for target in recipe["lora_target_modules"]:
            name = f"{recipe['lora_base_model']}.layers.{i}.self_attn.{target}"
            shapes[f"{name}.lora_A.default.weight"] = (rank, hidden)
            shapes[f"{name}.lora_B.default.weight"] = (outputs[target], rank)
    return shapes


@pytest.fixture(scope="module")
def full() -> torch.nn.Module:
    return full_size_kiwi("meta")


def _meta_state(shapes: dict[str, tuple[int, ...]]) -> dict[str, torch.Tensor]:
    return {f"pipe.{k}": torch.empty(shape, device="meta") for k, shape in shapes.items()}


def _fits(model, checkpoint) -> list[str]:
    """Every destination of the sorted checkpoint against the model: names and shapes that do not fit."""
    wrong = []
    for module, part in (
        (model.transformer, checkpoint.dit),
        (model.encoder, checkpoint.encoder),
        (model.denoiser.source_embedder, checkpoint.source),
    ):
        own = module.state_dict()
        wrong += [k for k, v in part.items() if k not in own or own[k].shape != v.shape]
    qwen = dict(model.encoder.qwen.named_parameters())
    for target, (down, up) in checkpoint.qwen_lora.items():
        weight = qwen.get(f"{target}.weight")
        if weight is None or weight.shape != (up.shape[0], down.shape[1]):
            wrong.append(f"{target} (LoRA)")
    return wrong


def test_full_size_sparkle_checkpoint_maps_completely_shape_for_shape(full):
    shapes = upstream_checkpoint_shapes()
    assert (
        len(shapes) == 15 + 30 * 27 + 8 + 36 * 4 * 2
    )  # 27 per block: 2 x (4 linear x 2 + 2 norms), norm3 x 2, modulation, ffn x 4
    checkpoint = sort_checkpoint(_meta_state(shapes))
    assert _fits(full, checkpoint) == []
    assert set(checkpoint.dit) == set(full.transformer.state_dict())  # the whole DiT, nothing left at random
    assert len(checkpoint.qwen_lora) == 36 * 4 and not checkpoint.qwen and not checkpoint.reference
    params = sum(p.numel() for p in full.parameters())
    assert 9.4e9 < params < 9.6e9  # 5.0B DiT + 3.75B Qwen2.5-VL-3B + 0.70B VAE + queries/connectors/embedders


def test_a_wrong_name_or_shape_is_caught(full):
    shapes = upstream_checkpoint_shapes()
    with pytest.raises(CheckpointError, match="blocks.3.self_attn.qq"):
        sort_checkpoint(_meta_state({**shapes, "dit.blocks.3.self_attn.qq.weight": (3072, 3072)}))
    shapes["dit.blocks.7.ffn.0.weight"] = (14336, 2048)  # a 14B-style width would not fit
    shapes["mllm.model.model.language_model.layers.2.self_attn.k_proj.lora_B.default.weight"] = (2048, 64)
    wrong = _fits(full, sort_checkpoint(_meta_state(shapes)))
    assert wrong == ["blocks.7.ffn.net.0.proj.weight", "model.language_model.layers.2.self_attn.k_proj (LoRA)"]


def test_dry_run_prints_memory_and_loads_nothing(tmp_path, capsys):
    missing = tmp_path / "no-such-checkpoint.safetensors"
    code = main(
        ["infer", "--bench", "demo", "--model", f"kiwi-sparkle:{missing}", "--dry-run", "--runs-dir", str(tmp_path)]
    )
    out = capsys.readouterr().err
    assert code == 0, out
    assert "1280x704" in out and "with --offload" in out and "denoiser  weights   9.3" in out
    assert not any(tmp_path.iterdir())  # no run folder, nothing loaded: the checkpoint does not even exist
