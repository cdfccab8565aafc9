"""Our Kiwi code on a tiny random-weight model built from configs: the protocol geometry, both
checkpoint layouts (save/reload, LoRA merging, refused keys and pickles), determinism, sharding,
reference mode and the CLI as a new user runs it."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from sparkle_bench.cli import main
from sparkle_bench.models.kiwi.checkpoints import CheckpointError, diffsynth_state, load_checkpoint, sort_checkpoint
from sparkle_bench.models.kiwi.folders import load_folder, save_folder
from sparkle_bench.models.kiwi.frames import frame_count, prepare_video, protocol_size
from sparkle_bench.models.kiwi.pipeline import Sampling
from sparkle_bench.models.kiwi.sampler import FlowSchedule
from sparkle_bench.records import read_jsonl
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.video import probe, read_frames

SMALL = ["--model-option", "pixel_budget=4096", "--model-option", "steps=2", "--model-option", "max_frames=5"]
PROMPT = "Replace the background with a windy beach."


@pytest.fixture(scope="module")
def kiwi(tmp_path_factory) -> dict:
    """The tiny model, its released-layout folder, and the Wan/Qwen bases it was built on."""
    root = tmp_path_factory.mktemp("kiwi")
    model = tiny_kiwi_model(root)
    return {
        "model": model,
        "folder": save_folder(model, root / "kiwi-folder"),
        "base": root / "base",
        "qwen": root / "qwen",
    }


@pytest.fixture(scope="module")
def frames(demo_root) -> np.ndarray:
    return prepare_video(read_frames(next((demo_root / "source_videos" / "time").glob("*.mp4"))), 4096, 32, 5)


@pytest.mark.parametrize(
    "source, expected",
    [((1280, 720), (1280, 704)), ((720, 1280), (704, 1280)), ((448, 256), (448, 256)), ((1920, 1080), (1280, 704))],
)
def test_protocol_size_keeps_aspect_in_the_pixel_budget(source, expected):
    assert protocol_size(*source) == expected


def test_frames_are_trimmed_to_4k_plus_1_and_centre_cropped():
    assert [frame_count(n) for n in (81, 80, 100, 49, 3, 1)] == [81, 77, 81, 49, 1, 1]
    video = np.zeros((10, 720, 1280, 3), np.uint8)
    video[:, :8] = 255  # rows the 1280x704 centre crop removes
    out = prepare_video(video)
    assert out.shape == (9, 704, 1280, 3) and out.max() == 0


def test_schedule_matches_the_shifted_flow_match_formula():
    schedule = FlowSchedule.make(50, shift=5.0, sigma_min=0.0)
    raw = torch.linspace(1, 0, 51)[:-1]
    assert torch.allclose(schedule.sigmas, 5 * raw / (1 + 4 * raw)) and schedule.sigmas[0] == 1.0
    weights = FlowSchedule.make(1000).training_weights()
    assert weights.mean().item() == pytest.approx(1.0) and weights.min().item() == 0.0
    assert int(weights.argmax()) == int(torch.argmin((FlowSchedule.make(1000).timesteps - 500).abs()))


def test_same_seed_same_video_and_every_input_matters(kiwi, frames):
    model = kiwi["model"]
    first = model.generate(PROMPT, frames, None, Sampling(steps=2))
    assert first.shape == frames.shape and first.dtype == np.uint8
    assert np.array_equal(first, model.generate(PROMPT, frames, None, Sampling(steps=2)))
    other_seed = model.generate(PROMPT, frames, None, Sampling(steps=2, seed=1))
    assert np.abs(first.astype(int) - other_seed).mean() > 5
    with torch.no_grad():
        a, b = model.encoder(PROMPT, frames), model.encoder("Replace the background with snow.", frames)
    assert a.shape == (1, 6, 24) and (a - b).abs().max() > 1e-3  # the instruction reaches the context
    mirrored = model.generate(PROMPT, frames[:, :, ::-1].copy(), None, Sampling(steps=2))
    assert not np.array_equal(first, mirrored)
    with torch.no_grad():
        assert model.encoder(PROMPT, frames, frames[0]).shape[1] > 5  # reference tokens join the queries
    assert not np.array_equal(first, model.generate(PROMPT, frames, frames[0][::-1].copy(), Sampling(steps=2)))


def test_released_folder_round_trip_gives_identical_video(kiwi, frames, tmp_path):
    folder = kiwi["folder"]
    index = json.loads((folder / "model_index.json").read_text())
    assert {"transformer", "vae", "mllm_encoder", "source_embedder", "ref_embedder", "scheduler", "processor"} <= set(
        index
    )
    assert (folder / "processor" / "qwen_config.json").is_file()
    vae_keys = load_file(folder / "vae" / "diffusion_pytorch_model.safetensors")
    assert "encoder.conv1.weight" in vae_keys and "decoder.head.2.weight" in vae_keys  # original Wan names
    trapped = tmp_path / "released"
    shutil.copytree(folder, trapped)
    for place in ("pipeline_kiwi_edit.py", "mllm_encoder.py", "mllm_encoder/mllm_encoder.py", "vae/wan_video_vae.py"):
        (trapped / place).write_text("raise SystemExit('hub code was executed')\n")  # as released folders ship them
    loaded = load_folder(trapped)  # weights and configs only: the files above never run
    sampling = Sampling(steps=2, sigma_min=0.0)
    expected = kiwi["model"].generate(PROMPT, frames, None, sampling)
    assert np.array_equal(loaded.generate(PROMPT, frames, None, sampling), expected)
    again = load_folder(save_folder(loaded, tmp_path / "again"))
    assert np.array_equal(again.generate(PROMPT, frames, None, sampling), expected)


def _synthetic_checkpoint(kiwi, rank: int = 3, seed: int = 0) -> dict[str, torch.Tensor]:
    """Full DiT (DiffSynth names), queries, connector, embedders of the tiny model, plus known
    LoRA pairs on two Qwen projections and one DiT projection."""
    g = torch.Generator().manual_seed(seed)
    state = diffsynth_state(kiwi["model"])
    qwen = kiwi["model"].encoder.qwen.state_dict()
    for target in ("model.language_model.layers.0.self_attn.q_proj", "model.language_model.layers.0.self_attn.o_proj"):
        out_dim, in_dim = qwen[f"{target}.weight"].shape
        state[f"mllm.model.{target}.lora_A.default.weight"] = torch.randn(rank, in_dim, generator=g)
        state[f"mllm.model.{target}.lora_B.default.weight"] = torch.randn(out_dim, rank, generator=g)
    state["dit.blocks.1.cross_attn.k.lora_A.default.weight"] = torch.randn(rank, 24, generator=g)
    state["dit.blocks.1.cross_attn.k.lora_B.default.weight"] = torch.randn(24, rank, generator=g)
    return state


def test_diffsynth_checkpoint_merges_lora_exactly(kiwi, tmp_path):
    state = _synthetic_checkpoint(kiwi)
    path = tmp_path / "model.safetensors"
    save_file(state, path)
    model = load_checkpoint(path, kiwi["base"], kiwi["qwen"], lora_alpha=0.5, cache=tmp_path / "cache")
    base_qwen = kiwi["model"].encoder.qwen.state_dict()
    for target in ("model.language_model.layers.0.self_attn.q_proj", "model.language_model.layers.0.self_attn.o_proj"):
        a, b = state[f"mllm.model.{target}.lora_A.default.weight"], state[f"mllm.model.{target}.lora_B.default.weight"]
        assert torch.allclose(
            model.encoder.qwen.state_dict()[f"{target}.weight"], base_qwen[f"{target}.weight"] + 0.5 * b @ a, atol=1e-5
        )
    untouched = "model.language_model.layers.0.self_attn.k_proj.weight"
    assert torch.equal(model.encoder.qwen.state_dict()[untouched], base_qwen[untouched])
    dit_a, dit_b = (
        state["dit.blocks.1.cross_attn.k.lora_A.default.weight"],
        state["dit.blocks.1.cross_attn.k.lora_B.default.weight"],
    )
    expected = kiwi["model"].transformer.state_dict()["blocks.1.attn2.to_k.weight"] + 0.5 * dit_b @ dit_a
    assert torch.allclose(model.transformer.state_dict()["blocks.1.attn2.to_k.weight"], expected, atol=1e-5)
    assert torch.equal(model.encoder.video_queries, kiwi["model"].encoder.video_queries)
    assert len(list((tmp_path / "cache").iterdir())) == 1  # converted once, as a released-layout folder


def test_diffsynth_round_trip_and_cache_reuse(kiwi, frames, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(diffsynth_state(kiwi["model"], reference=True), path)
    cache = tmp_path / "cache"
    model = load_checkpoint(path, kiwi["base"], kiwi["qwen"], cache=cache)
    sampling = Sampling(steps=2)
    expected = kiwi["model"].generate(PROMPT, frames, None, sampling)
    assert np.array_equal(model.generate(PROMPT, frames, None, sampling), expected)
    folder = next(cache.iterdir())
    stamp = (folder / "model_index.json").stat().st_mtime_ns
    reloaded = load_checkpoint(path, kiwi["base"], kiwi["qwen"], cache=cache)
    assert (folder / "model_index.json").stat().st_mtime_ns == stamp  # no second conversion
    assert np.array_equal(reloaded.generate(PROMPT, frames, None, sampling), expected)


def test_unknown_and_unpaired_keys_are_refused_by_name(kiwi):
    state = diffsynth_state(kiwi["model"])
    with pytest.raises(CheckpointError, match="mllm.mystery_head.weight"):
        sort_checkpoint({**state, "mllm.mystery_head.weight": torch.zeros(2)})
    with pytest.raises(CheckpointError, match="blocks.0.self_attn.q.lora_"):
        sort_checkpoint({**state, "dit.blocks.0.self_attn.q.lora_A.default.weight": torch.zeros(2, 24)})
    sorted_ = sort_checkpoint({f"pipe.{k}": v for k, v in state.items()})  # the trainer's "pipe." prefix
    assert len(sorted_.dit) == len(kiwi["model"].transformer.state_dict()) and "connector.2.weight" in sorted_.encoder


def test_cli_generates_with_the_protocol_and_two_shards_equal_one(kiwi, demo_root, tmp_path):
    runs = tmp_path / "runs"
    spec = f"kiwi-edit:{kiwi['folder']}"
    assert (
        main(
            [
                "infer",
                "--bench",
                "demo",
                "--model",
                spec,
                "--limit",
                "3",
                "--runs-dir",
                str(runs),
                "--run-name",
                "one",
                *SMALL,
            ]
        )
        == 0
    )
    outputs = sorted((runs / "one" / "outputs").rglob("*.mp4"))
    assert len(outputs) == 3
    info = probe(outputs[0])
    assert (info.width, info.height, info.num_frames, info.fps) == (64, 32, 5, 15.0)  # 448x256 in a 4096-pixel budget
    for shard in ("0/2", "1/2"):
        assert (
            main(
                [
                    "infer",
                    "--bench",
                    "demo",
                    "--model",
                    spec,
                    "--limit",
                    "3",
                    "--runs-dir",
                    str(runs),
                    "--run-name",
                    "sharded",
                    "--shard",
                    shard,
                    *SMALL,
                ]
            )
            == 0
        )
    for path in outputs:
        other = runs / "sharded" / "outputs" / path.relative_to(runs / "one" / "outputs")
        assert np.array_equal(read_frames(path), read_frames(other))
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in read_jsonl(runs / "one" / "inference.jsonl"))


def test_reference_mode_gets_its_own_run(kiwi, demo_root, tmp_path):
    runs = tmp_path / "runs"
    spec = f"kiwi-edit:{kiwi['folder']}"
    args = ["infer", "--bench", "demo", "--model", spec, "--ids", "Demo_time_000", "--runs-dir", str(runs), *SMALL]
    assert main(args) == 0 and main([*args, "--reference"]) == 0
    plain, ref = sorted(runs.iterdir())
    assert ref.name == plain.name + "-ref"
    assert not np.array_equal(*(read_frames(next(run.rglob("*_edited.mp4"))) for run in (plain, ref)))


def test_refused_sources_and_options_stop_with_one_line(tmp_path, capsys):
    (tmp_path / "kiwi.pth").write_bytes(b"not read")
    assert main(["infer", "--model", f"kiwi-sparkle:{tmp_path / 'kiwi.pth'}", "--runs-dir", str(tmp_path)]) == 2
    assert "pickle checkpoints are refused" in capsys.readouterr().err
    assert main(["infer", "--model", "kiwi-edit", "--model-option", "step=3", "--runs-dir", str(tmp_path)]) == 2
    assert "Did you mean steps" in capsys.readouterr().err
    assert (
        main(
            [
                "infer",
                "--bench",
                "demo",
                "--limit",
                "1",
                "--model",
                f"kiwi-edit:{tmp_path / 'nothing'}",
                "--runs-dir",
                str(tmp_path),
            ]
        )
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err
