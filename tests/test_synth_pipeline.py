"""Synthesis with model stages, on CPU with tiny random models built from configs: EditScore through
its package, SAM3's tracker, then the five stages end to end on Ray (local, two CPUs) over demo
clips, re-runs that decide nothing twice, a threshold change, bad input, and a kill mid-stage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sparkle_bench.cli import main
from sparkle_bench.demo import demo_clips, render_source
from sparkle_bench.masks import load_mask
from sparkle_bench.records import read_jsonl
from sparkle_bench.synth.config import load_config
from sparkle_bench.synth.corpus import fingerprint
from sparkle_bench.synth.layout import ARTIFACTS, Layout, read_image
from sparkle_bench.synth.ledger import latest_decisions
from sparkle_bench.testing.tiny_synth_models import GROUND, ScriptedVLM, build_tiny_models, config_text
from sparkle_bench.video import probe, write_video

from .test_synth_stage1 import moved

# Sparkle's published schemas (README, "Per-task Pipeline Metadata"), field by field.
FRAME_SCORE = {"prompt_following", "consistency", "perceptual_quality", "overall", "SC_reasoning", "PQ_reasoning"}
VIDEO_SCORE = {
    "SC_score",
    "PQ_score",
    "O_score",
    "SC_score_reasoning",
    "PQ_score_reasoning",
    "SC_raw_output",
    "PQ_raw_output",
}
SCHEMAS = {
    "edited_frame0_score": {"id", "prompt", "editscore"},
    "edited_frame0_foreground_removed_score": {"id", "prompt", "editscore"},
    "foreground_grounding_r1": {"id", "prompt", "edit_type", "round1_labels", "round1_objects"},
    "foreground_grounding_r2": {"id", "prompt", "edit_type", "round1_labels", "round1_objects", "frame_objects"},
    "edited_video_score": {"id", "prompt", "frame_indices", "editscore"},
}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models are dominated by thread hand-offs; one thread is faster and steady under load."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    return build_tiny_models(tmp_path_factory.mktemp("tiny-synth"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Two static demo clips, a panned one, a corrupt file, and two static clips tinted red (e) and green (f),
    which TintJudge scores low at stages 2 and 3."""
    folder = tmp_path_factory.mktemp("synth-corpus")
    clips = demo_clips()
    write_video(folder / "a.mp4", render_source(clips[0])[0], 16)
    write_video(folder / "b.mp4", render_source(clips[4])[0], 16)
    write_video(folder / "e.mp4", (render_source(clips[1])[0] * np.array([1.0, 0.3, 0.3])).astype(np.uint8), 16)
    write_video(folder / "f.mp4", (render_source(clips[2])[0] * np.array([0.3, 1.0, 0.3])).astype(np.uint8), 16)
    write_video(folder / "c.mp4", moved(render_source(clips[8])[0], "pan"), 16)
    (folder / "d.mp4").write_bytes(b"not a video" * 50)
    return folder


def tint(image: np.ndarray | None) -> str:
    """ "red" or "green" when that channel is more than twice each other one, else ""."""
    if image is None:
        return ""
    r, g, b = image.reshape(-1, 3).mean(0)
    return "red" if r > 2 * max(g, b) else "green" if g > 2 * max(r, b) else ""


class TintJudge(ScriptedVLM):
    """The scripted VLM, and EditScore's backbone for stages 2-3 with scores by sample: a red source's
    edit scores [3,3] (overall sqrt(3 x 9) = 5.2 < 8, edit_score at stage 2); a green source's figure
    is grounded as "green figure", whose removal scores [8,8] (sqrt(8 x 9) = 8.49 < 8.5, removal_score
    at stage 3); everything else [9,9] (overall 9)."""

    def score(self, text: str, image) -> str:
        if "RULES:\n\nTwo images" in text:  # the instruction-following judgement (its first image is the source)
            return "[3,3]" if tint(image) == "red" else "[8,8]" if "Remove green figure" in text else "[9,9]"
        return "[9,9]"  # perceptual quality

    def answer(self, text: str, image=None):
        if "Find every foreground" in text and tint(image) == "green":
            self.asked.append(text)
            return json.dumps([{**GROUND[0], "label": "green figure"}])
        return super().answer(text, image)


