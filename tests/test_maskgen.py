"""Mask generation: the vote on known masks, the chain with oracle parts, and the real loading code
end to end with tiny random-weight OWLv2 and SAM2 models."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from sparkle_bench.bench import open_bench
from sparkle_bench.cli import main
from sparkle_bench.maskgen.generate import MANIFEST, generate_masks
from sparkle_bench.maskgen.vote import anchor_frames, majority_vote
from sparkle_bench.masks import find_mask, load_mask
from sparkle_bench.video import probe, read_frames


def square(t=3, h=20, w=30, y=5, x=8, size=6):
    mask = np.zeros((t, h, w), dtype=bool)
    mask[:, y : y + size, x : x + size] = True
    return mask


def test_majority_vote_outvotes_a_drifting_pass():
    truth = square()
    drifted = square(x=18)
    assert np.array_equal(majority_vote([truth, truth.copy(), drifted]), truth)
    # a tie is background: only pixels more than half of the passes agree on stay
    assert np.array_equal(majority_vote([truth, drifted]), np.zeros_like(truth))
    both = majority_vote([truth, truth, drifted, drifted | truth])
    assert np.array_equal(both, truth)
    with pytest.raises(ValueError):
        majority_vote([truth, square(t=4)])
    with pytest.raises(ValueError):
        majority_vote([])


def test_anchor_frames_are_about_two_per_second():
    assert anchor_frames(81, 16.0) == list(range(0, 81, 8))
    assert anchor_frames(90, 30.0) == [0, 15, 30, 45, 60, 75]
    assert anchor_frames(5, 1.0) == [0, 1, 2, 3, 4]


class OracleDetector:
    """Boxes of the demo's exact subject masks; it knows a video by its anchor frames' bytes."""

    name = "oracle"

    def __init__(self, bench, truth, miss=()):
        self.truth, self.by_frame = truth, {}
        for s in bench.samples:
            info = probe(s.source)
            for index, frame in zip(
                anchor_frames(info.num_frames, info.fps),
                read_frames(s.source, indices=anchor_frames(info.num_frames, info.fps)),
            ):
                self.by_frame[hashlib.sha1(frame.tobytes()).hexdigest()] = (s.id, index)
        self.miss = set(miss)

    def boxes(self, frame):
        sample_id, index = self.by_frame[hashlib.sha1(frame.tobytes()).hexdigest()]
        if sample_id in self.miss:
            return np.zeros((0, 4), np.float32)
        ys, xs = np.nonzero(self.truth[sample_id][index])
        return np.array([[xs.min(), ys.min(), xs.max(), ys.max()]], np.float32)


class OraclePropagator:
    """Every pass is the true mask except the first, which drifts right: the vote must remove it."""

    def __init__(self, truth):
        self.truth, self.calls = truth, []

    def passes(self, video, anchors):
        self.calls.append(video.stem)
        truth = self.truth[video.stem]
        return [np.roll(truth, 25, axis=2)] + [truth.copy() for _ in list(anchors)[1:]]


def test_generate_masks_votes_caches_and_regenerates(demo_root, tmp_path, capsys):
    bench = open_bench("demo")
    truth = {s.id: load_mask(find_mask(bench.masks_dir, s.theme, s.id)) for s in bench.samples}
    missed = bench.samples[3]
    detector, propagator = OracleDetector(bench, truth, miss={missed.id}), OraclePropagator(truth)
    out = tmp_path / "masks"

    counts = generate_masks(bench, out, detector, propagator, {"detector": "oracle"})
    assert (counts.made, counts.cached, counts.failed) == (11, 0, 1)
    assert f"mask failed {missed.theme}/{missed.id}: no foreground subject" in " ".join(capsys.readouterr().err.split())
    manifest = json.loads((out / MANIFEST).read_text())
    assert f"{missed.theme}/{missed.id}.npz" in manifest["failed"]
    for s in bench.samples:
        if s.id != missed.id:
            assert np.array_equal(load_mask(out / s.theme / f"{s.id}.npz"), truth[s.id])
            assert manifest["masks"][f"{s.theme}/{s.id}.npz"]["passes"] == len(anchor_frames(*_frames_fps(s.source)))

    # second run: only the failed video is tried again, and a damaged mask is made anew
    damaged = bench.samples[0]
    (out / damaged.theme / f"{damaged.id}.npz").write_bytes(b"junk")
    propagator.calls.clear()
    counts = generate_masks(bench, out, detector, propagator, {"detector": "oracle"})
    assert (counts.made, counts.cached, counts.failed) == (1, 10, 1)
    assert propagator.calls == [damaged.id]
    # other settings: nothing is reused
    propagator.calls.clear()
    assert generate_masks(bench, out, detector, propagator, {"detector": "other"}).made == 11


def _frames_fps(path):
    info = probe(path)
    return info.num_frames, info.fps


def test_masks_command_runs_tiny_random_owlv2_and_sam2(demo_root, tmp_path):
    pytest.importorskip("sam2")
    from sparkle_bench.testing.tiny_models import tiny_owlv2, tiny_sam2

    detector = tiny_owlv2(tmp_path / "owlv2")
    checkpoint, config = tiny_sam2(tmp_path / "sam2")
    bench = open_bench("demo")
    ids = [bench.samples[0].id, bench.samples[7].id]
    out = tmp_path / "masks"
    args = [
        "masks",
        "--bench",
        "demo",
        "--ids",
        ",".join(ids),
        "--out",
        str(out),
        "--detector",
        str(detector),
        "--sam2",
        str(checkpoint),
        "--sam2-config",
        str(config),
        "--box-threshold",
        "0",
        "--max-boxes",
        "2",
        "--device",
        "cpu",
    ]
    assert main(args) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    for s in bench.samples:
        if s.id in ids:
            info = probe(s.source)
            mask = load_mask(out / s.theme / f"{s.id}.npz")
            assert mask.shape == (info.num_frames, info.height, info.width)
            entry = manifest["masks"][f"{s.theme}/{s.id}.npz"]
            assert entry["passes"] == len(
                anchor_frames(info.num_frames, info.fps)
            )  # threshold 0: boxes on every anchor
            assert entry["shape"] == list(mask.shape)
    assert main(args) == 0  # cached: the manifest's checksums still match
    assert json.loads((out / MANIFEST).read_text())["masks"] == manifest["masks"]
