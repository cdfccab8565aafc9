"""Our Wan2.2-Fun-Control renderer on a tiny random model laid out as the release: the control video
steers the output, a seed fixes it, both experts take part, and a broken checkpoint fails in one line.
(Parity with VideoX-Fun's own pipeline on the same weights: ``benchmarks/fun_control_parity.py``.)"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from sparkle_bench.testing.tiny_fun_control import tiny_fun_control


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return tiny_fun_control(tmp_path_factory.mktemp("fun"))


def spec(tiny, **changes) -> dict:
    model, parts = tiny
    return {
        "kind": "fun_control",
        "model": str(model),
        "parts": str(parts),
        "steps": 2,
        "guidance": 4.0,
        "shift": 5.0,
        "boundary": 0.9,
        "negative_prompt": "blurry",
        "reference": False,
        **changes,
    }


def inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    control = np.zeros((5, 32, 48, 3), np.uint8)
    control[:, 8:24, 10 + seed * 4 : 30 + seed * 4] = 255  # a white box outline moving with the seed
    control[:, 10:22, 12 + seed * 4 : 28 + seed * 4] = 0
    return control, rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)


def test_fun_control_follows_its_control_video_its_seed_and_both_experts(tiny):
    from sparkle_bench.synth.fun_control.sampler import Sampling, render
    from sparkle_bench.synth.generators import Renderer

    renderer = Renderer(spec(tiny), "cpu")
    control, first = inputs()
    video = renderer.render(control, first, "Put the subject on a beach.", seed=7)
    assert video.shape == (5, 32, 48, 3) and video.dtype == np.uint8 and video.std() > 1
    assert np.array_equal(
        video, renderer.render(control, first, "Put the subject on a beach.", seed=7)
    )  # same seed, same video
    other = renderer.render(inputs(1)[0], first, "Put the subject on a beach.", seed=7)
    assert np.abs(other.astype(int) - video).mean() > 0.5  # the control video changes the output

    parts = renderer.backend.parts
    base = Sampling(
        steps=2, guidance=4.0, shift=5.0, boundary=0.9, seed=7, negative_prompt="blurry"
    )  # 1000 -> high, 833 -> low
    assert np.array_equal(render(parts, control, first, "Put the subject on a beach.", base), video)
    variants = [
        dataclasses.replace(base, **change)
        for change in ({"boundary": 0.0}, {"boundary": 1.1}, {"reference": True}, {"seed": 8})
    ]
    outputs = [render(parts, control, first, "Put the subject on a beach.", v).tobytes() for v in variants]
    assert (
        len({video.tobytes(), *outputs}) == 5
    )  # high expert only, low only, the start image as reference, another seed


def test_a_fun_control_folder_that_does_not_fit_fails_in_one_line(tiny, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from sparkle_bench.synth.fun_control.checkpoint import CheckpointError, load_expert
    from sparkle_bench.synth.generators import Renderer

    model, _ = tiny
    with pytest.raises(CheckpointError, match="no config.json"):
        Renderer(spec(tiny, model=str(tmp_path)), "cpu")
    broken = tmp_path / "broken"
    shutil.copytree(model / "low_noise_model", broken)
    state = load_file(broken / "diffusion_pytorch_model.safetensors")
    del state["blocks.1.ffn.2.weight"]
    save_file(state, broken / "diffusion_pytorch_model.safetensors")
    with pytest.raises(CheckpointError, match="1 parameter.s. missing"):
        load_expert(broken, torch.float32)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "add_ref_conv": False}))
    state["blocks.1.ffn.2.weight"] = load_file(model / "low_noise_model" / "diffusion_pytorch_model.safetensors")[
        "blocks.1.ffn.2.weight"
    ]
    save_file(state, broken / "diffusion_pytorch_model.safetensors")
    transformer, ref_conv, _ = load_expert(broken, torch.float32)  # no ref_conv asked: its weights are left aside
    assert ref_conv is None and transformer.config.in_channels == 52
    with pytest.raises(ValueError, match="kind 'wan'"):
        Renderer(spec(tiny, kind="wan"), "cpu")
