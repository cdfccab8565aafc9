"""Real-world variants of one real edit, as outputs reach a benchmark: other codecs, containers, bit
depths, rates, sizes, orientations and broken files, each made from a real clip (downscaled to
320x180, 33 frames, so the whole corpus stays cheap) and each with its expected outcome. A new
case is one line of ``CASES``."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from sparkle_bench.bench import Sample
from sparkle_bench.masks import load_mask, resize_mask, save_mask
from sparkle_bench.metrics import DEFAULT_METRICS, load_metrics
from sparkle_bench.pair import load_pair, match_frames
from sparkle_bench.runner import score_sample
from sparkle_bench.video import VideoError, VideoInfo, _read_decord, probe, read_frames

CLIP, FRAMES, SIZE, FPS = "Sparkle_time_000028", 33, (320, 180), 16
AV1_ENCODER = next((c for c in ("libsvtav1", "libaom-av1", "librav1e") if c in av.codecs_available), None)


def encode(
    path: Path,
    frames: np.ndarray,
    fps: float = FPS,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    fmt: str | None = None,
    options: dict | None = None,
    times: list[float] | None = None,
    rotation: int = 0,
    audio: bool = False,
    faststart: bool = False,
) -> Path:
    """Write RGB frames with PyAV: any codec/container/pixel format, explicit presentation ``times``
    (seconds: variable frame rate), a display rotation (degrees counterclockwise, as phones store
    it; the frames are stored turned back), an audio track, the index first (``faststart``)."""
    container = av.open(str(path), "w", format=fmt, options={"movflags": "faststart"} if faststart else {})
    stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
    if times is not None:
        stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
    stored = np.rot90(frames, -rotation // 90, axes=(1, 2)) if rotation else frames
    stream.height, stream.width = stored.shape[1:3]
    stream.pix_fmt, stream.options = pix_fmt, dict(options or {})
    if rotation:
        stream.set_display_rotation(rotation)
    sound = container.add_stream("aac", rate=48000) if audio else None
    for i, image in enumerate(stored):
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        if times is not None:
            frame.pts, frame.time_base = round(times[i] * 1000), Fraction(1, 1000)
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
    if sound is not None:
        samples = 48000 * len(frames) // int(fps)
        for start in range(0, samples, 1024):
            chunk = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            container.mux(sound.encode(chunk))
        container.mux(sound.encode())
    container.close()
    return path


def _half(path: Path) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _garbled(path: Path) -> Path:
    """An H.264 mp4 whose index is intact but whose coded frames are noise: no decoder reads it."""
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    data[start:] = np.random.default_rng(0).integers(0, 256, len(data) - start, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    return path


def _jittered(count: int) -> list[float]:
    """``count`` frame times spread over the clip's duration at irregular steps (+-40% of a step)."""
    step = FRAMES / FPS / count
    jitter = np.random.default_rng(1).uniform(-0.4, 0.4, count) * step
    jitter[0] = 0
    return list(np.round(np.arange(count) * step + jitter, 3))


def _at(frames: np.ndarray, times: list[float]) -> np.ndarray:
    """The clip's frames shown at ``times`` (each time's nearest source frame)."""
    return frames[np.minimum(np.round(np.asarray(times) * FPS).astype(int), len(frames) - 1)]


