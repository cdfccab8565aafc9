"""Upstream's recipe, setting by setting, against what upstream's code computes (torch's ConstantLR
stepped as accelerate steps it, the bf16 timestep lookup of DiffSynth's FlowMatchScheduler,
torchvision's resize-then-crop), and a run from a DiffSynth start: its Qwen LoRA continued and
exported as LoRA pairs in bf16 (fp32 masters in the resume state), with its bases recorded in kiwi.json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed.checkpoint as dcp
from PIL import Image
from safetensors.torch import load_file, save_file
from torch import nn

from sparkle_bench.models.kiwi.checkpoints import diffsynth_state
from sparkle_bench.models.kiwi.sampler import FlowSchedule
from sparkle_bench.models.kiwi.sidecar import fingerprint
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.train.config import TrainConfig, load_config
from sparkle_bench.train.data import resize_crop
from sparkle_bench.train.model import FlowMatchingObjective, lr_factor

from .test_train import config_file, pairs  # noqa: F401 (fixture)

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")


@pytest.mark.parametrize("processes", [1, 2, 8])
def test_constant_schedule_is_torch_constantlr_stepped_once_per_process(processes):
    optimizer = torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-5)
    scheduler = torch.optim.lr_scheduler.ConstantLR(optimizer)  # upstream: ConstantLR(optimizer), defaults
    expected = []
    for _ in range(8):
        expected.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        for _ in range(processes):  # accelerate's AcceleratedScheduler: num_processes steps per optimizer step
            scheduler.step()
    factor = lr_factor(TrainConfig(), processes)
    assert [1e-5 * factor(k) for k in range(8)] == pytest.approx(expected)
    assert expected[0] == pytest.approx(1e-5 / 3)  # the check can fail: the first step runs at lr/3


class _Recorder(nn.Module):
    """A stand-in Kiwi model that records what the objective hands the denoiser."""

    def __init__(self):
        super().__init__()
        self.seen = []
        self.denoiser = self.forward
        self.encoder = lambda prompt, frames: torch.zeros(1, 2, 4)

    def forward(self, noisy, timestep, sigma, context, source):
        self.seen.append((timestep, float(sigma)))
        return noisy


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_the_timestep_is_rounded_to_the_weights_dtype_before_its_sigma_is_looked_up(dtype):
    schedule = FlowSchedule.make(1000)
    recorder = _Recorder()
    objective = FlowMatchingObjective(recorder, timestep_dtype=dtype)
    latent = torch.zeros(1, 2, 1, 2, 2)
    mismatched = 0
    for seed in range(60):
        draw = torch.Generator().manual_seed(seed)
        index = int(torch.randint(0, 1000, (1,), generator=torch.Generator().manual_seed(seed)))
        objective({"prompt": "", "source": None}, draw, source=latent, target=latent)
        timestep, sigma = recorder.seen[-1]
        upstream = schedule.timesteps[index].to(dtype)  # DiffSynth: timesteps[id].to(torch_dtype), then argmin
        assert timestep.dtype == dtype and float(timestep) == float(upstream)
        assert sigma == float(schedule.sigmas[torch.argmin((schedule.timesteps - upstream.float()).abs())])
        mismatched += sigma != float(schedule.sigmas[index])
    assert (mismatched > 0) == (dtype == torch.bfloat16)  # bf16 moves most draws to a neighbouring sigma


def test_resize_crop_is_torchvisions_bilinear_resize_then_centre_crop():
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.functional import center_crop, resize

    frame = np.random.default_rng(0).integers(0, 255, (90, 161, 3), dtype=np.uint8)
    for size in [(128, 64), (64, 64), (96, 160)]:
        image = Image.fromarray(frame)
        scale = max(size[0] / image.width, size[1] / image.height)  # upstream's crop_and_resize
        image = resize(
            image, (round(image.height * scale), round(image.width * scale)), interpolation=InterpolationMode.BILINEAR
        )
        expected = np.asarray(center_crop(image, (size[1], size[0])))
        assert np.array_equal(resize_crop(frame, size), expected)


def test_an_environment_variable_does_not_change_grad_accum(tmp_path, monkeypatch, capsys):
    from sparkle_bench.train.loop import make_accelerator

    monkeypatch.setenv("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", "4")
    config = TrainConfig(grad_accum=3, mixed_precision="no", weights="fp32", out=str(tmp_path), log_with=[])
    accelerator = make_accelerator(config)
    assert accelerator.gradient_accumulation_steps == 3
    assert "ACCELERATE_GRADIENT_ACCUMULATION_STEPS=4 is ignored" in capsys.readouterr().err


@pytest.fixture(scope="module")
def diffsynth_start(tmp_path_factory) -> Path:
    """A tiny stage-2-like DiffSynth checkpoint: full DiT, queries, connector, embedder and Qwen
    LoRA pairs (rank 4) on every q/k/v/o, with kiwi.json naming its bases (an older kiwi.json: absolute paths)."""
    root = tmp_path_factory.mktemp("diffsynth-start")
    model = tiny_kiwi_model(root, pretrained_like=True, num_attention_heads=4, attention_head_dim=64, ffn_dim=256)
    state = diffsynth_state(model)
    g = torch.Generator().manual_seed(5)
    for name, weight in model.encoder.qwen.state_dict().items():
        if name.startswith("model.language_model.") and name.rsplit(".", 2)[-2] in TARGETS and name.endswith(".weight"):
            target = name[: -len(".weight")]
            state[f"mllm.model.{target}.lora_A.default.weight"] = torch.randn(4, weight.shape[1], generator=g) * 0.01
            state[f"mllm.model.{target}.lora_B.default.weight"] = torch.randn(weight.shape[0], 4, generator=g) * 0.01
    (root / "stage2").mkdir()
    save_file(state, root / "stage2" / "model.safetensors")
    (root / "stage2" / "kiwi.json").write_text(json.dumps({"base": str(root / "base"), "mllm": str(root / "qwen")}))
    return root / "stage2" / "model.safetensors"


def test_a_diffsynth_start_continues_its_lora_and_exports_pairs_in_bf16(diffsynth_start, pairs, tmp_path):  # noqa: F811
    config = config_file(
        tmp_path,
        diffsynth_start,
        pairs,
        steps=1,
        save_every=1,
        qwen_lora_rank=64,
        weights="bf16",
        mixed_precision="bf16",
    )  # the recipe's precision (its own process: accelerate's state is per process)
    done = subprocess.run(
        [sys.executable, "-m", "sparkle_bench.cli", "train", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = tmp_path / "run/checkpoints/step-000001"
    exported, started = load_file(checkpoint / "model.safetensors"), load_file(diffsynth_start)
    lora = sorted(k for k in exported if ".lora_" in k)
    assert lora == sorted(k for k in started if ".lora_" in k)  # every start pair, continued at the start's rank 4
    assert not [k for k in exported if k.startswith("mllm.model.") and ".lora_" not in k]  # no merged q/k/v/o
    assert {v.dtype for v in exported.values()} == {torch.bfloat16}
    a = "mllm.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight"
    assert torch.allclose(exported[a].float(), started[a], atol=2e-3)  # the start's LoRA, one small step on
    masters = dcp.FileSystemReader(str(checkpoint / "state/trainable")).read_metadata().state_dict_metadata
    assert masters["model.kiwi.encoder.video_queries"].properties.dtype == torch.float32  # fp32 masters to resume from
    assert not any(".qwen." in k and ".lora_" not in k for k in masters)  # frozen weights are not in the state
    recorded = json.loads((checkpoint / "kiwi.json").read_text())  # found from any folder: test_train_bases.py
    for role, folder in (("base", "base"), ("mllm", "qwen")):
        assert recorded[role]["path"] == str((diffsynth_start.parent.parent / folder).resolve())
        assert (checkpoint / recorded[role]["relative"]).resolve() == (diffsynth_start.parent.parent / folder).resolve()
        assert recorded[role]["fingerprint"] == fingerprint(diffsynth_start.parent.parent / folder)
    assert recorded["start"]["path"] == str(diffsynth_start.resolve())
    loaded = load_config(config, {})
    assert loaded.resize == "resize-crop" and loaded.max_grad_norm == 1.0 and loaded.qwen_max_pixels == 0


def test_the_example_config_is_upstreams_recipe():
    example = load_config(Path(__file__).resolve().parents[1] / "examples" / "train_kiwi_sparkle.toml", {})
    recipe = TrainConfig()
    for name in (
        "start",
        "resize",
        "qwen_max_pixels",
        "lr_schedule",
        "max_grad_norm",
        "weights",
        "lr",
        "weight_decay",
        "grad_accum",
        "batch_size",
        "num_frames",
        "pixel_budget",
        "qwen_lora_rank",
        "dit",
    ):
        assert getattr(example, name) == getattr(recipe, name), name
    assert example.engine == "deepspeed" and example.offload_optimizer  # upstream's ZeRO-2 with CPU offload


def test_deepspeed_is_refused_in_one_line_where_it_cannot_run(tmp_path):
    from sparkle_bench.train.loop import make_accelerator

    config = TrainConfig(engine="deepspeed", mixed_precision="no", weights="fp32", out=str(tmp_path), log_with=[])
    with pytest.raises(ValueError, match=r"needs DeepSpeed: pip install|needs GPUs"):
        make_accelerator(config)
