"""The hub repositories Kiwi weights come from, and only the files of each that our code reads
(no torch here: ``sparkle-bench download`` asks before anything heavy is imported).

- A DiffSynth checkpoint (Kiwi-Sparkle, Kiwi-Edit's stage checkpoints): its ``*.safetensors``,
  applied on the Wan2.2-TI2V-5B diffusers base, of which ``transformer/`` and ``vae/`` are read (its
  UMT5-XXL ``text_encoder/`` is never used by Kiwi), and on Qwen2.5-VL-3B-Instruct (weights, configs,
  tokenizer and processor files).
- A released diffusers-layout Kiwi folder (``linyq/kiwi-edit-5b-*-diffusers``): every file but its
  Python code, which we never run.
"""

from __future__ import annotations

from pathlib import Path

from ..hub import HubRepo
from .sidecar import recorded_source

DEFAULT_BASE = "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
DEFAULT_MLLM = "Qwen/Qwen2.5-VL-3B-Instruct"
KIWI_SPARKLE = "stdKonjac/Kiwi-Sparkle-720P-81F"
# Sparkle's README names this checkpoint as Kiwi-Sparkle's starting point ("Kiwi-Edit-Stage2 (Image + Video)")
KIWI_EDIT_STAGE2 = "linyq/wan2.2_ti2v_5b_qwen25vl_3b_stage2_img_vid_720x1280_81f"

BASE_FILES = ("model_index.json", "transformer/*", "vae/*")
MLLM_FILES = ("*.json", "*.safetensors", "merges.txt", "vocab.json")
CHECKPOINT_FILES = ("*.safetensors",)
FOLDER_FILES = ("*.json", "*.safetensors", "*.txt", "*.jinja", "*.model")


def is_local(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or source.count("/") != 1 or Path(source).expanduser().exists()


def is_diffusers_release(repo_id: str) -> bool:
    """A released diffusers-layout Kiwi folder, known by its name (``linyq/kiwi-edit-5b-*-diffusers``)."""
    return repo_id.endswith("-diffusers")


def kiwi_hub_repos(source: str, base: str | None, mllm: str | None, recorded: dict | None = None) -> list[HubRepo]:
    """The hub repositories a Kiwi ``source`` needs: itself when it is a hub id, and, when it is a
    DiffSynth checkpoint, its Wan base and Qwen model (``base=``/``mllm=`` options, else what
    ``recorded`` (its ``kiwi.json``) says, at the revision it records, else the released ones).
    Local paths contribute none."""
    repos: list[HubRepo] = []
    if not is_local(source):
        if is_diffusers_release(source):
            return [HubRepo(source, FOLDER_FILES, why="Kiwi folder (diffusers layout)")]
        repos.append(HubRepo(source, CHECKPOINT_FILES, why="Kiwi checkpoint (DiffSynth)"))
    elif not Path(source).expanduser().exists() or (Path(source).expanduser() / "mllm_encoder").is_dir():
        return []  # a missing path is reported by the load; a Kiwi folder needs nothing else
    recorded = recorded or {}
    # our trainer records no Qwen when the base is a Kiwi folder, which holds its own
    own_qwen = not base and isinstance(recorded.get("base"), dict) and recorded.get("mllm") is None
    base_revision = None if base else _revision(recorded.get("base"))
    mllm_revision = None if mllm else _revision(recorded.get("mllm"))
    base = base or recorded_source(recorded.get("base")) or DEFAULT_BASE
    mllm = mllm or recorded_source(recorded.get("mllm")) or DEFAULT_MLLM
    if not is_local(base) and (own_qwen or is_diffusers_release(base) and base != DEFAULT_BASE):
        return [
            *repos,
            HubRepo(base, FOLDER_FILES, revision=base_revision, why="Kiwi folder the checkpoint applies to"),
        ]
    if own_qwen or is_local(base) and (Path(base).expanduser() / "mllm_encoder").is_dir():
        return repos  # a local Kiwi folder holds its own Qwen
    if not is_local(base):
        repos.append(HubRepo(base, BASE_FILES, revision=base_revision, why="Wan2.2-TI2V-5B base (transformer, vae)"))
    if not is_local(mllm):
        repos.append(
            HubRepo(mllm, MLLM_FILES, revision=mllm_revision, why="Qwen2.5-VL-3B-Instruct (condition encoder)")
        )
    return repos


def _revision(record: dict | str | None) -> str | None:
    return record.get("revision") if isinstance(record, dict) and "hub" in record else None
