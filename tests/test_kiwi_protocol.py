"""The official protocol's settings, each checked against upstream's numbers: DiffSynth's VAE tiles
(30x52 latents, stride 15x26, linear ramps), the mp4 quality of ``save_video(quality=5)``, and the
bf16 arithmetic DiffSynth does (pixel scaling and conversion, LoRA merge); each an option."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sparkle_bench.models import AdapterError, load_model
from sparkle_bench.models.kiwi.keymaps import merged
from sparkle_bench.models.kiwi.pipeline import Sampling
from sparkle_bench.models.kiwi.tiling import ramp_mask, tile_starts, tiled
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.video import OFFICIAL_CRF, write_video


def test_tiles_are_cut_where_upstream_cuts_them():
    assert tile_starts(44, 30, 15) == [0, 15] and tile_starts(80, 52, 26) == [0, 26, 52]  # 1280x704 latents: 6 tiles
    assert tile_starts(704, 480, 240) == [0, 240] and tile_starts(1280, 832, 416) == [0, 416, 832]  # encode, pixels
    assert tile_starts(16, 30, 15) == [0]  # smaller than a tile: one
    mask = ramp_mask(30, 52, (True, False, False, True), (240 // 16, 416 // 16))[0, 0, 0]
    assert mask[0, 0] == pytest.approx(1 / 26) and mask[0, 25] == 1 and mask[0, 51] == 1  # left ramp; right is an edge
    assert mask[29, 40] == pytest.approx(1 / 15) and mask[14, 40] == 1  # bottom ramp over the last 15 rows
    assert mask[29, 0] == pytest.approx(1 / 26)  # the smaller of both ramps


def test_blending_tiles_of_a_local_operation_gives_the_whole():
    data = torch.randn(1, 2, 3, 44, 80, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    calls = []

    def upsample(part):
        calls.append(tuple(part.shape[-2:]))
        return part.repeat_interleave(16, -2).repeat_interleave(16, -1)

    out = tiled(upsample, data, 16, 2, 3)
    assert calls == [(30, 52), (30, 52), (30, 28), (29, 52), (29, 52), (29, 28)]
    assert torch.allclose(out, upsample(data), atol=1e-12)  # weights renormalised: overlaps agree, so no seam
    shifted = tiled(lambda part: upsample(part) + len(calls), data, 16, 2, 3)  # each tile off by its own constant
    assert not torch.allclose(shifted[..., :, 400:420], shifted[..., :, 400:420].mean())  # ramps blend them


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_kiwi_model(tmp_path_factory.mktemp("kiwi-protocol"))


def test_one_tile_is_the_untiled_decode_and_pixels_round_as_diffsynth_does(model):
    latents = torch.randn(1, 48, 2, 2, 4, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(model.decode(latents, "diffsynth"), model.decode(latents, "off"))
    model.to(torch.bfloat16)
    try:
        z = latents.to(torch.bfloat16) / model.latent_scale.to(torch.bfloat16) + model.latent_mean.to(torch.bfloat16)
        video = model.vae.decode(z).sample[0].permute(1, 2, 3, 0)
        in_bf16 = ((video + 1.0) * 127.5).clamp(0, 255).to(torch.uint8).numpy()
        assert np.array_equal(model.decode(latents, "off", "diffsynth"), in_bf16)
        in_float = model.decode(latents, "off", "float32")
        assert 0 < np.abs(in_float.astype(int) - in_bf16).mean() < 1.5  # bf16 rounds before truncating
        frames = np.random.default_rng(0).integers(0, 256, (5, 32, 64, 3), dtype=np.uint8)
        assert not torch.equal(model.encode(frames, "off", "diffsynth"), model.encode(frames, "off", "float32"))
    finally:
        model.to(torch.float32)


def test_lora_merge_in_the_weights_dtype_rounds_twice():
    g = torch.Generator().manual_seed(0)
    weight, down, up = (
        torch.randn(64, 64, generator=g).bfloat16(),
        torch.randn(8, 64, generator=g),
        torch.randn(64, 8, generator=g),
    )
    diffsynth = merged(weight, down, up, 1.0, in_dtype=True)
    assert torch.equal(diffsynth, weight + up.bfloat16() @ down.bfloat16())
    assert not torch.equal(diffsynth, merged(weight, down, up, 1.0))  # float32 sum, rounded once


def test_the_official_mp4_quality_and_the_options(tmp_path):
    assert OFFICIAL_CRF == int((1 - 5 / 10) * 51)  # imageio-ffmpeg: quality q -> crf int((1 - q/10) * 51)
    frames = np.random.default_rng(0).integers(0, 256, (5, 64, 64, 3), dtype=np.uint8)
    write_video(tmp_path / "17.mp4", frames, 15.0, crf=17)
    adapter = load_model("kiwi-sparkle", {})
    assert (adapter.settings.tiling, adapter.settings.rounding, adapter.settings.crf) == (
        "diffsynth",
        "diffsynth",
        OFFICIAL_CRF,
    )
    write_video(tmp_path / "25.mp4", frames, 15.0, crf=adapter.settings.crf)
    assert (tmp_path / "25.mp4").stat().st_size < (tmp_path / "17.mp4").stat().st_size
    assert load_model("kiwi-sparkle", {"crf": "17", "tiling": "off", "rounding": "float32"}).settings.crf == 17
    with pytest.raises(AdapterError, match="tiling='tiles': expected one of diffsynth, diffusers, off"):
        load_model("kiwi-sparkle", {"tiling": "tiles"})
    assert Sampling().tiling == "diffsynth" and Sampling().rounding == "diffsynth"
