"""``sparkle-bench train-cache``: every pair encoded once (latents and a frozen encoder's context),
a re-run encodes nothing, and training from the cache decodes no video yet gives the losses of a
run that decodes every pair."""

from __future__ import annotations

import pytest
from safetensors.torch import load_file

from sparkle_bench.cli import main
from sparkle_bench.train import data

from .test_train import config_file, losses, pairs, start  # noqa: F401 (fixtures)

FROZEN_ENCODER = dict(qwen_lora_rank=0, queries=False, connector=False, steps=2, save_every=2)


def test_training_reads_the_cache_without_decoding(start, pairs, tmp_path, monkeypatch, capsys):  # noqa: F811
    decoded = tmp_path / "decoded"
    decoded.mkdir()
    assert main(["train", str(config_file(decoded, start, pairs, **FROZEN_ENCODER))]) == 0

    cache = tmp_path / "cache"
    cached = tmp_path / "cached"
    cached.mkdir()
    config = config_file(cached, start, pairs, cache_dir=str(cache), **FROZEN_ENCODER)
    assert main(["train-cache", str(config)]) == 0
    entries = sorted(cache.rglob("*.safetensors"))
    assert len(entries) == 2 and set(load_file(entries[0])) == {"source", "target", "context"}
    assert main(["train-cache", str(config)]) == 0  # resumes: nothing left to encode
    assert "0 encoded, 2 already cached" in " ".join(capsys.readouterr().err.split())

    def no_decoding(*args, **kwargs):
        raise AssertionError("a cached pair was decoded")

    monkeypatch.setattr(data, "read_frames", no_decoding)
    monkeypatch.setattr(data, "probe", no_decoding)
    assert main(["train", str(config)]) == 0
    first, second = losses(decoded / "run"), losses(cached / "run")
    assert sorted(second) == [1, 2]
    assert [second[s] for s in (1, 2)] == pytest.approx([first[s] for s in (1, 2)], rel=1e-5, abs=1e-7)