def _resize(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([cv2.resize(f, size, interpolation=cv2.INTER_AREA) for f in frames])


H264 = {"options": {"crf": "17"}}
X265 = {"crf": "14", "x265-params": "log-level=none"}
# How far an ok variant's scores may be from the h264 original's: re-encoding noise (3x the largest
# change measured over these codecs), and resampling (other sizes, other frame times).
NOISE = {
    "fg_psnr": 0.6,
    "fg_ssim": 0.06,
    "fg_motion": 0.01,
    "bg_change": 0.005,
    "bg_dynamics": 0.25,
    "bg_static": 0.0,
    "bg_flicker": 0.003,
}
RESAMPLED = NOISE | {"fg_psnr": 1.5, "fg_ssim": 0.2, "fg_motion": 0.3, "bg_change": 0.01}
VFR_TIMES = _jittered(25)
# name: (how to make it from the edited frames `f` into path `p`, outcome, score tolerances or a phrase of the reason).
# Outcomes: ok (scored, no flag, every score within its tolerance of the h264 original's), short / orientation
# (scored and flagged, the flag's reason contains the phrase), failed (the reason contains the phrase).
CASES = {
    "h264": (lambda f, p: encode(p, f, **H264), "ok", NOISE),
    "hevc-8bit": (lambda f, p: encode(p, f, codec="libx265", options=X265), "ok", NOISE),
    "hevc-10bit": (lambda f, p: encode(p, f, codec="libx265", pix_fmt="yuv420p10le", options=X265), "ok", NOISE),
    "vp9-webm-named-mp4": (
        lambda f, p: encode(p, f, codec="libvpx-vp9", fmt="webm", options={"crf": "20", "b": "0"}),
        "ok",
        NOISE,
    ),
    "prores-mov": (
        lambda f, p: encode(p.with_suffix(".mov"), f, codec="prores_ks", pix_fmt="yuv422p10le"),
        "ok",
        NOISE,
    ),
    "mjpeg-avi": (
        lambda f, p: encode(
            p.with_suffix(".avi"), f, codec="mjpeg", pix_fmt="yuvj420p", options={"qmin": "1", "qmax": "2"}
        ),
        "ok",
        NOISE,
    ),
    "av1": (lambda f, p: encode(p, f, codec=AV1_ENCODER, options={"crf": "20", "preset": "10"}), "ok", NOISE),
    "h264-444": (lambda f, p: encode(p, f, pix_fmt="yuv444p", **H264), "ok", NOISE),
    "audio-track": (lambda f, p: encode(p, f, audio=True, **H264), "ok", NOISE),
    "30fps-same-frames": (lambda f, p: encode(p, f, fps=30, **H264), "ok", NOISE),  # x264's rate control reads the rate
    "doubled-32fps": (lambda f, p: encode(p, np.repeat(f, 2, axis=0), fps=32, **H264), "ok", NOISE),
    "vfr-jittered-25-frames": (lambda f, p: encode(p, _at(f, VFR_TIMES), times=VFR_TIMES, **H264), "ok", RESAMPLED),
    "rotated-display-matrix": (lambda f, p: encode(p, f, rotation=90, **H264), "ok", NOISE),
    "640x360": (lambda f, p: encode(p, _resize(f, (640, 360)), **H264), "ok", RESAMPLED),
    "odd-319x179": (lambda f, p: encode(p, _resize(f, (319, 179)), pix_fmt="yuv444p", **H264), "ok", RESAMPLED),
    "17-of-33-frames": (lambda f, p: encode(p, f[:17], **H264), "short", "covers 17 of the protocol's 33"),
    "1-frame": (lambda f, p: encode(p, f[:1], **H264), "short", "too few to measure motion"),
    "portrait": (
        lambda f, p: encode(p, np.ascontiguousarray(f[:, :, 110:210]), **H264),
        "orientation",
        "portrait 100x180",
    ),
    "zero-byte": (lambda f, p: p.write_bytes(b"") or p, "failed", "zero-byte"),
    "text": (lambda f, p: (p.write_text("this is not a video\n" * 50), p)[1], "failed", "corrupt or not a video"),
    "half-written": (lambda f, p: _half(encode(p, f, **H264)), "failed", "cannot open"),  # no index yet
    "half-written-faststart": (lambda f, p: _half(encode(p, f, faststart=True, **H264)), "failed", "truncated"),
    "garbled-h264": (lambda f, p: _garbled(encode(p, f, faststart=True, **H264)), "failed", "h264 video in a mov,mp4"),
    "symlink": (lambda f, p: (os.symlink(encode(p.with_name("target.mp4"), f, **H264), p), p)[1], "ok", NOISE),
    "dangling-symlink": (lambda f, p: (os.symlink(p.with_name("gone.mp4"), p), p)[1], "failed", "file not found"),
}


@pytest.fixture(scope="module")
def clip(real_dir, tmp_path_factory) -> dict:
    """A real source and its real edit at 320x180, 33 frames, 16 fps, with the source's mask."""
    root = tmp_path_factory.mktemp("variants")
    source = _resize(read_frames(real_dir / "pairs" / f"{CLIP}_source.mp4", None, range(FRAMES)), SIZE)
    edited = _resize(read_frames(real_dir / "pairs" / f"{CLIP}_edited.mp4", None, range(FRAMES)), SIZE)
    encode(root / "source.mp4", source, **H264)
    save_mask(root / "mask.npz", resize_mask(load_mask(real_dir / "masks" / f"{CLIP}_source.npz")[:FRAMES], SIZE))
    sample = Sample(id=CLIP, theme="time", prompt="Put the subject on a windy beach.", source=root / "source.mp4")
    encode(root / "reference.mp4", edited, **H264)
    return {"root": root, "edited": edited, "sample": sample, "mask": root / "mask.npz"}


def score(clip: dict, path: Path) -> dict:
    masks = clip["root"] / "masks"
    if not masks.is_dir():
        (masks / "time").mkdir(parents=True)
        os.link(clip["mask"], masks / "time" / f"{CLIP}.npz")
    return score_sample(clip["sample"], path, load_metrics(DEFAULT_METRICS), masks, 180)


@pytest.fixture(scope="module")
def reference(clip) -> dict:
    record = score(clip, clip["root"] / "reference.mp4")
    assert record["status"] == "ok" and record["flags"] == {} and record["metrics"]["fg_psnr"] > 15
    return record


@pytest.mark.parametrize("name", list(CASES))
def test_variant(name, clip, reference, tmp_path):
    make, outcome, expected = CASES[name]
    if name == "av1" and AV1_ENCODER is None:
        pytest.skip("PyAV's FFmpeg has no AV1 encoder (libsvtav1, libaom-av1, librav1e)")
    path = make(clip["edited"], tmp_path / "edited.mp4")
    record = score(clip, path)
    if outcome == "failed":
        assert record["status"] == "failed" and expected in record["reason"] and "\n" not in record["reason"], record
        return
    assert record["status"] == "ok", record
    if outcome != "ok":
        assert list(record["flags"]) == [outcome] and expected in record["flags"][outcome], record["flags"]
        return
    assert record["flags"] == {}, record["flags"]
    got, want = record["metrics"], reference["metrics"]
    off = {m: round(got[m] - want[m], 4) for m in expected if abs(got[m] - want[m]) > expected[m]}
    assert not off, f"scores off the h264 original's by {off}"


@pytest.mark.skipif(AV1_ENCODER is None, reason="PyAV's FFmpeg has no AV1 encoder")
def test_av1_is_read_by_the_fallback_decoder(clip, tmp_path):
    """decord 0.6 cannot open AV1; the PyAV path reads it as what it is (not 'corrupt')."""
    path = encode(tmp_path / "av1.mp4", clip["edited"][:5], codec=AV1_ENCODER, options={"crf": "20", "preset": "10"})
    with pytest.raises(VideoError):
        _read_decord(path, None, None)
    frames = read_frames(path, (160, 90))
    assert frames.shape == (5, 90, 160, 3)
    assert np.abs(frames.astype(float) - _resize(clip["edited"][:5], (160, 90))).mean() < 3


def test_both_decoders_give_the_same_frames(clip, tmp_path):
    """The PyAV fallback matches decord frame for frame: indices, resize on decode, RGB, rotation."""
    from sparkle_bench.video import _read_pyav

    for rotation in (0, 90):
        path = encode(tmp_path / f"r{rotation}.mp4", clip["edited"], rotation=rotation, **H264)
        info = probe(path)
        assert (info.width, info.height, info.rotation) == (320, 180, rotation)
        for size in (None, (160, 90), (250, 140)):
            fast, fallback = _read_decord(path, size, [0, 7, 32, 8]), _read_pyav(path, size, [0, 7, 32, 8], info)
            diff = np.abs(fast.astype(int) - fallback.astype(int))
            assert fast.shape == fallback.shape, (rotation, size)
            assert diff.mean() <= 0.01 and diff.max() <= 2, (rotation, size, diff.mean(), diff.max())


def test_rotation_is_shown_as_players_show_it(clip, tmp_path):
    """A file stored portrait with a 90-degree display matrix reads as the landscape frames."""
    path = encode(tmp_path / "rot.mp4", clip["edited"][:3], rotation=90, **H264)
    with av.open(str(path)) as container:
        assert (container.streams.video[0].width, container.streams.video[0].height) == (180, 320)  # stored portrait
    assert np.abs(read_frames(path).astype(float) - clip["edited"][:3]).mean() < 3  # x264 noise only


def test_variable_frame_rate_is_aligned_by_timestamps(clip, tmp_path):
    """25 frames at jittered times over the clip's 33-frame span: each source frame is matched to
    the edited frame shown at its moment, not by index or by an average rate."""
    path = encode(tmp_path / "vfr.mp4", _at(clip["edited"], VFR_TIMES), times=VFR_TIMES, **H264)
    info = probe(path)
    assert info.num_frames == 25 and info.times is not None and np.allclose(info.times, VFR_TIMES, atol=1e-3)
    assert abs(info.fps - 24 / VFR_TIMES[-1]) < 1e-3  # the mean rate over the timestamps
    src_idx, edt_idx, notes = match_frames(VideoInfo(320, 180, FRAMES, FPS), info)
    nearest = [int(np.argmin(np.abs(np.asarray(VFR_TIMES) - i / FPS))) for i in src_idx]
    assert len(src_idx) == FRAMES and list(edt_idx) == nearest and "variable frame rate" in notes[0]
    assert list(edt_idx) != list(np.round(src_idx * 25 / FRAMES).astype(int))  # what a constant rate would have matched
    pair = load_pair(clip["sample"].source, path, None, 90)
    assert pair.flags == {}


def test_decoding_fails_naming_codec_and_container(clip, tmp_path):
    path = _garbled(encode(tmp_path / "bad.mp4", clip["edited"][:5], faststart=True, **H264))
    with pytest.raises(VideoError) as error:
        read_frames(path)
    assert "h264" in str(error.value) and "mov,mp4" in str(error.value)
