"""Tiny random repositories laid out exactly as the real Hugging Face repositories Kiwi reads are:
every file and folder name of the real repository, tiny weights (sharded like the real ones, with
their index files), and byte placeholders under the real names for files Kiwi never reads (the
Wan base's UMT5-XXL text encoder and its tokenizer, images, READMEs).

The file lists are the repositories' trees as published (``main``); a stand-in hub serves these
folders, and :func:`install_in_cache` puts one where ``snapshot_download(local_files_only=True)``
finds it. The Wan base, the Qwen model and the checkpoints fit one another: a checkpoint applies
on the tiny base and the tiny Qwen.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

WAN_BASE = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
QWEN = "Qwen/Qwen2.5-VL-3B-Instruct"
KIWI_SPARKLE = "stdKonjac/Kiwi-Sparkle-720P-81F"
KIWI_EDIT_STAGE2 = "linyq/wan2.2_ti2v_5b_qwen25vl_3b_stage2_img_vid_720x1280_81f"

REPO_FILES: dict[str, tuple[str, ...]] = {
    WAN_BASE: (
        ".gitattributes",
        "README.md",
        "model_index.json",
        "assets/comp_effic.png",
        "assets/logo.png",
        "assets/moe_2.png",
        "assets/moe_arch.png",
        "assets/performance.png",
        "assets/vae.png",
        "scheduler/scheduler_config.json",
        "text_encoder/config.json",
        *(f"text_encoder/model-0000{i}-of-00005.safetensors" for i in range(1, 6)),
        "text_encoder/model.safetensors.index.json",
        "tokenizer/special_tokens_map.json",
        "tokenizer/spiece.model",
        "tokenizer/tokenizer.json",
        "tokenizer/tokenizer_config.json",
        "transformer/config.json",
        *(f"transformer/diffusion_pytorch_model-0000{i}-of-00003.safetensors" for i in range(1, 4)),
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
    ),
    QWEN: (
        ".gitattributes",
        "README.md",
        "chat_template.json",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
    ),
    KIWI_SPARKLE: (".gitattributes", "README.md", "model.safetensors"),
    KIWI_EDIT_STAGE2: (".gitattributes", "model.safetensors"),
}


def _placeholder(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(f"placeholder for {path.name}: never read by Kiwi\n".encode())


def write_shards(state: dict, folder: Path, pattern: str, count: int, index_name: str) -> None:
    """``state`` split into ``count`` safetensors shards named by ``pattern.format(i, count)``, with
    the ``weight_map`` index that diffusers/transformers read."""
    from safetensors.torch import save_file

    names = sorted(state)
    folder.mkdir(parents=True, exist_ok=True)
    weight_map, size = {}, 0
    for number in range(1, count + 1):
        part = names[number - 1 :: count]
        shard = pattern.format(number, count)
        save_file({k: state[k].contiguous() for k in part}, folder / shard, metadata={"format": "pt"})
        weight_map.update({k: shard for k in part})
        size += sum(state[k].numel() * state[k].element_size() for k in part)
    (folder / index_name).write_text(json.dumps({"metadata": {"total_size": size}, "weight_map": weight_map}, indent=2))


def _sharded_folder(source: Path, target: Path, weights: str, pattern: str, count: int, index: str) -> None:
    """Copy a saved model folder, its single weights file re-written as ``count`` shards."""
    from safetensors.torch import load_file

    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name != weights:
            shutil.copy(item, target / item.name)
    write_shards(load_file(source / weights), target, pattern, count, index)


def _wan_base(repo: Path, scratch: Path) -> None:
    import torch
    from diffusers import AutoencoderKLWan, WanPipeline, WanTransformer3DModel

    from .tiny_kiwi import DIT, VAE
    from .tiny_models import tiny_wan_parts

    parts = tiny_wan_parts()
    torch.manual_seed(1)  # the same DiT and VAE as tiny_kiwi.tiny_wan_base
    parts.update(transformer=WanTransformer3DModel(**DIT), vae=AutoencoderKLWan(**VAE))
    WanPipeline(**parts).save_pretrained(scratch)
    for name in ("model_index.json", "scheduler", "vae"):
        source = scratch / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, repo / name)
    _sharded_folder(
        scratch / "transformer",
        repo / "transformer",
        "diffusion_pytorch_model.safetensors",
        "diffusion_pytorch_model-{:05d}-of-{:05d}.safetensors",
        3,
        "diffusion_pytorch_model.safetensors.index.json",
    )
    _sharded_folder(
        scratch / "text_encoder",
        repo / "text_encoder",
        "model.safetensors",
        "model-{:05d}-of-{:05d}.safetensors",
        5,
        "model.safetensors.index.json",
    )
    (repo / "tokenizer").mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(scratch / "tokenizer" / name, repo / "tokenizer" / name)
    special = {"eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
    (repo / "tokenizer" / "special_tokens_map.json").write_text(json.dumps(special))


def _qwen(repo: Path, scratch: Path) -> None:
    from safetensors.torch import load_file

    from .tiny_models import tiny_qwen25_vl

    tiny_qwen25_vl(scratch)
    for name in ("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(scratch / name, repo / name)
    write_shards(
        load_file(scratch / "model.safetensors"),
        repo,
        "model-{:05d}-of-{:05d}.safetensors",
        2,
        "model.safetensors.index.json",
    )
    processor = json.loads((scratch / "processor_config.json").read_text())
    image = {**processor["image_processor"], "processor_class": processor["processor_class"]}
    (repo / "preprocessor_config.json").write_text(json.dumps(image, indent=2))
    template = (scratch / "chat_template.jinja").read_text()
    (repo / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    vocab = json.loads((scratch / "tokenizer.json").read_text())["model"]["vocab"]
    (repo / "vocab.json").write_text(json.dumps(vocab))
    (repo / "merges.txt").write_text("#version: 0.2\n")


def kiwi_checkpoint_state(seed: int, lora_rank: int = 4) -> dict:
    """A DiffSynth checkpoint as Kiwi-Edit's stage-2 recipe writes it (full DiT, image/video queries,
    connector, source embedder, rank-``lora_rank`` LoRA on the Qwen language model's attention), for
    the tiny Wan base (``tiny_kiwi.DIT``) and the tiny Qwen (``tiny_models.tiny_qwen25_vl``: width 32,
    one layer, one 16-wide key/value head)."""
    import torch
    from diffusers import WanTransformer3DModel

    from sparkle_bench.models.kiwi.keymaps import dit_to_diffsynth

    from .tiny_kiwi import DIT, QUERIES

    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    state = {f"dit.{dit_to_diffsynth(k)}": v for k, v in WanTransformer3DModel(**DIT).state_dict().items()}
    dim, hidden, kv = DIT["num_attention_heads"] * DIT["attention_head_dim"], 32, 16
    state.update(
        {
            "mllm.image_queries.q": torch.randn(QUERIES["num_image_queries"], hidden, generator=g) * 0.02,
            "mllm.video_queries.q": torch.randn(QUERIES["num_video_queries"], hidden, generator=g) * 0.02,
            "mllm.connetor.0.weight": torch.randn(dim, hidden, generator=g) * 0.2,
            "mllm.connetor.0.bias": torch.zeros(dim),
            "mllm.connetor.2.weight": torch.randn(dim, dim, generator=g) * 0.5,
            "mllm.connetor.2.bias": torch.zeros(dim),
            "vae_condition.patch_embedding.weight": torch.randn(dim, DIT["in_channels"], 1, 2, 2, generator=g) * 0.5,
            "vae_condition.patch_embedding.bias": torch.zeros(dim),
        }
    )
    for target, (out_features, in_features) in {
        "q_proj": (hidden, hidden),
        "k_proj": (kv, hidden),
        "v_proj": (kv, hidden),
        "o_proj": (hidden, hidden),
    }.items():
        name = f"mllm.model.model.language_model.layers.0.self_attn.{target}"
        state[f"{name}.lora_A.default.weight"] = torch.randn(lora_rank, in_features, generator=g) * 0.1
        state[f"{name}.lora_B.default.weight"] = torch.randn(out_features, lora_rank, generator=g) * 0.1
    return {k: v.contiguous() for k, v in state.items()}


def _checkpoint(repo: Path, seed: int) -> None:
    from safetensors.torch import save_file

    save_file(kiwi_checkpoint_state(seed), repo / "model.safetensors")


BUILDERS = {
    WAN_BASE: _wan_base,
    QWEN: _qwen,
    KIWI_SPARKLE: lambda repo, _: _checkpoint(repo, 11),
    KIWI_EDIT_STAGE2: lambda repo, _: _checkpoint(repo, 12),
}


def build_hub_repo(repo_id: str, root: Path) -> Path:
    """Write the tiny stand-in of ``repo_id`` at ``root/<owner>/<name>`` and return that folder."""
    if repo_id not in REPO_FILES:
        raise KeyError(f"no tiny layout for {repo_id}; known: {', '.join(REPO_FILES)}")
    repo = Path(root) / repo_id
    repo.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="hub-layout-") as scratch:
        BUILDERS[repo_id](repo, Path(scratch) / "work")
    for name in REPO_FILES[repo_id]:
        if not (repo / name).exists():
            _placeholder(repo / name)
    unexpected = {str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()} - set(REPO_FILES[repo_id])
    if unexpected:
        raise AssertionError(f"{repo_id}: files the real repository does not have: {sorted(unexpected)}")
    return repo


def install_in_cache(repo_id: str, cache: Path, commit: str = "0" * 40) -> Path:
    """Build ``repo_id`` as a snapshot in a Hugging Face cache folder (``HF_HUB_CACHE``) and return it."""
    entry = Path(cache) / f"models--{repo_id.replace('/', '--')}"
    (entry / "refs").mkdir(parents=True, exist_ok=True)
    (entry / "refs" / "main").write_text(commit)
    with tempfile.TemporaryDirectory(prefix="hub-cache-") as built:
        repo = build_hub_repo(repo_id, Path(built))
        snapshot = entry / "snapshots" / commit
        shutil.copytree(repo, snapshot)
    return snapshot