@pytest.fixture(scope="module")
def ray_run(tiny, corpus, tmp_path_factory):
    """The whole pipeline once, on Ray: (config path, output folder, captured stderr)."""
    server = TintJudge()
    root = tmp_path_factory.mktemp("synth-ray")
    config = root / "synth.toml"
    config.write_text(config_text(tiny, corpus, server.url, root / "out"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "sparkle_bench.cli", "synth", "run", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    server.close()
    assert done.returncode == 0, done.stderr[-3000:]
    return config, root / "out", done.stderr


def theme_of(sample_id: str) -> str:
    return sample_id.split("_")[1]


def ids_by_clip(layout: Layout) -> dict[str, str]:
    return {Path(e["source"]).stem: e["id"] for e in read_jsonl(layout.sources)}


def decision_lines(layout: Layout, stage: int) -> list[dict]:
    return [r for path in sorted(layout.decisions(stage).glob("*.jsonl")) for r in read_jsonl(path)]


def test_editscore_runs_through_its_package_on_cpu(tiny):
    from sparkle_bench.synth.scorer import EditScorer, ScorerError

    spec = {
        "backbone": "qwen25vl",
        "model": str(tiny["scorer"]),
        "lora": "",
        "score_range": 10,
        "num_pass": 1,
        "temperature": 0.7,
    }
    scorer = EditScorer(spec, "cpu")
    source = (np.random.default_rng(0).random((64, 96, 3)) * 255).astype(np.uint8)
    image = scorer.image(source, source[:, ::-1].copy(), "Put the subject on a beach.")
    assert set(image) == FRAME_SCORE
    # "[9,8]" read by the package: SC scores 9 and 8, PQ = min = 8, overall = sqrt(min(SC) * PQ)
    assert (image["prompt_following"], image["consistency"], image["perceptual_quality"], image["overall"]) == (
        9.0,
        8.0,
        8.0,
        8.0,
    )
    frames = scorer.frames([(source, source), (source, source[::-1].copy())], "Put the subject on a beach.")
    assert [set(f) for f in frames] == [VIDEO_SCORE] * 2
    assert [(f["SC_score"], f["PQ_score"], f["O_score"], f["SC_raw_output"]) for f in frames] == [
        (8.0, 8.0, 8.0, "[9,8]")
    ] * 2
    assert "editscore" not in sys.path
    mumbler = EditScorer({**spec, "model": str(tiny["mumbler"])}, "cpu")  # answers "ok": no score in it
    with pytest.raises(ScorerError, match="guessed"):
        mumbler.image(source, source, "Put the subject on a beach.")
    with pytest.raises(ScorerError, match="mid-range"):
        mumbler.frames([(source, source)], "Put the subject on a beach.")


def test_sam3_tracker_propagates_grounding_anchors(tiny, tmp_path):
    from sparkle_bench.maskgen.generate import mask_from_anchors
    from sparkle_bench.maskgen.propagate import Sam3TrackerPropagator

    frames = render_source(demo_clips()[0])[0][:9, ::4, ::4]
    write_video(tmp_path / "clip.mp4", frames, 16)
    propagator = Sam3TrackerPropagator(str(tiny["segmenter"]), "cpu")
    anchors = {
        0: np.array([[20, 20, 60, 60]], np.float32),
        4: np.zeros((0, 4), np.float32),
        8: np.array([[20, 20, 60, 60], [5, 5, 30, 40]], np.float32),
    }
    mask, passes = mask_from_anchors(tmp_path / "clip.mp4", anchors, propagator)
    assert passes == 2 and mask.shape == (9, 64, 112) and mask.any()
    with pytest.raises(ValueError, match="no anchor"):
        mask_from_anchors(tmp_path / "clip.mp4", {4: np.zeros((0, 4), np.float32)}, propagator)


def test_a_tiny_qwen_vl_grounding_nonsense_fails_only_that_sample(tiny, corpus, tmp_path):
    from types import SimpleNamespace

    from sparkle_bench.synth.layout import write_image
    from sparkle_bench.synth.steps import RunContext, apply, pipeline_steps, stage_digests
    from sparkle_bench.synth.vlm import VLM

    config = tmp_path / "synth.toml"
    config.write_text(
        config_text(tiny, corpus, "http://127.0.0.1:9/v1", tmp_path / "out").replace(
            '[stage3]\nvlm = "endpoint"\n', '[stage3]\nvlm = "vlm"\n'
        )
    )
    cfg = load_config(config)
    step = pipeline_steps(cfg, 3, 3)[0]
    layout = Layout(cfg.out)
    frame = render_source(demo_clips()[0])[0][0, ::4, ::4]
    for kind in ("source_frame0", "edited_frame0"):
        write_image(layout.artifact("location", kind, "Sparkle_location_000000"), frame)
    models = SimpleNamespace(vlm=VLM(cfg.role(3, "vlm"), "cpu"))  # grounding fails before the other models are needed
    record = {"id": "Sparkle_location_000000", "theme": "location", "start": 3, "stop": 5}
    out = apply(step, models, RunContext(cfg, stage_digests(cfg)), record)  # a stage called directly, outside a run
    assert out["halted"] and out["last"]["status"] == "failed" and out["last"]["reason"] == "AnswerError"
    assert "no JSON list" in out["last"]["detail"]
    assert latest_decisions(layout, 3)["Sparkle_location_000000"]["status"] == "failed"


def test_pipeline_end_to_end_on_ray(ray_run, corpus, capsys):
    config, out, stderr = ray_run
    layout = Layout(out)
    ids = ids_by_clip(layout)
    assert sorted(ids) == ["a", "b", "c", "d", "e", "f"]
    for clip, sample_id in ids.items():  # named by content: {prefix}_{theme}_{fingerprint}
        assert (
            sample_id.rsplit("_", 1)[1]
            == fingerprint(corpus / f"{clip}.mp4", (corpus / f"{clip}.mp4").stat().st_size)[:12]
        )
    first = latest_decisions(layout, 1)
    assert (first[ids["c"]]["status"], first[ids["c"]]["reason"]) == ("rejected", "moving_camera")
    assert (first[ids["d"]]["status"], first[ids["d"]]["reason"]) == ("failed", "VideoError")
    tries = [
        line for line in stderr.splitlines() if f"{ids['d']} stage 1" in line
    ]  # one line naming the sample and the cause
    assert (
        len(tries) == 2 and "VideoError (try 1 of 2), trying again" in tries[0] and "failed" in tries[1]
    )  # retries = 1, in place
    assert [r["status"] for r in decision_lines(layout, 1) if r["id"] == ids["d"]] == ["failed"]
    assert "Camera: static" in first[ids["a"]]["data"]["camera_check"]
    good = [ids["a"], ids["b"]]
    second, third = latest_decisions(layout, 2), latest_decisions(layout, 3)
    assert (second[ids["e"]]["status"], second[ids["e"]]["reason"]) == (
        "rejected",
        "edit_score",
    )  # scores differ by sample
    assert second[ids["e"]]["data"]["frame0_editscore"]["overall"] == pytest.approx(27**0.5, abs=1e-3)
    assert second[ids["f"]]["status"] == "accepted" and ids["e"] not in third
    assert (third[ids["f"]]["status"], third[ids["f"]]["reason"]) == ("rejected", "removal_score")
    assert third[ids["f"]]["data"]["removal_editscore"]["overall"] == pytest.approx(72**0.5, abs=1e-3)  # 8.49 < 8.5
    assert not layout.artifact(theme_of(ids["f"]), "edited_background_video", ids["f"]).exists()  # left the stream
    for stage in (2, 3, 4, 5):
        decided = {i: d for i, d in latest_decisions(layout, stage).items() if i in good}
        assert sorted(decided) == sorted(good) and {d["status"] for d in decided.values()} == {"accepted"}
    assert sorted(latest_decisions(layout, 4)) == sorted(latest_decisions(layout, 5)) == sorted(good)

    for sample_id in good:
        theme = sample_id.split("_")[1]
        for kind in ARTIFACTS:
            assert layout.artifact(theme, kind, sample_id).is_file(), kind
        for which in ("source_video", "edited_video"):
            info = probe(layout.video(theme, which, sample_id))
            assert (info.width, info.height, info.num_frames, info.fps) == (96, 64, 9, 16.0)
        assert probe(layout.artifact(theme, "edited_background_video", sample_id)).num_frames == 9
        assert probe(layout.artifact(theme, "edited_video_canny", sample_id)).num_frames == 9
        mask = load_mask(layout.artifact(theme, "source_video_mask", sample_id))
        assert mask.shape == (9, 64, 96) and mask.any()
        assert read_image(layout.artifact(theme, "edited_frame0", sample_id)).shape == (64, 96, 3)

    for theme, sample_id in ((theme_of(ids["a"]), ids["a"]), (theme_of(ids["b"]), ids["b"])):
        records = {
            name: [r for r in read_jsonl(layout.score_file(theme, name)) if r["id"] == sample_id] for name in SCHEMAS
        }
        for name, schema in SCHEMAS.items():
            assert [set(r) for r in records[name]] == [schema], name
        assert set(records["edited_frame0_score"][0]["editscore"]) == FRAME_SCORE
        assert records["edited_frame0_score"][0]["editscore"]["overall"] == 9.0
        assert set(records["edited_frame0_foreground_removed_score"][0]["editscore"]) == FRAME_SCORE
        assert records["edited_frame0_foreground_removed_score"][0]["prompt"].startswith("Remove walking figure")
        r1 = records["foreground_grounding_r1"][0]
        assert (r1["edit_type"], r1["round1_labels"], r1["round1_objects"]) == (theme, ["walking figure"], GROUND)
        r2 = records["foreground_grounding_r2"][0]
        assert (
            r2["frame_objects"] == [[{"bbox_2d": [240, 160, 710, 990], "label": "walking figure"}]] * 2
        )  # 9 frames at 2 fps
        video = records["edited_video_score"][0]
        assert video["frame_indices"] == [1, 2, 3, 4] and [set(e) for e in video["editscore"]] == [VIDEO_SCORE] * 4
        assert r1["prompt"] == video["prompt"] == records["edited_frame0_score"][0]["prompt"]

        rows = (layout.prompts / f"{theme}_train.csv").read_text().splitlines()
        assert rows[0] == "prompt,src_video,tgt_video,task"
        assert (
            sum(
                r.endswith(f",{theme}/source_video/{sample_id}.mp4,{theme}/edited_video/{sample_id}.mp4,{sample_id}")
                for r in rows
            )
            == 1
        )
        meta = [m for m in read_jsonl(layout.prompts / f"{theme}_train_metadata.jsonl") if m["id"] == sample_id]
        assert [set(m) for m in meta] == [{"id", "prompt", "metadata"}]
        assert set(meta[0]["metadata"]) == {"edit_type", "chosen_keyword", "original_scene"}
        subtheme, _, scene = meta[0]["metadata"]["chosen_keyword"].partition(": ")
        assert scene in load_config(config).taxonomy["themes"][theme][subtheme]

    assert main(["synth", "status", str(config), "--json"]) == 0
    funnel = {(r["stage"], r["theme"]): r for r in json.loads(capsys.readouterr().out)["funnel"]}
    one = funnel[(1, "all")]
    assert (one["in"], one["accepted"], one["rejected"], one["failed"]) == (6, 4, 1, 1)
    assert one["reasons"] == {"VideoError": 1, "moving_camera": 1}
    assert [(funnel[(s, "all")]["in"], funnel[(s, "all")]["accepted"]) for s in (2, 3, 4, 5)] == [
        (4, 3),
        (3, 2),
        (2, 2),
        (2, 2),
    ]
    assert (funnel[(2, "all")]["reasons"], funnel[(3, "all")]["reasons"]) == ({"edit_score": 1}, {"removal_score": 1})
    assert (funnel[(2, "all")]["yield"], funnel[(3, "all")]["yield"]) == (0.75, round(2 / 3, 4))
    theme = theme_of(ids["b"])
    assert (
        funnel[(5, theme)]["in"] == sum(theme_of(i) == theme for i in good)
        and funnel[(5, theme)]["seconds_per_sample"] > 0
    )


def copy_run(ray_run, tmp_path, replace: dict[str, str] | None = None) -> tuple[Path, Layout]:
    """A copy of the Ray run's output and its config (with text replaced) to run further on."""
    config, out, _ = ray_run
    shutil.copytree(out, tmp_path / "out")
    text = config.read_text().replace(f'out = "{out}"', f'out = "{tmp_path / "out"}"')
    for old, new in (replace or {}).items():
        assert old in text
        text = text.replace(old, new)
    (tmp_path / "synth.toml").write_text(text)
    return tmp_path / "synth.toml", Layout(tmp_path / "out")


def test_rerun_decides_nothing_twice_and_a_stricter_last_check_redoes_only_stage5(ray_run, tmp_path):
    config, layout = copy_run(ray_run, tmp_path)
    before = {stage: len(decision_lines(layout, stage)) for stage in range(1, 6)}
    assert main(["synth", "run", str(config), "--no-ray"]) == 0  # only the corrupt clip is tried again
    assert {stage: len(decision_lines(layout, stage)) for stage in range(1, 6)} == {**before, 1: before[1] + 1}

    config.write_text(config.read_text() + "[thresholds.stage5]\nmin_o_score = 8.5\n")
    assert main(["synth", "run", str(config), "--no-ray"]) == 0
    after = {stage: len(decision_lines(layout, stage)) for stage in range(1, 6)}
    assert after == {**before, 1: before[1] + 2, 5: before[5] + 2}  # stages 1-4 kept, both samples re-checked
    ids = ids_by_clip(layout)
    final = latest_decisions(layout, 5)
    assert [(final[i]["status"], final[i]["reason"]) for i in (ids["a"], ids["b"])] == [("rejected", "video_score")] * 2
    for theme, sample_id in ((theme_of(ids["a"]), ids["a"]), (theme_of(ids["b"]), ids["b"])):
        assert (layout.prompts / f"{theme}_train.csv").read_text().splitlines() == ["prompt,src_video,tgt_video,task"]
        rows = (layout.bench / f"{theme}_bench.csv").read_text().splitlines()
        assert (
            rows[0] == "edited_type,prompt,original_video"
            and sum(r.endswith(f"source_videos/{theme}/{sample_id}.mp4") for r in rows) == 1
        )
        assert probe(layout.bench / "source_videos" / theme / f"{sample_id}.mp4").num_frames == 9
        assert np.array_equal(
            read_image(layout.bench / "ref_images" / theme / f"{sample_id}.png"),
            read_image(layout.artifact(theme, "edited_frame0_foreground_removed", sample_id)),
        )
        assert [m["id"] for m in read_jsonl(layout.bench / f"{theme}_metadata.jsonl")].count(sample_id) == 1
        kept = [r for r in read_jsonl(layout.score_file(theme, "edited_video_score")) if r["id"] == sample_id]
        assert len(kept) == 1  # rejected samples keep their scores
    from sparkle_bench.bench import load_sparkle

    assert len(load_sparkle(layout.bench).samples) == 2  # the candidates load as a Sparkle-Bench


def test_bad_grounding_and_a_failing_endpoint_are_recorded_and_the_run_goes_on(ray_run, tmp_path, capsys):
    server = ScriptedVLM(ground=["[]", ("status", 500)])  # no boxes for the first sample, an error for the second
    endpoint = f'[models.endpoint2]\nbackend = "openai"\nmodel = "scripted-2"\nbase_url = "{server.url}"\nretries = 0\n'
    config, layout = copy_run(
        ray_run,
        tmp_path,
        {
            '[stage3]\nvlm = "endpoint"\n': '[stage3]\nvlm = "endpoint2"\n',
            "[models.editor]": endpoint + "[models.editor]",
        },
    )
    try:
        assert main(["synth", "run", str(config), "--stages", "3-5", "--no-ray", "--strict"]) == 3
    finally:
        server.close()
    ids = ids_by_clip(layout)
    third = latest_decisions(layout, 3)
    assert [(third[i]["status"], third[i]["reason"]) for i in (ids["a"], ids["b"])] == [
        ("rejected", "no_foreground"),
        ("failed", "TransportError"),
    ]
    assert f"{ids['b']} stage 3" in capsys.readouterr().err
    for theme in {theme_of(ids["a"]), theme_of(ids["b"])}:
        assert layout.score_file(theme, "foreground_grounding_r1").read_text() == ""  # no boxes, no round-1 record
        assert layout.score_file(theme, "edited_video_score").read_text() == ""  # stage 5 of the old settings is stale
        holds = sum(theme_of(i) == theme for i in (ids["a"], ids["b"], ids["e"], ids["f"]))  # rejected ones keep theirs
        assert len(list(read_jsonl(layout.score_file(theme, "edited_frame0_score")))) == holds  # stage 2 still holds


def all_files_whole(layout: Layout) -> None:
    from sparkle_bench.video import read_frames

    for path in layout.root.rglob("*"):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix == ".mp4":
            assert len(read_frames(path)) == 9, path
        elif path.suffix == ".png":
            assert read_image(path).shape == (64, 96, 3), path
        elif path.suffix == ".npz":
            assert load_mask(path).shape == (9, 64, 96), path


def test_killed_mid_stage_resumes_without_deciding_twice(tiny, corpus, tmp_path):
    server = TintJudge()
    config = tmp_path / "synth.toml"
    config.write_text(config_text(tiny, corpus, server.url, tmp_path / "out"))
    layout = Layout(tmp_path / "out")
    command = [sys.executable, "-m", "sparkle_bench.cli", "synth", "run", str(config), "--no-ray"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 300
        while not decision_lines(layout, 3) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.killpg(process.pid, signal.SIGKILL)  # the first sample is in stage 4 now
        process.wait()
        assert not decision_lines(layout, 5)
        all_files_whole(layout)  # whatever was being written is a temp file, never a final name
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
    finally:
        server.close()
    assert not list(layout.root.rglob(".*.tmp*"))
    all_files_whole(layout)
    ids = ids_by_clip(layout)
    for stage in range(1, 6):
        decided = [(r["id"], r["status"]) for r in decision_lines(layout, stage) if r["status"] != "failed"]
        assert len(decided) == len(set(decided)), f"stage {stage} decided a sample twice"
    assert {i for i, d in latest_decisions(layout, 5).items() if d["status"] == "accepted"} == {ids["a"], ids["b"]}
    assert sum(len(p.read_text().splitlines()) - 1 for p in layout.prompts.glob("*_train.csv")) == 2
