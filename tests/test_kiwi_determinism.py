"""The same command gives the same video, bit for bit, on CPU.

The frames were always the same; the mp4 was not: x264's AVX-512 code reads memory it never wrote,
so the same frames encoded differently depending on what the process's heap held (a CLI run, after
loading a model, differs from run to run). ``write_video`` caps x264 at SSE2, whose output is the
same computation without that read."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from sparkle_bench.cli import main
from sparkle_bench.models.kiwi.folders import save_folder
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.video import read_frames, write_video


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_frames_same_bytes_whatever_the_heap_holds(tmp_path):
    rng = np.random.default_rng(1)
    t, y, x = np.arange(5)[:, None, None], np.arange(256)[None, :, None], np.arange(448)[None, None, :]
    wave = 128 + 60 * np.sin((x + 9 * t) / 17.0) * np.cos((y - 5 * t) / 23.0) + rng.normal(0, 25, (5, 256, 448))
    frames = np.clip(np.stack([wave, np.roll(wave, 7, 2), 255 - wave], -1), 0, 255).astype(np.uint8)
    rng = np.random.default_rng(0)
    digests = set()
    for attempt in range(12):
        junk = [rng.integers(0, 256, int(rng.integers(1_000, 400_000)), dtype=np.uint8) for _ in range(16)]
        del junk[::2]  # freed blocks of random bytes: what the encoder's scratch memory is made of next
        write_video(tmp_path / "v.mp4", frames, 15.0, crf=25)
        digests.add(_digest(tmp_path / "v.mp4"))
    assert len(digests) == 1  # uncapped (X264_REPRODUCIBLE emptied) this loop gave 4 different files


@pytest.fixture(scope="module")
def kiwi_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("kiwi-det")
    return save_folder(tiny_kiwi_model(root), root / "folder")


def test_the_same_cli_command_twice_gives_identical_videos(kiwi_folder, demo_root, tmp_path):
    outputs = []
    for run in ("first", "second"):
        args = [
            "infer",
            "--bench",
            "demo",
            "--model",
            f"kiwi-edit:{kiwi_folder}",
            "--ids",
            "Demo_location_000",
            "--runs-dir",
            str(tmp_path / run),
            "--model-option",
            "steps=2",
            "--model-option",
            "max_frames=5",
        ]
        assert main(args) == 0
        (output,) = (tmp_path / run).rglob("*_edited.mp4")
        outputs.append(output)
    assert read_frames(outputs[0]).shape == (5, 256, 448, 3)  # the demo's own size: the protocol keeps it
    assert _digest(outputs[0]) == _digest(outputs[1])
