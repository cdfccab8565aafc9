import numpy as np
import pytest

from sparkle_bench.demo import build_demo_bench, demo_clips, render_source, source_background, subject_mask
from sparkle_bench.masks import load_mask, save_mask
from sparkle_bench.pair import match_frames, match_geometry
from sparkle_bench.video import VideoError, VideoInfo, probe, read_frames, write_video


def test_demo_masks_equal_the_drawn_subject(demo_root):
    for clip in demo_clips():
        mask = load_mask(demo_root / "masks" / clip.theme / f"{clip.id}.npz")
        assert mask.shape == (clip.num_frames, 256, 448)
        assert 33 <= clip.num_frames <= 49
        for t in (0, clip.num_frames // 2, clip.num_frames - 1):
            assert np.array_equal(mask[t], subject_mask(clip, t))


def test_demo_video_shows_subject_inside_mask_and_room_outside(demo_root):
    clip = demo_clips()[4]
    frames = read_frames(demo_root / "source_videos" / clip.theme / f"{clip.id}.mp4")
    mask = load_mask(demo_root / "masks" / clip.theme / f"{clip.id}.npz")
    room = source_background(clip).astype(float)
    err = np.abs(frames.astype(float) - room[None])
    assert err[~mask].mean() < 4  # only codec noise outside the subject
    assert err[mask].mean() > 20  # the subject differs from the room behind it


def test_demo_is_deterministic(tmp_path):
    a, b = build_demo_bench(tmp_path / "a"), build_demo_bench(tmp_path / "b")
    for rel in (
        "time_bench.csv",
        "time_metadata.jsonl",
        "masks/time/Demo_time_001.npz",
        "source_videos/time/Demo_time_001.mp4",
    ):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_write_read_roundtrip_and_resize_on_decode(tmp_path):
    clip = demo_clips()[0]
    frames, _ = render_source(clip)
    path = tmp_path / "v.mp4"
    write_video(path, frames[:9], fps=15)
    info = probe(path)
    assert (info.width, info.height, info.num_frames, info.fps) == (448, 256, 9, 15.0)
    small = read_frames(path, size=(224, 128))
    assert small.shape == (9, 128, 224, 3)
    assert np.abs(read_frames(path).astype(float) - frames[:9]).mean() < 3


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 100])
def test_unreadable_videos_raise_one_line(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError) as info:
        read_frames(path)
    assert "\n" not in str(info.value) and "bad.mp4" in str(info.value)


def test_truncated_video_raises(demo_root, tmp_path):
    data = (demo_root / "reference").rglob("*.mp4").__next__().read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError):
        read_frames(path)


def test_mask_roundtrip_matches_sparkle_format(tmp_path):
    mask = np.random.default_rng(0).random((5, 7, 9)) > 0.5
    save_mask(tmp_path / "m.npz", mask)
    with np.load(tmp_path / "m.npz") as data:  # Sparkle's own unpacking recipe
        shape = tuple(int(s) for s in data["shape"])
        unpacked = np.unpackbits(data["mask"])[: np.prod(shape)].reshape(shape).astype(bool)
    assert np.array_equal(unpacked, mask) and np.array_equal(load_mask(tmp_path / "m.npz"), mask)


def test_frame_matching_rules():
    src = VideoInfo(1280, 720, 81, 16.0)
    same_count = match_frames(src, VideoInfo(1280, 704, 81, 15.0))
    assert np.array_equal(same_count[1], np.arange(81))
    assert any("matched by index" in n for n in same_count[2])
    region, notes = match_geometry(src, VideoInfo(1280, 704, 81, 15.0))  # Kiwi's crop: rows 8-712 of the source
    assert region == (slice(8, 712), slice(0, 1280)) and "1280x704" in notes[0]
    cut = match_frames(src, VideoInfo(1280, 720, 61, 16.0))
    assert len(cut[0]) == 61 and "truncated to 61" in cut[2][0]
    src_idx, edt_idx, notes = match_frames(src, VideoInfo(1280, 720, 41, 8.0))
    assert len(src_idx) == 81 and edt_idx[2] == 1 and edt_idx[-1] == 40 and "timestamp" in notes[0]
