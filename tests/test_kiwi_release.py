"""Kiwi's default paths as a new user meets them: the Wan2.2 base and Qwen2.5-VL laid out exactly as
on the hub (``WanPipeline`` repository with ``model_index.json``, sharded weights, the unused UMT5
text encoder) load under ``--model kiwi-sparkle:CKPT`` with no option; wrong inputs stop in one line
at load time; the hub repositories each model needs are listed, without files Kiwi never reads."""

from __future__ import annotations

import fnmatch
import json

import pytest
import torch

from sparkle_bench.cli import main
from sparkle_bench.models import load_model
from sparkle_bench.models.kiwi.checkpoints import is_kiwi_folder, is_wan_base
from sparkle_bench.models.kiwi.folders import save_folder
from sparkle_bench.testing.hub_layout import (
    KIWI_EDIT_STAGE2,
    KIWI_SPARKLE,
    QWEN,
    REPO_FILES,
    WAN_BASE,
    build_hub_repo,
    install_in_cache,
)
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.video import probe

SMALL = ["--model-option", "pixel_budget=4096", "--model-option", "steps=2", "--model-option", "max_frames=5"]


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> dict:
    """The Wan base and Qwen in a Hugging Face cache; the Kiwi-Sparkle repository as a local folder."""
    root = tmp_path_factory.mktemp("hub")
    cache = root / "cache"
    return {
        "cache": cache,
        "base": install_in_cache(WAN_BASE, cache),
        "qwen": install_in_cache(QWEN, cache),
        "sparkle": build_hub_repo(KIWI_SPARKLE, root / "repos"),
    }


@pytest.fixture()
def offline_cache(hub, monkeypatch):
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub["cache"]))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_CACHE", str(hub["cache"]))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return hub


def test_the_base_is_told_from_a_kiwi_folder_by_what_it_holds(hub, tmp_path):
    assert (hub["base"] / "model_index.json").is_file()  # a WanPipeline repository has an index too
    assert is_wan_base(hub["base"]) and not is_kiwi_folder(hub["base"])
    folder = save_folder(tiny_kiwi_model(tmp_path / "tiny"), tmp_path / "kiwi")
    assert is_kiwi_folder(folder) and not is_wan_base(folder)


def test_hub_laid_out_base_loads_with_no_option(offline_cache, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = [
        "infer",
        "--bench",
        "demo",
        "--model",
        f"kiwi-sparkle:{offline_cache['sparkle']}",
        "--ids",
        "Demo_location_000",
        "--runs-dir",
        str(runs),
        "--run-name",
        "r",
        *SMALL,
    ]
    assert main(args) == 0, capsys.readouterr().err
    (output,) = runs.rglob("*_edited.mp4")
    assert (probe(output).width, probe(output).height) == (64, 32)
    from sparkle_bench.models.kiwi.sources import open_kiwi

    model = open_kiwi(str(offline_cache["sparkle"]), torch.float32)
    state = dict(model.encoder.qwen.named_parameters())
    from safetensors.torch import load_file

    checkpoint = load_file(offline_cache["sparkle"] / "model.safetensors")
    target = "model.language_model.layers.0.self_attn.v_proj"
    a, b = (checkpoint[f"mllm.model.{target}.lora_{x}.default.weight"] for x in "AB")
    base = load_file(offline_cache["qwen"] / "model-00001-of-00002.safetensors") | load_file(
        offline_cache["qwen"] / "model-00002-of-00002.safetensors"
    )
    on_disk = base[f"{target}.weight".replace("model.language_model.", "model.")]  # the hub's (original) names
    assert torch.allclose(state[f"{target}.weight"], on_disk + b @ a, atol=1e-6)  # merged on the hub Qwen


def test_a_kiwi_folder_as_base_of_a_lora_checkpoint_is_refused_in_one_line(offline_cache, tmp_path, capsys):
    folder = save_folder(tiny_kiwi_model(tmp_path / "tiny"), tmp_path / "kiwi")
    code = main(
        [
            "infer",
            "--bench",
            "demo",
            "--ids",
            "Demo_location_000",
            "--model",
            f"kiwi-sparkle:{offline_cache['sparkle']}",
            "--model-option",
            f"base={folder}",
            "--runs-dir",
            str(tmp_path / "runs"),
            *SMALL,
        ]
    )
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "already has a LoRA merged in" in x]
    assert code == 2 and f"base={folder} is a Kiwi folder" in line and "Traceback" not in err
    assert not list((tmp_path / "runs").rglob("*.mp4"))


def test_a_renamed_pickle_is_refused_at_load_in_one_line(offline_cache, tmp_path, capsys):
    fake = tmp_path / "model.safetensors"
    torch.save({"w": torch.zeros(2)}, fake)
    code = main(
        [
            "infer",
            "--bench",
            "demo",
            "--limit",
            "3",
            "--model",
            f"kiwi-sparkle:{fake}",
            "--runs-dir",
            str(tmp_path / "runs"),
            *SMALL,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "model.safetensors is not a readable safetensors file" in err
    assert "Traceback" not in err and err.count("not a readable safetensors file") == 1
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").rglob("inference.jsonl"))


def test_a_wan_base_given_as_the_model_says_what_it_is(offline_cache, tmp_path, capsys):
    code = main(
        [
            "infer",
            "--bench",
            "demo",
            "--limit",
            "1",
            "--model",
            f"kiwi-edit:{offline_cache['base']}",
            "--runs-dir",
            str(tmp_path),
            *SMALL,
        ]
    )
    assert code == 2 and "is a Wan base" in capsys.readouterr().err


def test_hub_repos_name_every_repository_and_only_the_files_read():
    sparkle = {r.repo_id: r for r in load_model("kiwi-sparkle", {}).hub_repos()}
    assert list(sparkle) == [KIWI_SPARKLE, WAN_BASE, QWEN]
    read = {
        repo: [f for f in REPO_FILES[repo] if any(fnmatch.fnmatch(f, p) for p in sparkle[repo].allow_patterns)]
        for repo in sparkle
    }
    assert read[KIWI_SPARKLE] == ["model.safetensors"]
    assert not any(f.startswith(("text_encoder/", "tokenizer/", "assets/")) for f in read[WAN_BASE])
    assert {f for f in REPO_FILES[WAN_BASE] if f.startswith(("transformer/", "vae/"))} <= set(read[WAN_BASE])
    assert set(REPO_FILES[QWEN]) - set(read[QWEN]) == {".gitattributes", "README.md"}
    assert [r.repo_id for r in load_model("kiwi-edit", {}).hub_repos()] == [KIWI_EDIT_STAGE2, WAN_BASE, QWEN]
    local = load_model("kiwi-sparkle:/nonexistent/model.safetensors", {"base": "/models/wan"}).hub_repos()
    assert local == []  # a missing local path is reported by the load, not fetched


def test_local_checkpoint_needs_only_its_bases(tmp_path):
    checkpoint = tmp_path / "step-000010" / "model.safetensors"
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(b"")
    (checkpoint.parent / "kiwi.json").write_text(json.dumps({"base": str(tmp_path), "mllm": QWEN}))
    repos = load_model(f"kiwi-sparkle:{checkpoint}", {}).hub_repos()
    assert [r.repo_id for r in repos] == [QWEN]  # its base is local (recorded by the trainer), Qwen from the hub
    assert all(r.allow_patterns for r in repos)
