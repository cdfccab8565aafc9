"""Synthesis, weight-free parts on known answers: camera motion and scene cuts on synthetic shots,
stage 1 over a small corpus (and over the real Sparkle sources), Canny fusion, answer parsing,
config digests and the source plan."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from sparkle_bench.cli import main
from sparkle_bench.demo import demo_clips, render_source
from sparkle_bench.masks import load_mask
from sparkle_bench.records import read_jsonl
from sparkle_bench.synth.answers import AnswerError, camera_verdict, grounded_objects, relocated, sentence, to_pixels
from sparkle_bench.synth.camera import camera_motion, scene_cuts
from sparkle_bench.synth.config import ConfigError, load_config
from sparkle_bench.synth.edges import canny, fuse_edges
from sparkle_bench.synth.layout import Layout
from sparkle_bench.synth.ledger import latest_decisions
from sparkle_bench.synth.stage1 import sample_indices
from sparkle_bench.synth.steps import stage_digests
from sparkle_bench.video import probe, read_frames, write_video


def moved(frames: np.ndarray, kind: str, seed: int = 0) -> np.ndarray:
    """The clip as filmed by a camera that pans, zooms, shakes, or stays (static)."""
    count, height, width = frames.shape[:3]
    rng = np.random.default_rng(seed)
    out = []
    for t, frame in enumerate(frames):
        progress = t / max(1, count - 1)
        scale, dx, dy = {
            "static": (1.0, 0.0, 0.0),
            "pan": (1.15, (progress - 0.5) * 0.12 * width, 0.0),
            "zoom": (1.0 + 0.2 * progress, 0.0, 0.0),
            "shake": (1.1, *rng.normal(0, 3, 2)),
        }[kind]
        matrix = np.float32([[scale, 0, (1 - scale) * width / 2 + dx], [0, scale, (1 - scale) * height / 2 + dy]])
        out.append(cv2.warpAffine(frame, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def panned_at_the_end(frames: np.ndarray, share: float) -> np.ndarray:
    """The clip filmed still, then panning sideways over its last ``share`` of frames."""
    count, height, width = frames.shape[:3]
    start = round(count * (1 - share))
    out = []
    for t, frame in enumerate(frames):
        dx = (max(0, t - start) / max(1, count - 1 - start) - 0.5) * 0.12 * width
        matrix = np.float32([[1.15, 0, -0.075 * width + dx], [0, 1.15, -0.075 * height]])
        out.append(cv2.warpAffine(frame, matrix, (width, height), borderMode=cv2.BORDER_REFLECT))
    return np.stack(out)


def small(frames: np.ndarray, width: int = 320) -> np.ndarray:
    height = round(width * frames.shape[1] / frames.shape[2])
    return np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in frames])


@pytest.fixture(scope="module")
def demo_frames() -> list[np.ndarray]:
    return [render_source(clip)[0] for clip in demo_clips()[:4]]


def test_pans_zooms_and_shakes_move_the_camera_a_static_one_does_not(demo_frames):
    for frames in demo_frames[:2]:  # a walking figure over a textured room
        assert camera_motion(small(moved(frames, "static")), 16.0).moving_pairs == 0.0
        for kind in ("pan", "zoom", "shake"):
            motion = camera_motion(small(moved(frames, kind)), 16.0)
            assert motion.moving_pairs > 0.8, (kind, motion)
            assert motion.still < 0.3 and motion.motion > 0.5, (kind, motion)


def test_scene_cut_found_at_the_cut_not_at_a_flash(demo_frames):
    first, second = demo_frames[0], demo_frames[3]
    assert scene_cuts(small(np.concatenate([first[:20], second[:20]]))) == [20]
    assert scene_cuts(small(first)) == []
    flash = first.copy()
    flash[15] = np.clip(flash[15].astype(int) + 120, 0, 255).astype(np.uint8)  # one over-exposed frame is no new shot
    assert scene_cuts(small(flash)) == []


def test_clips_are_cut_to_4k_plus_1_frames_at_16_fps():
    assert sample_indices(81, 16.0, 16.0, 81) == list(range(81))
    thirty = sample_indices(300, 30.0, 16.0, 81)
    assert len(thirty) == 81 and thirty[:4] == [0, 1, 3, 5] and thirty[-1] == 150
    assert sample_indices(40, 16.0, 16.0, 81) == list(range(37))  # 40 frames -> 37 = 4*9 + 1
    assert sample_indices(5, 8.0, 16.0, 81) == [0, 0, 1, 1, 2, 2, 3, 3, 4]  # slow sources repeat frames


def write_corpus(folder: Path, demo_frames: list[np.ndarray]) -> dict[str, str]:
    """Clips with a known stage-1 answer each; returns file name -> expected (status, reason)."""
    folder.mkdir(parents=True)
    write_video(folder / "a_static.mp4", demo_frames[0], 16)
    write_video(folder / "b_pan.mp4", moved(demo_frames[1], "pan"), 16)
    write_video(folder / "c_cut.mp4", np.concatenate([demo_frames[2][:20], demo_frames[3][:20]]), 16)
    write_video(folder / "d_short.mp4", demo_frames[0][:16], 16)
    write_video(folder / "e_small.mp4", small(demo_frames[0], 96), 16)
    (folder / "f_corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    return {
        "a_static": ("accepted", ""),
        "b_pan": ("rejected", "moving_camera"),
        "c_cut": ("rejected", "scene_cut"),
        "d_short": ("rejected", "too_short"),
        "e_small": ("rejected", "too_small"),
        "f_corrupt": ("failed", "VideoError"),
    }


STAGE1_CONFIG = """
out = "out"
[corpus]
path = "clips"
[video]
width = 224
height = 128
max_frames = 33
[stage1]
vlm_check = false
[thresholds.stage1]
min_frames = 25
min_short_side = 128
"""


def test_stage1_decides_every_clip_with_its_reason_and_resumes(tmp_path, demo_frames, capsys):
    expected = write_corpus(tmp_path / "clips", demo_frames)
    config = tmp_path / "synth.toml"
    config.write_text(STAGE1_CONFIG)
    assert main(["synth", "run", str(config), "--stages", "1", "--no-ray"]) == 0
    layout = Layout(tmp_path / "out")
    names = {e["id"]: Path(e["source"]).stem for e in read_jsonl(layout.sources)}
    decided = latest_decisions(layout, 1)
    assert {names[i]: (d["status"], d["reason"]) for i, d in decided.items()} == expected
    assert "failed" in capsys.readouterr().err  # one line for the corrupt clip
    kept = next(i for i, name in names.items() if name == "a_static")
    theme = decided[kept]["theme"]
    video = probe(layout.video(theme, "source_video", kept))
    assert (video.width, video.height, video.num_frames, video.fps) == (224, 128, 33, 16.0)
    frame0 = cv2.cvtColor(cv2.imread(str(layout.artifact(theme, "source_frame0", kept))), cv2.COLOR_BGR2RGB)
    assert (
        np.abs(frame0.astype(int) - read_frames(layout.video(theme, "source_video", kept), indices=[0])[0]).mean() < 4
    )
    assert decided[kept]["data"]["camera"]["moving_pairs"] == 0.0
    cut = next(d for i, d in decided.items() if names[i] == "c_cut")
    assert cut["data"]["cuts"] == [20]

    lines = sum(1 for _ in layout.decisions(1).glob("*.jsonl") for _ in read_jsonl(_))
    assert main(["synth", "run", str(config), "--stages", "1", "--no-ray"]) == 0
    after = sum(1 for p in layout.decisions(1).glob("*.jsonl") for _ in read_jsonl(p))
    assert after == lines + 1  # only the failed clip is tried again

    assert main(["synth", "status", str(config), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    total = next(r for r in status["funnel"] if r["stage"] == 1 and r["theme"] == "all")
    assert (total["in"], total["accepted"], total["rejected"], total["failed"]) == (6, 1, 4, 1)
    assert total["reasons"] == {"VideoError": 1, "moving_camera": 1, "scene_cut": 1, "too_short": 1, "too_small": 1}
    assert {k: status["sources"][k] for k in ("planned", "untried", "duplicates", "finished")} == {
        "planned": 6,
        "untried": 0,
        "duplicates": 0,
        "finished": 4,
    }  # the 4 rejected ones


@pytest.mark.real_clips
def test_real_sparkle_sources_pass_stage1_and_a_panned_one_does_not(real_dir, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    sources = sorted(real_dir.glob("pairs/*_source.mp4")) + sorted(real_dir.glob("openve3m_compare/*_source.mp4"))
    for source in sources:
        (clips / source.name).symlink_to(source)
    frames = read_frames(sources[0], size=(640, 360))
    write_video(clips / "panned.mp4", moved(frames, "pan"), 16)
    write_video(clips / "cut.mp4", np.concatenate([frames[:40], read_frames(sources[3], size=(640, 360))[:41]]), 16)
    for share, source in ((0.30, sources[1]), (0.45, sources[5])):  # still, then a pan over the last 30% / 45%
        write_video(
            clips / f"pan_last_{share:.0%}.mp4", panned_at_the_end(read_frames(source, size=(640, 360)), share), 16
        )
    config = tmp_path / "synth.toml"
    config.write_text(
        'out = "out"\n[corpus]\npath = "clips"\n[video]\nwidth = 256\nheight = 144\n[stage1]\nvlm_check = false\n'
        "[thresholds.stage1]\nmin_short_side = 360\n"
    )  # the made-up clips are written at 640x360
    assert main(["synth", "run", str(config), "--stages", "1", "--no-ray"]) == 0
    layout = Layout(tmp_path / "out")
    names = {e["id"]: Path(e["source"]).name for e in read_jsonl(layout.sources)}
    decisions = {names[i]: d for i, d in latest_decisions(layout, 1).items()}
    decided = {name: (d["status"], d["reason"]) for name, d in decisions.items()}
    assert decided.pop("panned.mp4") == ("rejected", "moving_camera")
    for name in ("pan_last_30%.mp4", "pan_last_45%.mp4"):
        assert decided.pop(name) == ("rejected", "moving_camera"), name
        camera = decisions[name]["data"]["camera"]
        assert camera["moving_pairs"] <= 0.5 and camera["longest_move"] >= 0.75, (
            name,
            camera,
        )  # the run, not the share
    assert decided.pop("cut.mp4") == ("rejected", "scene_cut")
    assert decided == {s.name: ("accepted", "") for s in sources}


def test_a_pan_at_the_end_moves_the_camera_in_one_sustained_run(demo_frames):
    still = camera_motion(small(demo_frames[0]), 16.0)
    assert still.longest_move == 0.0
    for share in (0.30, 0.45):
        late = camera_motion(small(panned_at_the_end(demo_frames[0], share)), 16.0)
        assert late.moving_pairs <= 0.5, late  # the share of moving pairs alone would keep it
        assert late.longest_move >= 0.75, late


def test_a_truncated_file_with_its_index_in_front_is_corrupt(tmp_path, demo_frames):
    import av

    from sparkle_bench.synth.stage1 import coarse

    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w", format="mp4", options={"movflags": "faststart"}) as container:  # the index first
        stream = container.add_stream("libx264", rate=16)
        stream.width, stream.height, stream.pix_fmt = 320, 192, "yuv420p"
        for frame in small(demo_frames[0], 320)[:, :192]:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        container.mux(stream.encode())
    data = whole.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    with av.open(str(whole)) as container:
        packet_ends = sorted(p.pos + p.size for p in container.demux(container.streams.video[0]) if p.size)
    config = tmp_path / "synth.toml"
    config.write_text(STAGE1_CONFIG)
    cfg, layout = load_config(config), Layout(tmp_path / "out")
    record = {"id": "Sparkle_location_000000", "theme": "location", "source": str(whole)}
    assert coarse(record, None, cfg, layout).status == "accepted"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(
        data[: packet_ends[len(packet_ends) // 2]]
    )  # cut after half of the frames: the index still lists all
    assert probe(cut).num_frames < len(packet_ends)
    outcome = coarse({**record, "source": str(cut)}, None, cfg, layout)
    assert (outcome.status, outcome.reason) == ("rejected", "corrupt")
    assert f"lists {len(packet_ends)} frames" in outcome.detail and "truncated" in outcome.detail


@pytest.mark.real_clips
def test_edge_fusion_on_a_real_pair(real_dir):
    source = read_frames(real_dir / "pairs" / "Sparkle_time_000028_source.mp4", size=(320, 180))
    background = read_frames(real_dir / "pairs" / "Sparkle_time_000028_edited.mp4", size=(320, 180))
    mask = load_mask(real_dir / "masks" / "Sparkle_time_000028_source.npz")
    fused = fuse_edges(source, background, mask, dilation=4)
    from sparkle_bench.masks import morph, resize_mask

    inside = morph(resize_mask(mask, (320, 180)), 4)
    assert 0.05 < inside.mean() < 0.9
    assert np.array_equal(fused[inside], canny(source, 100, 200)[inside])
    assert np.array_equal(fused[~inside], canny(background, 100, 200)[~inside])
    assert fused[~inside].any() and fused[inside].any()


def test_canny_fusion_is_source_inside_the_mask_background_outside():
    source = np.zeros((3, 64, 96, 3), np.uint8)
    source[:, 20:44, 30:60] = 255  # a bright box: edges on its outline
    background = np.zeros_like(source)
    for t in range(3):
        cv2.circle(background[t], (20 + 5 * t, 32), 12, (200, 200, 200), -1)
        cv2.circle(background[t], (75, 20), 10, (255, 255, 255), -1)
    mask = np.zeros((3, 32, 48), bool)
    mask[:, 8:24, 12:32] = True  # at half resolution: resized to the frames inside fuse_edges
    fused = fuse_edges(source, background, mask, dilation=3)
    from sparkle_bench.masks import morph, resize_mask

    inside = morph(resize_mask(mask, (96, 64)), 3)
    src_edges, bg_edges = canny(source, 100, 200), canny(background, 100, 200)
    assert np.array_equal(fused, np.where(inside, src_edges, bg_edges))
    assert src_edges[inside].any() and bg_edges[~inside].any()
    assert not (fused & ~inside & src_edges & ~bg_edges).any()  # no source edge leaks outside the mask
    with pytest.raises(ValueError):
        fuse_edges(source, background[:2], mask, dilation=3)


def test_answers_are_read_strictly():
    assert camera_verdict("The shelves stay put.\n**Camera: static**") is True
    assert camera_verdict("Camera: static at first... on reflection\nCamera: moving") is False
    with pytest.raises(AnswerError):
        camera_verdict("It looks steady to me.")
    assert (
        sentence('Instruction: "Replace the background with a snowy street."\n\nNotes: none')
        == "Replace the background with a snowy street."
    )
    answer = (
        '```json\n[{"bbox_2d": [100, 50, 600, 900], "label": "woman in coat"}, '
        '{"bbox_2d": [1, 2, 3], "label": "bad"}]\n```'
    )
    assert grounded_objects(answer, "relative", (0, 0)) == [{"bbox_2d": [100, 50, 600, 900], "label": "woman in coat"}]
    assert grounded_objects('[{"bbox_2d": [28, 14, 140, 280], "label": "dog"}]', "absolute", (280, 280)) == [
        {"bbox_2d": [100, 50, 500, 1000], "label": "dog"}
    ]
    assert grounded_objects("[]", "relative", (0, 0)) == []
    twins = grounded_objects(
        '[{"bbox_2d": [0, 0, 9, 9], "label": "person"}, {"bbox_2d": [20, 0, 29, 9], "label": "person"}]',
        "relative",
        (0, 0),
    )
    assert [o["label"] for o in twins] == ["person", "person 2"]
    with pytest.raises(AnswerError):
        grounded_objects("I see a woman on the left.", "relative", (0, 0))
    labels = ["woman in coat", "hat"]
    found = relocated('[{"bbox_2d": [5, 5, 50, 50], "label": "Hat"}]', labels, "relative", (0, 0))
    assert found == [{"bbox_2d": [], "label": "woman in coat"}, {"bbox_2d": [5, 5, 50, 50], "label": "hat"}]
    by_position = relocated(
        '[{"bbox_2d": [1, 1, 9, 9], "label": "person"}, {"bbox_2d": [], "label": "cap"}]', labels, "relative", (0, 0)
    )
    assert [o["bbox_2d"] for o in by_position] == [[1, 1, 9, 9], []]
    assert relocated("no idea", labels, "relative", (0, 0)) == [{"bbox_2d": [], "label": label} for label in labels]
    assert to_pixels([447, 27, 765, 998], 1280, 720) == (572, 19, 979, 718)
    assert to_pixels([900, 0, 100, 1000], 100, 50) == (10, 0, 90, 49)


def test_config_digests_versions_and_roles(tmp_path):
    base = tmp_path / "a.toml"
    base.write_text('[corpus]\npath = "clips"\n')
    digests = stage_digests(load_config(base))
    tweaked = tmp_path / "b.toml"
    tweaked.write_text(
        '[corpus]\npath = "clips"\n[thresholds.stage5]\nmin_o_score = 7.5\n'
        "[ray]\nnum_cpus = 3\n[stage4]\nconcurrency = 9\n"
    )
    cfg = load_config(tweaked)
    assert cfg.thresholds["version"].startswith("thresholds-v2+") and cfg.thresholds["stage5"]["min_o_score"] == 7.5
    changed = stage_digests(cfg)
    assert [changed[n] == digests[n] for n in range(1, 6)] == [
        True,
        True,
        True,
        True,
        False,
    ]  # only the last check is redone
    prompt = tmp_path / "c.toml"
    prompt.write_text('[corpus]\npath = "clips"\n[models.editor]\nsteps = 8\n[stage1]\nconcurrency = 2\n')
    other = stage_digests(load_config(prompt))
    assert [other[n] == digests[n] for n in range(1, 6)] == [
        True,
        False,
        False,
        False,
        False,
    ]  # cumulative from stage 2
    role = tmp_path / "d.toml"
    role.write_text(
        '[corpus]\npath = "clips"\n[models.endpoint]\nbackend = "openai"\nmodel = "served"\n'
        '[stage3]\nvlm = "endpoint"\n'
    )
    cfg = load_config(role)
    assert (
        cfg.role(3, "vlm")["backend"] == "openai" and cfg.role(3, "vlm")["boxes"] == "relative"
    )  # the rest from [models.vlm]
    assert cfg.role(2, "vlm")["backend"] == "local"
    example = load_config(Path(__file__).resolve().parents[1] / "examples" / "synth.toml")
    assert example.stage(3)["concurrency"] == 3 and example.role(3, "animator")["model"].startswith("Wan-AI/")
    bad = tmp_path / "e.toml"
    for text, match in (
        ('[video]\nwidht = 96\n[models.vlm]\nbackend = "local"\nmodle = "x"\n', "video.widht, models.vlm.modle"),
        ("[thresholds.stage2]\nmin_overal = 7\n", "thresholds.stage2.min_overal"),
        ('themes = ["underwater"]\n', "underwater"),
        ('[stage2]\nscorer = "nowhere"\n', "nowhere"),
    ):
        bad.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_config(bad)


def test_a_worker_of_a_killed_run_decides_nothing_once_a_new_run_owns_the_folder(tmp_path, demo_frames):
    from sparkle_bench.synth.steps import RunContext, RunSuperseded, apply, pipeline_steps

    write_video(tmp_path / "clips" / "a.mp4", demo_frames[0], 16)
    config = tmp_path / "synth.toml"
    config.write_text(STAGE1_CONFIG)
    cfg = load_config(config)
    layout = Layout(cfg.out)
    layout.work.mkdir(parents=True)
    layout.run_file.write_text(json.dumps({"run": "new"}))
    step = pipeline_steps(cfg, 1, 1)[0]
    record = {
        "id": "Sparkle_location_000000",
        "theme": "location",
        "source": str(tmp_path / "clips" / "a.mp4"),
        "start": 1,
        "stop": 1,
    }
    with pytest.raises(RunSuperseded):
        apply(step, None, RunContext(cfg, stage_digests(cfg), "old"), record)
    assert latest_decisions(layout, 1) == {}
    decided = apply(step, None, RunContext(cfg, stage_digests(cfg), "new"), record)
    assert decided["last"]["status"] == "accepted" and list(latest_decisions(layout, 1)) == ["Sparkle_location_000000"]


def test_source_plan_keeps_ids_when_the_corpus_grows(tmp_path):
    from sparkle_bench.synth.corpus import plan_sources

    layout = Layout(tmp_path / "out")
    clips = [tmp_path / f"clip{i}.mp4" for i in range(5)]
    for index, clip in enumerate(clips):
        clip.write_bytes(f"clip {index}".encode() * 100)
    first = plan_sources(layout, clips[:3], ["location", "time"], "Sparkle").samples
    assert all(
        e["id"] == f"Sparkle_{e['theme']}_{e['id'][-12:]}" and len(e["id"].rsplit("_", 1)[1]) == 12 for e in first
    )
    grown = plan_sources(layout, clips, ["location", "time"], "Sparkle").samples
    assert grown[:3] == first and len({e["id"] for e in grown}) == 5
    assert (
        plan_sources(layout, list(reversed(clips)), ["location", "time"], "Sparkle").samples == grown
    )  # in plan order
